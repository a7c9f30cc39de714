"""Strategies for the timm and torchvision rules (archaudit/formulas/vision.py), keyed by the qualified name each
rule is keyed by, drawing the torch-only equivalents of tests/vision_blocks.py on meta. Merged into
``MODULE_STRATEGIES`` (and the zero ones into ``ZERO_STRATEGIES``) at the end of tests/strategies.py."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from torch import nn

import vision_blocks as vb
from archaudit.formulas.vision import (
    CONV2D_NORM_ACTIVATION,
    LAYER_SCALE,
    SHIFTED_WINDOW_ATTENTION,
    STOCHASTIC_DEPTH,
    TIMM_ATTENTION,
)

Shapes = tuple[tuple[int, ...], ...]

ZERO_WITH_CHILDREN = (TIMM_ATTENTION, CONV2D_NORM_ACTIVATION)
"""Known-zero name keys whose modules hold children (counted where they are), though not built-in containers."""


def _meta(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    with torch.device("meta"):
        return cls(*args, **kwargs)


@st.composite
def layer_scales(draw: st.DrawFn) -> nn.Module:
    return _meta(vb.LayerScale, draw(st.integers(1, 4096)), init_values=1e-5, inplace=draw(st.booleans()))


@st.composite
def timm_attentions(draw: st.DrawFn) -> nn.Module:
    """Heads 1..8, head_dim from dim or given (attn_head_dim), dim_out, every bias, q/k and scale norms (LayerNorm,
    RMSNorm), fused or explicit path."""
    heads = draw(st.integers(1, 8))
    dim = heads * draw(st.integers(1, 16))
    qk_norm, scale_norm = draw(st.booleans()), draw(st.booleans())
    return _meta(
        vb.Attention, dim, heads,
        attn_head_dim=draw(st.one_of(st.none(), st.integers(1, 16))),
        dim_out=draw(st.one_of(st.none(), st.integers(1, 64))),
        qkv_bias=draw(st.booleans()), qk_norm=qk_norm, scale_norm=scale_norm, proj_bias=draw(st.booleans()),
        norm_layer=nn.LayerNorm if qk_norm or scale_norm else None,  # RMSNorm: no aten op for ColumnCounter
        fused_attn=draw(st.booleans()),
    )


@st.composite
def stochastic_depths(draw: st.DrawFn) -> nn.Module:
    return vb.StochasticDepth(draw(st.floats(0.0, 1.0)), draw(st.sampled_from(["batch", "row"])))


@st.composite
def conv2d_norm_activations(draw: st.DrawFn) -> nn.Module:
    groups = draw(st.integers(1, 4))
    return _meta(
        vb.Conv2dNormActivation, groups * draw(st.integers(1, 8)), groups * draw(st.integers(1, 8)),
        kernel_size=draw(st.sampled_from([1, 3, 5])), stride=draw(st.integers(1, 2)), groups=groups,
        norm_layer=draw(st.sampled_from([nn.BatchNorm2d, None])),
        activation_layer=draw(st.sampled_from([nn.ReLU, nn.SiLU, nn.Hardswish, None])),
        dilation=draw(st.integers(1, 2)), bias=draw(st.sampled_from([None, True, False])),
    )


@st.composite
def shifted_window_attentions(draw: st.DrawFn) -> nn.Module:
    heads = draw(st.integers(1, 4))
    window = [draw(st.integers(1, 7)), draw(st.integers(1, 7))]
    shift = [draw(st.integers(0, w - 1)) for w in window]
    return _meta(
        vb.ShiftedWindowAttention, heads * draw(st.integers(1, 8)), window, shift, heads,
        qkv_bias=draw(st.booleans()), proj_bias=draw(st.booleans()),
    )


@st.composite
def timm_attention_input_shapes(draw: st.DrawFn, module: nn.Module) -> Shapes:
    """``(B, N, dim)`` with B 1..3, N 1..16."""
    return ((draw(st.integers(1, 3)), draw(st.integers(1, 16)), module.qkv.in_features),)


@st.composite
def window_attention_input_shapes(draw: st.DrawFn, module: nn.Module) -> Shapes:
    """``(B, H, W, dim)``: H and W 1..16, multiples of the window or not (padded)."""
    return ((draw(st.integers(1, 2)), draw(st.integers(1, 16)), draw(st.integers(1, 16)), module.qkv.in_features),)


VISION_ZERO_STRATEGIES: dict[str, SearchStrategy[nn.Module]] = {
    TIMM_ATTENTION: timm_attentions(),
    STOCHASTIC_DEPTH: stochastic_depths(),
    CONV2D_NORM_ACTIVATION: conv2d_norm_activations(),
}
VISION_STRATEGIES: dict[str, SearchStrategy[nn.Module]] = {
    LAYER_SCALE: layer_scales(),
    SHIFTED_WINDOW_ATTENTION: shifted_window_attentions(),
    **VISION_ZERO_STRATEGIES,
}
"""One strategy per vision rule key, by qualified name (the equivalents always import: no skip)."""
