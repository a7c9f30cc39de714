"""DAST: the dual-aspect self-attention transformer of Zhang, Song and Li (arXiv 2106.15842; IEEE Transactions
on Instrumentation and Measurement 71, 2022), as its public code (repository Zzzsdu/DAST) builds it.

A sensor encoder (each of the 14 sensors is a token whose features are its time series) and a time-step encoder
(each time step is a token of 14 sensor readings, plus sinusoidal positions) run side by side; their tokens are
concatenated, normalised, and read by a decoder whose queries are the last ``dec_seq_len`` rows of the input.
Each attention block has ``n_heads`` heads of the *full* width (not width/heads) and bias-free projections; each
feed-forward block is two ``d x d`` layers with ELU; every layer is post-norm.

The public code keeps its encoder and decoder layers in plain Python lists, so PyTorch registers only the five
top-level layers (6,337 of 442,561 parameters at the script's defaults): the optimizer never trains the
attention. :func:`build_dast` registers them; :func:`build_dast_as_released` reproduces the mistake, so the
walker's detection of unregistered modules is exercised on a real case.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._layers import sinusoidal_positions
from ._registry import Assumption, ReferenceModel, register


class _Head(nn.Module):
    def __init__(self, dim_val: int, dim_attn: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim_val, dim_attn, bias=False)
        self.key = nn.Linear(dim_val, dim_attn, bias=False)
        self.value = nn.Linear(dim_val, dim_val, bias=False)
        self.scale = math.sqrt(dim_attn)

    def forward(self, x: torch.Tensor, kv: torch.Tensor | None = None) -> torch.Tensor:
        source = x if kv is None else kv
        scores = self.query(x) @ self.key(source).transpose(-1, -2) / self.scale
        return torch.softmax(scores, dim=-1) @ self.value(source)


class _MultiHead(nn.Module):
    def __init__(self, dim_val: int, dim_attn: int, n_heads: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_Head(dim_val, dim_attn) for _ in range(n_heads))
        self.fc = nn.Linear(n_heads * dim_val, dim_val, bias=False)

    def forward(self, x: torch.Tensor, kv: torch.Tensor | None = None) -> torch.Tensor:
        # heads stacked on a new last axis, then flattened: the head index varies fastest
        stacked = torch.stack([head(x, kv) for head in self.heads], dim=-1)
        return self.fc(stacked.flatten(start_dim=2))


class _EncoderLayer(nn.Module):
    def __init__(self, dim_val: int, dim_attn: int, n_heads: int) -> None:
        super().__init__()
        self.attn = _MultiHead(dim_val, dim_attn, n_heads)
        self.fc1 = nn.Linear(dim_val, dim_val)
        self.fc2 = nn.Linear(dim_val, dim_val)
        self.norm1 = nn.LayerNorm(dim_val)
        self.norm2 = nn.LayerNorm(dim_val)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.fc1(nn.functional.elu(self.fc2(x))))


class _DecoderLayer(nn.Module):
    def __init__(self, dim_val: int, dim_attn: int, n_heads: int) -> None:
        super().__init__()
        self.attn1 = _MultiHead(dim_val, dim_attn, n_heads)
        self.attn2 = _MultiHead(dim_val, dim_attn, n_heads)
        self.fc1 = nn.Linear(dim_val, dim_val)
        self.fc2 = nn.Linear(dim_val, dim_val)
        self.norm1 = nn.LayerNorm(dim_val)
        self.norm2 = nn.LayerNorm(dim_val)
        self.norm3 = nn.LayerNorm(dim_val)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn1(x))
        x = self.norm2(x + self.attn2(x, kv=memory))
        return self.norm3(x + self.fc1(nn.functional.elu(self.fc2(x))))


class DAST(nn.Module):
    def __init__(
        self,
        *,
        time_step: int = 42,
        input_size: int = 14,
        dim_val: int = 64,
        dim_attn: int = 64,
        n_heads: int = 4,
        n_encoder_layers: int = 2,
        n_decoder_layers: int = 1,
        dec_seq_len: int = 4,
        out_seq_len: int = 1,
    ) -> None:
        super().__init__()
        self.dec_seq_len = dec_seq_len
        self.sensor_encoder = nn.ModuleList(_EncoderLayer(dim_val, dim_attn, n_heads) for _ in range(n_encoder_layers))
        self.time_encoder = nn.ModuleList(_EncoderLayer(dim_val, dim_attn, n_heads) for _ in range(n_encoder_layers))
        self.decoder = nn.ModuleList(_DecoderLayer(dim_val, dim_attn, n_heads) for _ in range(n_decoder_layers))
        self.register_buffer("positions", sinusoidal_positions(512, dim_val), persistent=False)
        self.timestep_enc_input_fc = nn.Linear(input_size, dim_val)
        self.sensor_enc_input_fc = nn.Linear(time_step, dim_val)
        self.dec_input_fc = nn.Linear(input_size, dim_val)
        self.out_fc = nn.Linear(dec_seq_len * dim_val, out_seq_len)
        self.norm1 = nn.LayerNorm(dim_val)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sensors = self.sensor_enc_input_fc(x.transpose(1, 2))  # (B, 14, d): one token per sensor
        for layer in self.sensor_encoder:
            sensors = layer(sensors)
        steps = self.timestep_enc_input_fc(x) + self.positions[: x.shape[1]]  # (B, T, d): one token per step
        for layer in self.time_encoder:
            steps = layer(steps)
        memory = self.norm1(torch.cat((sensors, steps), dim=1))
        out = self.dec_input_fc(x[:, -self.dec_seq_len :])
        for layer in self.decoder:
            out = layer(out, memory)
        return self.out_fc(nn.functional.elu(out.flatten(start_dim=1)))


def build_dast(**kwargs) -> DAST:
    return DAST(**kwargs)


def build_dast_as_released(**kwargs) -> DAST:
    """DAST with its layers in plain Python lists, as the public code keeps them: they run, but PyTorch does not
    register them, so ``.parameters()`` (and the optimizer) see only the top-level layers."""
    model = DAST(**kwargs)
    for attr in ("sensor_encoder", "time_encoder", "decoder"):
        layers = list(model._modules.pop(attr))
        model.__dict__[attr] = layers
    return model


register(
    ReferenceModel(
        name="dast",
        description="DAST (Zhang et al. 2022): sensor and time-step self-attention encoders, 1 decoder layer, d=64, "
        "4 full-width heads",
        citation="Z. Zhang, W. Song, Q. Li, arXiv:2106.15842; IEEE Trans. Instrumentation and Measurement 71 (2022); "
        "public code: github.com/Zzzsdu/DAST (DAST_Network.py, DAST_utils.py, DAST_main.py)",
        input_shape=(1, 42, 14),
        sequence_dim=1,
        builder=build_dast,
        provenance=(
            Assumption(
                "dims, heads, layers",
                (64, 4, "2 + 2 encoder, 1 decoder"),
                "DAST_main.py defaults (from code; the paper's full text was not available to check them)",
            ),
            Assumption(
                "time_step",
                42,
                "the script sets 62 but loads windows reshaped to 42 rows (40 cycles + a slope row + a mean row), "
                "so as shipped it fails; 42 is what its own data needs",
            ),
            Assumption(
                "layer registration",
                "nn.ModuleList",
                "the public code keeps encoder and decoder layers in plain lists (see build_dast_as_released)",
            ),
        ),
        notes="441,281 parameters registered properly (time_step 42); the released code registers 5,057 of them.",
    )
)
