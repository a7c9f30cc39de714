"""The 6.4-billion-parameter model of the benchmarks, as a TARGET for whole-process timings
(``archaudit flops benchmarks/stack.py:build --device meta --input 1x512x4096``): 32 layers of
nn.TransformerEncoderLayer(4096, 32, dim_feedforward=16384), 32 x 201,379,840 = 6,444,154,880 parameters."""

from __future__ import annotations

from torch import nn


def build(layers: int = 32) -> nn.Module:
    return nn.Sequential(
        *[nn.TransformerEncoderLayer(4096, 32, dim_feedforward=16384, batch_first=True) for _ in range(layers)]
    )
