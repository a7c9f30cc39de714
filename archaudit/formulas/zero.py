"""PReLU, and every layer type known to own no parameters.

Known-zero types are registered explicitly, one list per kind, so that the set is reviewable and a new
PyTorch layer is never assumed parameter-free. A subclass of one of them that does own parameters is
reported as unsupported by the walker, not as zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount, numel
from ..registry import REGISTRY


@dataclass(frozen=True)
class PReLUSpec:
    num_parameters: int


def prelu_params(s: PReLUSpec) -> int:
    return s.num_parameters


def _prelu_expr(s: PReLUSpec) -> str:
    return str(s.num_parameters)


def prelu_spec(m: nn.PReLU) -> PReLUSpec:
    return PReLUSpec(m.num_parameters)


ACTIVATIONS = (
    nn.CELU,
    nn.ELU,
    nn.GELU,
    nn.GLU,
    nn.Hardshrink,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.LogSigmoid,
    nn.LogSoftmax,
    nn.Mish,
    nn.RReLU,
    nn.ReLU,
    nn.ReLU6,
    nn.SELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Softmax,
    nn.Softmax2d,
    nn.Softmin,
    nn.Softplus,
    nn.Softshrink,
    nn.Softsign,
    nn.Tanh,
    nn.Tanhshrink,
    nn.Threshold,
)
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
POOLING = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.LPPool1d,
    nn.LPPool2d,
    nn.LPPool3d,
    nn.FractionalMaxPool2d,
    nn.FractionalMaxPool3d,
    nn.MaxUnpool1d,
    nn.MaxUnpool2d,
    nn.MaxUnpool3d,
)
RESHAPING = (
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.Fold,
    nn.Unfold,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ChannelShuffle,
    nn.Upsample,
    nn.UpsamplingNearest2d,
    nn.UpsamplingBilinear2d,
)
PADDING = (
    nn.ConstantPad1d,
    nn.ConstantPad2d,
    nn.ConstantPad3d,
    nn.ZeroPad1d,
    nn.ZeroPad2d,
    nn.ZeroPad3d,
    nn.ReflectionPad1d,
    nn.ReflectionPad2d,
    nn.ReflectionPad3d,
    nn.ReplicationPad1d,
    nn.ReplicationPad2d,
    nn.ReplicationPad3d,
    nn.CircularPad1d,
    nn.CircularPad2d,
    nn.CircularPad3d,
)
PARAMETER_FREE_NORMS = (nn.LocalResponseNorm, nn.CrossMapLRN2d)
DISTANCES = (nn.CosineSimilarity, nn.PairwiseDistance)
CONTAINERS = (
    nn.Sequential,
    nn.ModuleList,
    nn.ModuleDict,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.Transformer,
)

KNOWN_ZERO_TYPES = ACTIVATIONS + DROPOUT + POOLING + RESHAPING + PADDING + PARAMETER_FREE_NORMS + DISTANCES + CONTAINERS

SOFTMAXES = (nn.Softmax, nn.Softmax2d, nn.LogSoftmax, nn.Softmin)
"""The activations whose work is counted in the ``softmax`` column."""


# --- MAC rules ---------------------------------------------------------------------------------------------------


def _activation_call(m: nn.Module, call: Call) -> MacCount:
    return MacCount(activation=numel(call.input))


def _glu_call(m: nn.GLU, call: Call) -> MacCount:
    """``a * sigmoid(b)`` over the two halves of the input: only ``b``, half the input, goes through the
    non-linearity, one element per output element."""
    return MacCount(activation=numel(call.output))


def _softmax_call(m: nn.Module, call: Call) -> MacCount:
    return MacCount(softmax=numel(call.input))


def _lrn_call(m: nn.Module, call: Call) -> MacCount:
    return MacCount(norm=numel(call.output))


def _no_macs(m: nn.Module, call: Call) -> MacCount:
    """No multiply-accumulate of weights (pooling windows, distances and copies are not counted)."""
    return MacCount()


# --- rules: one declaration per kind -----------------------------------------------------------------------------

REGISTRY.rule(
    nn.PReLU,
    family="prelu",
    spec=prelu_spec,
    params=prelu_params,
    expression=_prelu_expr,
    macs=_activation_call,
)
REGISTRY.zero(
    *(t for t in ACTIVATIONS if t not in SOFTMAXES and t is not nn.GLU), family="activation", macs=_activation_call
)
REGISTRY.zero(nn.GLU, family="glu", macs=_glu_call)
REGISTRY.zero(*SOFTMAXES, family="softmax", macs=_softmax_call)
REGISTRY.zero(*DROPOUT, family="dropout", macs=_no_macs)
REGISTRY.zero(*POOLING, family="pooling", macs=_no_macs)
REGISTRY.zero(*RESHAPING, family="reshaping", macs=_no_macs)
REGISTRY.zero(*PADDING, family="padding", macs=_no_macs)
REGISTRY.zero(*PARAMETER_FREE_NORMS, family="parameter_free_norm", macs=_lrn_call)
REGISTRY.zero(*DISTANCES, family="distance", macs=_no_macs)
REGISTRY.zero(*CONTAINERS, family="container", macs=_no_macs)
