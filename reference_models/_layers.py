"""Small pieces shared by the reference models."""

from __future__ import annotations

import math

import torch


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """The sinusoidal position table of Vaswani et al. (2017): sin on even features, cos on odd ones, on the default
    device (meta under ``torch.device("meta")``). It is computed on the CPU and then moved: on meta, ``arange``
    runs torch's Python decomposition, whose first call imports ``torch._dynamo`` (about two seconds)."""
    with torch.device("cpu"):
        position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
        rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
        table = torch.zeros(length, width)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate[: width // 2])
    return table.to(torch.get_default_device())
