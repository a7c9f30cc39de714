"""AMNL: a CNN -> BiLSTM -> multi-head attention model with two MLP heads (RUL regression, 3-class health).

Input ``(batch, 30, 17)``: 30 time steps of 17 features from a C-MAPSS window. Output ``(rul, health)`` with
shapes ``(batch, 1)`` and ``(batch, 3)``.

One class builds every edition; the three registered configurations are what each document describes. Where a
document leaves a hyperparameter unstated, the value chosen and the figure of the document that fixed it are in
the entry's provenance, and each is tested (tests/test_reference_models.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ._registry import Assumption, ReferenceModel, claims_files, family, register

FEATURES = 17
WINDOW = 30


def _mlp(widths: Sequence[int], *, final_activation: bool) -> nn.Sequential:
    """Linear layers through ``widths`` with ReLU between them (and after the last when ``final_activation``)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AMNL(nn.Module):
    """CNN -> BiLSTM -> self-attention (+ residual, LayerNorm) -> pooling -> funnel -> two heads.

    ``cnn_channels`` lists the Conv1d widths after the 17 input features; each conv has ``kernel_size`` with
    "same" padding, then (optionally) BatchNorm1d, then ReLU. ``lstm_norm`` adds a LayerNorm on the BiLSTM's
    output. ``funnel`` lists the widths of the shared Linear layers after pooling (empty: the heads read the
    pooled ``2 * lstm_hidden`` vector directly); each head's widths start at the funnel's last width.
    """

    def __init__(
        self,
        *,
        cnn_channels: Sequence[int],
        kernel_size: int,
        conv_bias: bool,
        batchnorm: bool,
        lstm_hidden: int,
        lstm_layers: int,
        attention_heads: int,
        lstm_norm: bool,
        funnel: Sequence[int],
        rul_head: Sequence[int],
        health_head: Sequence[int],
        pooling: Literal["last", "mean"] = "last",
        in_features: int = FEATURES,
    ) -> None:
        super().__init__()
        width = 2 * lstm_hidden
        blocks: list[nn.Module] = []
        previous = in_features
        for channels in cnn_channels:
            blocks.append(nn.Conv1d(previous, channels, kernel_size, padding=kernel_size // 2, bias=conv_bias))
            if batchnorm:
                blocks.append(nn.BatchNorm1d(channels))
            blocks.append(nn.ReLU())
            previous = channels
        self.cnn = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(previous, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True)
        self.lstm_norm = nn.LayerNorm(width) if lstm_norm else None
        self.attention = nn.MultiheadAttention(width, attention_heads, batch_first=True)
        self.attention_norm = nn.LayerNorm(width)
        self.pooling = pooling
        funnel_widths = [width, *funnel]
        self.funnel = _mlp(funnel_widths, final_activation=True)
        head_in = funnel_widths[-1]
        for name, widths in (("rul_head", rul_head), ("health_head", health_head)):
            if widths[0] != head_in:
                raise ValueError(f"{name} starts at {widths[0]} but the funnel ends at {head_in}")
        self.rul_head = _mlp(rul_head, final_activation=False)
        self.health_head = _mlp(health_head, final_activation=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.cnn(x.transpose(1, 2)).transpose(1, 2)  # (B, T, F) -> conv over time -> (B, T, C)
        h, _ = self.lstm(h)  # (B, T, 2*hidden)
        if self.lstm_norm is not None:
            h = self.lstm_norm(h)
        attended, _ = self.attention(h, h, h, need_weights=False)
        h = self.attention_norm(h + attended)
        pooled = h[:, -1] if self.pooling == "last" else h.mean(dim=1)
        shared = self.funnel(pooled)
        return self.rul_head(shared), self.health_head(shared)


def _configure(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides``; a head not overridden keeps its widths but reads whatever now feeds it (the
    funnel's last width, or the attention width when there is no funnel), so one hyperparameter can change."""
    config = {**base, **overrides}
    head_in = config["funnel"][-1] if config["funnel"] else 2 * config["lstm_hidden"]
    for head in ("rul_head", "health_head"):
        if head not in overrides:
            config[head] = (head_in, *config[head][1:])
    return config


# --- the large configuration: ../shared/seeds/000 ("parameter count analysis") -------------------------------

LARGE = {
    "cnn_channels": (128, 256, 384),
    "kernel_size": 3,
    "conv_bias": True,
    "batchnorm": True,
    "lstm_hidden": 384,
    "lstm_layers": 3,
    "attention_heads": 12,
    "lstm_norm": False,
    "funnel": (128, 64),
    "rul_head": (64, 128, 64, 32, 16, 1),
    "health_head": (64, 64, 32, 16, 3),
    "pooling": "last",
}


def build_amnl(**overrides: Any) -> AMNL:  # hyperparameters of mixed types (widths, flags, names)
    return AMNL(**_configure(LARGE, overrides))


register(
    ReferenceModel(
        name="amnl",
        description="AMNL, large: CNN 128-256-384, 3-layer BiLSTM 384, 12-head attention at 768, MLP heads from 64",
        citation='seed document 000 ("parameter count analysis"), model-architecture and layer-by-layer tables',
        input_shape=(1, WINDOW, FEATURES),
        sequence_dim=1,
        builder=build_amnl,
        hyperparameters=LARGE,
        provenance=(
            Assumption(
                "kernel_size",
                3,
                'the "CNN Feature Extractor 402K" row: 3*(17*128 + 128*256 + 256*384) + 768 bias + 2*768 BN '
                "= 402,048 with k=3; k=2 gives 268,800 and k=4 535,296",
            ),
            Assumption(
                "conv_bias, batchnorm",
                (True, True),
                "the same 402K row: without BN 400,512 (400K), without bias 401,280 (401K), neither 399,744",
            ),
            Assumption(
                "funnel",
                (128, 64),
                "the heads start at 64 and the BiLSTM/attention width is 768, so shared layers must map 768 to 64; "
                "unstated. 768->128->64 is the natural power-of-two funnel; no power-of-two funnel reproduces "
                '"FC Layers + Heads 147K" (this one gives 106,688 + 26,020 = 132,708)',
            ),
            Assumption("pooling", "last", "unstated; last time step, as the later 3.5M edition states (no parameters)"),
            Assumption("activations", "ReLU", "unstated (no parameters)"),
            Assumption(
                "attention residual + LayerNorm(768)", True, 'the "Layer Normalization 1.5K" row: 2*768 = 1,536'
            ),
        ),
        notes="The documented total (3.5M, 3,502,849) is not what this configuration holds; see the claims report.",
        # the rows whose figures fixed the unstated kernel size, bias, BatchNorm and attention LayerNorm above
        fitted_to=("amnl-000:dist_cnn", "amnl-000:dist_layernorm"),
        claims=claims_files("amnl_000.toml"),
        families={"amnl": family("amnl"), "amnl-wide": family("amnl-wide")},
        params_claims=("cmp_amnl_params",),
        related=(
            ("amnl-compact", "the compact configuration of the companion document (seed 001) and its claims"),
            ("amnl-v2", "the 3.5M edition, against which the 3.5M and 3,502,849 figures are tested"),
        ),
    )
)


# --- the compact configuration: ../shared/seeds/001 ("model parameter analysis") ------------------------------

COMPACT = {
    "cnn_channels": (64, 128, 64),
    "kernel_size": 3,
    "conv_bias": True,
    "batchnorm": True,
    "lstm_hidden": 128,
    "lstm_layers": 2,
    "attention_heads": 8,
    "lstm_norm": True,
    "funnel": (),
    "rul_head": (256, 128, 1),
    "health_head": (256, 64, 3),
    "pooling": "last",
}


def build_amnl_compact(**overrides: Any) -> AMNL:  # hyperparameters of mixed types (widths, flags, names)
    return AMNL(**_configure(COMPACT, overrides))


register(
    ReferenceModel(
        name="amnl-compact",
        description="AMNL, compact: CNN 64-128-64, 2-layer BiLSTM 128, attention at 256, "
        "heads Linear(256,128)/(256,64)",
        citation='seed document 001 ("model parameter analysis"), prediction-head and component-breakdown tables',
        input_shape=(1, WINDOW, FEATURES),
        sequence_dim=1,
        builder=build_amnl_compact,
        hyperparameters=COMPACT,
        provenance=(
            Assumption(
                "attention width",
                256,
                "the heads read Linear(256, ...), so the pooled vector is 256 = 2*128 (bidirectional hidden 128)",
            ),
            Assumption(
                "lstm_hidden, lstm_layers, input",
                (128, 2, 64),
                '"BiLSTM Encoder 594,432" = 2*4*(64*128 + 128*128 + 2*128) + 2*4*(256*128 + 128*128 + 2*128) '
                "= 593,920, plus a LayerNorm(256) (512); the document's own text says lstm_hidden is 128",
            ),
            Assumption(
                "lstm_norm",
                True,
                "594,432 - 593,920 = 512 = 2*256: a LayerNorm on the BiLSTM output, counted in that row",
            ),
            Assumption(
                "cnn_channels, kernel_size, conv_bias, batchnorm",
                ((64, 128, 64), 3, True, True),
                '"CNN Feature Extractor 53,184" = 3*(17*64 + 64*128 + 128*64) + 256 bias + 2*256 BN; '
                "the last width 64 feeds the 64-input BiLSTM; the document lists cnn.conv1, cnn.bn1 and a conv bias",
            ),
            Assumption(
                "attention residual + LayerNorm(256)",
                True,
                '"Attention Layer 263,680" = 4*256*256 + 4*256 (263,168) + 2*256: no attention width alone gives '
                "263,680 (4d^2 + 4d = 263,680 has no integer solution)",
            ),
            Assumption("attention_heads", 8, "unstated and not fixed by any figure (heads do not change the count)"),
            Assumption("funnel", (), "the heads start at 256, the attention width: no shared funnel"),
            Assumption("pooling", "last", "unstated (no parameters)"),
        ),
        notes="960,964 parameters: the document's own subtotal; "
        "it attributes the rest of its 3.5M to parts it does not describe.",
        # the rows whose figures fixed the widths, LSTM norm and attention LayerNorm above
        fitted_to=("amnl-001:breakdown_cnn", "amnl-001:breakdown_bilstm", "amnl-001:breakdown_attention"),
        claims=claims_files("amnl_001.toml"),
        related=(("amnl", "the large configuration of seed document 000"),),
    )
)


# --- the 3.5M edition ------------------------------------------------------------------------------------------

V2 = {
    "cnn_channels": (64, 128, 64),
    "kernel_size": 3,
    "conv_bias": False,
    "batchnorm": True,
    "lstm_hidden": 256,
    "lstm_layers": 2,
    "attention_heads": 8,
    "lstm_norm": False,
    "funnel": (256, 64, 32),
    "rul_head": (32, 64, 32, 16, 1),
    "health_head": (32, 32, 16, 3),
    "pooling": "last",
}


def build_amnl_v2(**overrides: Any) -> AMNL:  # hyperparameters of mixed types (widths, flags, names)
    return AMNL(**_configure(V2, overrides))


register(
    ReferenceModel(
        name="amnl-v2",
        description="AMNL, 3.5M edition: CNN 64-128-64 (no bias, BN), 2-layer BiLSTM 256, 8-head attention at 512, "
        "funnel 512-256-64-32",
        citation='"Gradient-Aware Multi-Task Learning for Predictive Maintenance: AMNL, GABA, and GRACE" '
        "(online book), 121-section edition, which states every layer size of this configuration",
        input_shape=(1, WINDOW, FEATURES),
        sequence_dim=1,
        builder=build_amnl_v2,
        hyperparameters=V2,
        provenance=(Assumption("activations", "ReLU", "unstated (no parameters)"),),
        notes="Every layer size is stated; this is the configuration against which the 3.5M and 3,502,849 figures "
        "are tested.",
        claims=claims_files("amnl_v2.toml"),
        families={"amnl-v2": family("amnl-v2"), "amnl-wide": family("amnl-wide")},
        related=(("amnl", "the large configuration of seed document 000"),),
    )
)
