"""Conv1d/2d/3d and ConvTranspose1d/2d/3d, with groups and optional bias.

A convolution's weight is ``(out, in/groups, *kernel)`` and a transposed one's ``(in, out/groups, *kernel)``:
both hold ``in * out / groups * prod(kernel)`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from torch import nn

from ..records import Call, MacCount
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


def conv_spec(m: nn.modules.conv._ConvNd) -> ConvSpec:
    return ConvSpec(
        in_channels=m.in_channels,
        out_channels=m.out_channels,
        kernel_size=tuple(m.kernel_size),
        groups=m.groups,
        bias=m.bias is not None,
        transposed=m.transposed,
    )


def conv_macs(s: ConvSpec, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> MacCount:
    """Stride, padding and dilation act through the output's spatial size; groups through ``in/groups``.

    A convolution does ``in/groups * prod(kernel)`` MACs per output element. A transposed convolution scatters
    each *input* element through ``out/groups * prod(kernel)`` weights. Unbatched inputs count as batch 1.
    """
    dims = len(s.kernel_size)
    batch = input_shape[0] if len(input_shape) == dims + 2 else 1
    kernel = prod(s.kernel_size)
    out_elements = batch * s.out_channels * prod(output_shape[-dims:])
    if s.transposed:
        macs = batch * s.in_channels * prod(input_shape[-dims:]) * (s.out_channels // s.groups) * kernel
    else:
        macs = out_elements * (s.in_channels // s.groups) * kernel
    return MacCount(macs=macs, bias=out_elements if s.bias else 0)


def _conv_call(m: nn.modules.conv._ConvNd, call: Call) -> MacCount:
    return conv_macs(conv_spec(m), call.input, call.output)


REGISTRY.rule(
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    family="conv",
    spec=conv_spec,
    params=conv_params,
    expression=_conv_expr,
    macs=_conv_call,
)
