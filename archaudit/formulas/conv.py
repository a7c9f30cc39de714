"""Conv1d/2d/3d and ConvTranspose1d/2d/3d, with groups and optional bias.

A convolution's weight is ``(out, in/groups, *kernel)`` and a transposed one's ``(in, out/groups, *kernel)``:
both hold ``in * out / groups * prod(kernel)`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from torch import nn

from ..registry import REGISTRY


@dataclass(frozen=True)
class ConvSpec:
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int
    bias: bool
    transposed: bool = False


def conv_params(s: ConvSpec) -> int:
    weight = s.in_channels * s.out_channels // s.groups * prod(s.kernel_size)
    return weight + (s.out_channels if s.bias else 0)


def _conv_expr(s: ConvSpec) -> str:
    kernel = "*".join(str(k) for k in s.kernel_size)
    channels = f"{s.in_channels}*{s.out_channels}" + (f"/{s.groups}" if s.groups != 1 else "")
    return f"{channels}*{kernel}" + (f" + {s.out_channels}" if s.bias else "")


@REGISTRY.register(
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    family="conv", params=conv_params, expression=_conv_expr,
)
def conv_spec(m: nn.modules.conv._ConvNd) -> ConvSpec:
    return ConvSpec(
        in_channels=m.in_channels,
        out_channels=m.out_channels,
        kernel_size=tuple(m.kernel_size),
        groups=m.groups,
        bias=m.bias is not None,
        transposed=m.transposed,
    )
