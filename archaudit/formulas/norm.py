"""Normalisation layers: BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm.

Running statistics are buffers, not parameters, and are never counted here (the walker reports them apart).
Every family here has one MAC rule: no MACs, and each output element normalised once (the ``norm`` column).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from torch import nn

from ..records import Call, MacCount, numel
from ..registry import REGISTRY


def _norm_call(m: nn.Module, call: Call) -> MacCount:
    """No MACs: every output element is normalised once (the ``norm`` column), affine or not."""
    return MacCount(norm=numel(call.output))


# --- BatchNorm, InstanceNorm, GroupNorm: per channel -------------------------------------------------------------


@dataclass(frozen=True)
class ChannelNormSpec:
    """BatchNorm, InstanceNorm, GroupNorm: a scale and a shift per channel when ``affine``."""

    num_channels: int
    affine: bool


def channel_norm_params(s: ChannelNormSpec) -> int:
    return 2 * s.num_channels if s.affine else 0


def _channel_norm_expr(s: ChannelNormSpec) -> str:
    return f"2*{s.num_channels}" if s.affine else "0 (affine=False)"


def batch_norm_spec(m: nn.modules.batchnorm._NormBase) -> ChannelNormSpec:
    return ChannelNormSpec(m.num_features, m.affine)


REGISTRY.rule(
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    family="batchnorm",
    spec=batch_norm_spec,
    params=channel_norm_params,
    expression=_channel_norm_expr,
    macs=_norm_call,
)


def group_norm_spec(m: nn.GroupNorm) -> ChannelNormSpec:
    return ChannelNormSpec(m.num_channels, m.affine)


REGISTRY.rule(
    nn.GroupNorm,
    family="groupnorm",
    spec=group_norm_spec,
    params=channel_norm_params,
    expression=_channel_norm_expr,
    macs=_norm_call,
)


# --- LayerNorm, RMSNorm: over normalized_shape -------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeNormSpec:
    """LayerNorm and RMSNorm: a scale (and, for LayerNorm, a shift) over ``normalized_shape``."""

    normalized_shape: tuple[int, ...]
    weight: bool
    bias: bool


def shape_norm_params(s: ShapeNormSpec) -> int:
    return prod(s.normalized_shape) * (int(s.weight) + int(s.bias))


def _shape_norm_expr(s: ShapeNormSpec) -> str:
    copies = int(s.weight) + int(s.bias)
    if copies == 0:
        return "0 (elementwise_affine=False)"
    shape = "*".join(str(d) for d in s.normalized_shape)
    return shape if copies == 1 else f"2*{shape}"


def layer_norm_spec(m: nn.LayerNorm) -> ShapeNormSpec:
    return ShapeNormSpec(tuple(m.normalized_shape), m.weight is not None, m.bias is not None)


REGISTRY.rule(
    nn.LayerNorm,
    family="layernorm",
    spec=layer_norm_spec,
    params=shape_norm_params,
    expression=_shape_norm_expr,
    macs=_norm_call,
)


def rms_norm_spec(m: nn.RMSNorm) -> ShapeNormSpec:
    return ShapeNormSpec(tuple(m.normalized_shape), m.weight is not None, False)


REGISTRY.rule(
    nn.RMSNorm,
    family="rmsnorm",
    spec=rms_norm_spec,
    params=shape_norm_params,
    expression=_shape_norm_expr,
    macs=_norm_call,
)
