"""Linear and Bilinear."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount, numel
from ..registry import REGISTRY

# --- Linear ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearSpec:
    in_features: int
    out_features: int
    bias: bool


def linear_params(s: LinearSpec) -> int:
    return s.in_features * s.out_features + (s.out_features if s.bias else 0)


def _linear_expr(s: LinearSpec) -> str:
    return f"{s.in_features}*{s.out_features}" + (f" + {s.out_features}" if s.bias else "")


def linear_spec(m: nn.Linear) -> LinearSpec:
    return LinearSpec(m.in_features, m.out_features, m.bias is not None)


def linear_macs(s: LinearSpec, input_shape: tuple[int, ...]) -> MacCount:
    """Any rank: every row of the last axis goes through the ``in x out`` weight."""
    rows = numel(input_shape) // s.in_features
    return MacCount(macs=rows * s.in_features * s.out_features, bias=rows * s.out_features if s.bias else 0)


def _linear_call(m: nn.Linear, call: Call) -> MacCount:
    return linear_macs(linear_spec(m), call.input)


REGISTRY.rule(
    nn.Linear, family="linear", spec=linear_spec, params=linear_params, expression=_linear_expr, macs=_linear_call
)


# --- Bilinear ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BilinearSpec:
    in1_features: int
    in2_features: int
    out_features: int
    bias: bool


def bilinear_params(s: BilinearSpec) -> int:
    return s.out_features * s.in1_features * s.in2_features + (s.out_features if s.bias else 0)


def _bilinear_expr(s: BilinearSpec) -> str:
    return f"{s.out_features}*{s.in1_features}*{s.in2_features}" + (f" + {s.out_features}" if s.bias else "")


def bilinear_spec(m: nn.Bilinear) -> BilinearSpec:
    return BilinearSpec(m.in1_features, m.in2_features, m.out_features, m.bias is not None)


def bilinear_macs(s: BilinearSpec, input1_shape: tuple[int, ...]) -> MacCount:
    """Per row and output: ``x1 @ A_k`` (in1*in2 MACs), then the dot product with ``x2`` (in2 MACs)."""
    rows = numel(input1_shape) // s.in1_features
    per_output = s.in1_features * s.in2_features + s.in2_features
    return MacCount(macs=rows * s.out_features * per_output, bias=rows * s.out_features if s.bias else 0)


def _bilinear_call(m: nn.Bilinear, call: Call) -> MacCount:
    return bilinear_macs(bilinear_spec(m), call.input)


REGISTRY.rule(
    nn.Bilinear,
    family="bilinear",
    spec=bilinear_spec,
    params=bilinear_params,
    expression=_bilinear_expr,
    macs=_bilinear_call,
)
