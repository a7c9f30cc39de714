"""Hyperparameter families of the reference models, for the solver (archaudit.claims.solver).

Each component counts its parameters with archaudit's analytic formulas on frozen specs: no module is built.
``tests/test_solver.py`` checks every family against ``numel()`` of built modules at sampled configurations.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

from archaudit.claims.solver import Axis, Component, Family
from archaudit.formulas.attention import AttentionSpec, attention_params
from archaudit.formulas.conv import ConvSpec, conv_params
from archaudit.formulas.linear import LinearSpec, linear_params
from archaudit.formulas.norm import ShapeNormSpec, shape_norm_params
from archaudit.formulas.recurrent import RecurrentSpec, recurrent_params

from .amnl import AMNL, FEATURES, LARGE, V2


def _cnn(cnn_channels: Sequence[int], kernel_size: int, conv_bias: bool, batchnorm: bool) -> int:
    total, previous = 0, FEATURES
    for channels in cnn_channels:
        total += conv_params(ConvSpec(previous, channels, (kernel_size,), 1, conv_bias))
        total += 2 * channels if batchnorm else 0
        previous = channels
    return total


def _lstm(cnn_channels: Sequence[int], lstm_hidden: int, lstm_layers: int) -> int:
    return _bilstm(cnn_channels[-1], lstm_hidden, lstm_layers)


@functools.cache
def _bilstm(input_size: int, hidden: int, layers: int) -> int:
    """The BiLSTM reads only the last CNN width: a grid's thousands of CNN configurations share a few dozen."""
    return recurrent_params(RecurrentSpec("LSTM", input_size, hidden, layers, True, True))


def _lstm_norm(lstm_hidden: int, lstm_norm: bool) -> int:
    return shape_norm_params(ShapeNormSpec((2 * lstm_hidden,), True, True)) if lstm_norm else 0


def _attention(lstm_hidden: int) -> int:
    width = 2 * lstm_hidden
    return attention_params(AttentionSpec(width, 1, width, width)) + shape_norm_params(
        ShapeNormSpec((width,), True, True)
    )


def _mlp(widths: Sequence[int]) -> int:
    return sum(linear_params(LinearSpec(a, b, True)) for a, b in itertools.pairwise(widths))


def _funnel(lstm_hidden: int, funnel: Sequence[int]) -> int:
    return _mlp((2 * lstm_hidden, *funnel))


def _heads(lstm_hidden: int, funnel: Sequence[int], rul_head: Sequence[int], health_head: Sequence[int]) -> int:
    start = funnel[-1] if funnel else 2 * lstm_hidden
    return _mlp((start, *rul_head[1:])) + _mlp((start, *health_head[1:]))


AMNL_COMPONENTS = (
    Component("cnn", ("cnn_channels", "kernel_size", "conv_bias", "batchnorm"), _cnn),
    Component("lstm", ("cnn_channels", "lstm_hidden", "lstm_layers"), _lstm),
    Component("lstm_norm", ("lstm_hidden", "lstm_norm"), _lstm_norm),
    Component("attention", ("lstm_hidden",), _attention),
    Component("funnel", ("lstm_hidden", "funnel"), _funnel),
    Component("heads", ("lstm_hidden", "funnel", "rul_head", "health_head"), _heads),
)


def _build(**config: Any) -> AMNL:  # one AMNL configuration: hyperparameters of mixed types
    heads_in = config["funnel"][-1] if config["funnel"] else 2 * config["lstm_hidden"]
    rul = (heads_in, *config["rul_head"][1:])
    health = (heads_in, *config["health_head"][1:])
    return AMNL(**{**config, "rul_head": rul, "health_head": health, "attention_heads": 1})


def _family(name: str, description: str, **axes: Sequence[Any]) -> Family:  # each axis: the values it takes
    order = (
        "cnn_channels",
        "kernel_size",
        "conv_bias",
        "batchnorm",
        "lstm_hidden",
        "lstm_layers",
        "lstm_norm",
        "funnel",
        "rul_head",
        "health_head",
    )
    return Family(name, description, tuple(Axis(a, tuple(axes[a])) for a in order), AMNL_COMPONENTS, _build)


FUNNELS = ((), (64,), (128,), (128, 64), (256, 64), (512, 64), (256, 128, 64), (256, 64, 32), (512, 256, 64, 32))


def amnl_documented() -> Family:
    """The large AMNL as document 000 states it: only the unstated hyperparameters vary."""
    return _family(
        "amnl (document 000, stated sizes fixed)",
        "CNN 128-256-384, 3-layer BiLSTM 384, attention at 768 and both heads as stated; kernel size, conv bias, "
        "BatchNorm, a BiLSTM LayerNorm and the shared funnel to 64 vary",
        cnn_channels=[LARGE["cnn_channels"]],
        kernel_size=range(1, 8),
        conv_bias=(False, True),
        batchnorm=(False, True),
        lstm_hidden=[LARGE["lstm_hidden"]],
        lstm_layers=[LARGE["lstm_layers"]],
        lstm_norm=(False, True),
        funnel=[f for f in FUNNELS if f and f[-1] == 64],
        rul_head=[LARGE["rul_head"]],
        health_head=[LARGE["health_head"]],
    )


def amnl_wide() -> Family:
    """The whole AMNL family: every width, depth and option varies (heads keep their documented shapes)."""
    widths = (32, 64, 128, 256, 384, 512)
    return _family(
        "amnl (whole family)",
        "CNN of three Conv1d layers with widths 32-512, kernel 1-7, optional bias and BatchNorm; BiLSTM hidden "
        "64-512 with 1-4 layers and an optional LayerNorm; six shared funnels; the large and 3.5M editions' heads",
        cnn_channels=[(a, b, last) for a in widths for b in widths for last in (64, 128, 256, 384)],
        kernel_size=(1, 3, 5, 7),
        conv_bias=(False, True),
        batchnorm=(False, True),
        lstm_hidden=(64, 128, 192, 256, 384, 512),
        lstm_layers=(1, 2, 3, 4),
        lstm_norm=(False, True),
        funnel=((), (64,), (128, 64), (256, 64), (256, 128, 64), (256, 64, 32)),
        rul_head=[LARGE["rul_head"], V2["rul_head"]],
        health_head=[LARGE["health_head"], V2["health_head"]],
    )


def amnl_v2_documented() -> Family:
    """The 3.5M edition as stated: every size fixed; bias and BatchNorm choices and a BiLSTM LayerNorm vary."""
    return _family(
        "amnl-v2 (stated sizes fixed)",
        "CNN 64-128-64 k=3, 2-layer BiLSTM 256, attention at 512, funnel 512-256-64-32 and both heads as stated; "
        "conv bias, BatchNorm and a BiLSTM LayerNorm vary",
        cnn_channels=[V2["cnn_channels"]],
        kernel_size=[3],
        conv_bias=(False, True),
        batchnorm=(False, True),
        lstm_hidden=[256],
        lstm_layers=[2],
        lstm_norm=(False, True),
        funnel=[V2["funnel"]],
        rul_head=[V2["rul_head"]],
        health_head=[V2["health_head"]],
    )


FAMILIES = {"amnl": amnl_documented, "amnl-wide": amnl_wide, "amnl-v2": amnl_v2_documented}
