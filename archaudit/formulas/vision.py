"""Vision blocks of ``timm`` and ``torchvision``: LayerScale, timm's Attention, StochasticDepth,
Conv2dNormActivation and Swin's ShiftedWindowAttention.

Every rule here is keyed by the class's qualified name, as in hf.py: declaring them imports neither package, and the
adapters read attributes off the module only. tests/test_vision_rules.py pins each name, with the upstream file it
comes from.

* ``LayerScale`` (``gamma (dim,)``, forward ``x * gamma``): ``dim`` parameters; no MACs and no column, by the
  convention in records.py: an element-wise product by a vector is not a multiply-accumulate (like attention's
  1/sqrt(d) scaling and RNN gate products, it is counted nowhere; FlopCounterMode does not count it either).
* timm ``Attention``: owns no parameter itself (qkv, the optional q/k/scale norms and proj are children, counted
  where they are); its own work is the scores ``Q K^T`` and the weighted sum ``A V``, ``B x heads x N x N x
  head_dim`` MACs each, and the softmax over ``B x heads x N x N`` scores, on the fused (scaled_dot_product_attention)
  and the explicit path alike.
* ``StochasticDepth``: no parameters; like dropout, its mask product is counted nowhere.
* ``Conv2dNormActivation``: a Sequential of its conv, norm and activation: a container, counted at its children.
* ``ShiftedWindowAttention``: owns ``relative_position_bias_table ((2*W0-1)*(2*W1-1), heads)`` and holds ``qkv`` and
  ``proj`` Linear children, which its forward applies with ``F.linear`` on their weights without calling them: its
  parameter formula covers the whole subtree (table and both Linears, as MultiheadAttention's does), and its MAC
  rule counts the projections and their bias adds as well as the attention products, per window of ``T = W0*W1``
  tokens after padding the input to a multiple of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount
from ..registry import REGISTRY
from .hf import _tensor
from .linear import LinearSpec, linear_params
from .zero import _no_macs

LAYER_SCALE = "timm.layers.layer_scale.LayerScale"
TIMM_ATTENTION = "timm.layers.attention.Attention"
STOCHASTIC_DEPTH = "torchvision.ops.stochastic_depth.StochasticDepth"
CONV2D_NORM_ACTIVATION = "torchvision.ops.misc.Conv2dNormActivation"
SHIFTED_WINDOW_ATTENTION = "torchvision.models.swin_transformer.ShiftedWindowAttention"


# --- LayerScale ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerScaleSpec:
    dim: int


def layer_scale_spec(m: nn.Module) -> LayerScaleSpec:
    """The width from ``gamma``'s shape ``(dim,)``."""
    return LayerScaleSpec(_tensor(m, "gamma").numel())


def layer_scale_params(s: LayerScaleSpec) -> int:
    return s.dim


def _layer_scale_expr(s: LayerScaleSpec) -> str:
    return str(s.dim)


def _layer_scale_call(m: nn.Module, call: Call) -> MacCount:
    """``x * gamma``: an element-wise product, not a multiply-accumulate, and in no column (records.py)."""
    return MacCount()


REGISTRY.rule(
    LAYER_SCALE,
    family="timm_layerscale",
    spec=layer_scale_spec,
    params=layer_scale_params,
    expression=_layer_scale_expr,
    macs=_layer_scale_call,
)


# --- timm Attention ------------------------------------------------------------------------------------------------


def attention_products(batch: int, heads: int, queries: int, keys: int, head_dim: int) -> MacCount:
    """``Q K^T`` and ``A V``, ``batch x heads x queries x keys x head_dim`` MACs each; softmax over every score."""
    scores = batch * heads * queries * keys
    return MacCount(macs=2 * scores * head_dim, softmax=scores)


def _timm_attention_call(m: nn.Module, call: Call) -> MacCount:
    """Input ``(B, N, C)``; ``num_heads`` heads of ``head_dim`` (which may differ from ``C / heads``)."""
    batch, tokens, _ = call.input
    return attention_products(batch, int(getattr(m, "num_heads")), tokens, tokens, int(getattr(m, "head_dim")))  # noqa: B009


REGISTRY.zero(TIMM_ATTENTION, family="timm_attention", macs=_timm_attention_call)


# --- StochasticDepth, Conv2dNormActivation -------------------------------------------------------------------------


def _stochastic_depth_call(m: nn.Module, call: Call) -> MacCount:
    """A random mask times the input (or the input itself): dropout-like, counted nowhere."""
    return MacCount()


REGISTRY.zero(STOCHASTIC_DEPTH, family="tv_stochastic_depth", macs=_stochastic_depth_call)
REGISTRY.zero(CONV2D_NORM_ACTIVATION, family="container", macs=_no_macs)


# --- ShiftedWindowAttention ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowAttentionSpec:
    dim: int
    num_heads: int
    window: tuple[int, int]
    qkv_bias: bool = True
    proj_bias: bool = True

    @property
    def table(self) -> int:
        """Rows of the relative position bias table: every relative offset within a window."""
        return (2 * self.window[0] - 1) * (2 * self.window[1] - 1)


def window_attention_spec(m: nn.Module) -> WindowAttentionSpec:
    """Width from ``qkv``'s input, heads from the table's columns, the window from ``window_size``."""
    table = _tensor(m, "relative_position_bias_table")
    qkv, proj = m.get_submodule("qkv"), m.get_submodule("proj")
    w0, w1 = (int(w) for w in getattr(m, "window_size"))  # noqa: B009  (a list attribute, not a tensor)
    return WindowAttentionSpec(
        _tensor(qkv, "weight").shape[1],
        table.shape[1],
        (w0, w1),
        getattr(qkv, "bias", None) is not None,
        getattr(proj, "bias", None) is not None,
    )


def window_attention_params(s: WindowAttentionSpec) -> int:
    d = s.dim
    return (
        s.table * s.num_heads
        + linear_params(LinearSpec(d, 3 * d, s.qkv_bias))
        + linear_params(LinearSpec(d, d, s.proj_bias))
    )


def _window_attention_expr(s: WindowAttentionSpec) -> str:
    w0, w1, d = s.window[0], s.window[1], s.dim
    biases = (f" + 3*{d}" if s.qkv_bias else "") + (f" + {d}" if s.proj_bias else "")
    return f"(2*{w0}-1)*(2*{w1}-1)*{s.num_heads} + 4*{d}*{d}" + biases


def window_attention_macs(s: WindowAttentionSpec, batch: int, height: int, width: int) -> MacCount:
    """Input ``(B, H, W, C)`` padded up to multiples of the window: ``B x windows`` windows of ``T`` tokens.

    qkv ``tokens x C x 3C`` and proj ``tokens x C x C`` (applied by the module itself with F.linear), the scores and
    the weighted sum within each window, the softmax over every score, and each projection's bias adds.
    """
    w0, w1 = s.window
    windows = batch * -(-height // w0) * -(-width // w1)
    per_window = w0 * w1
    tokens = windows * per_window
    d = s.dim
    projections = MacCount(
        macs=tokens * d * 3 * d + tokens * d * d,
        bias=tokens * 3 * d * int(s.qkv_bias) + tokens * d * int(s.proj_bias),
    )
    return projections + attention_products(windows, s.num_heads, per_window, per_window, d // s.num_heads)


def _window_attention_call(m: nn.Module, call: Call) -> MacCount:
    batch, height, width, _ = call.input
    return window_attention_macs(window_attention_spec(m), batch, height, width)


REGISTRY.rule(
    SHIFTED_WINDOW_ATTENTION,
    family="tv_swin_attention",
    spec=window_attention_spec,
    params=window_attention_params,
    expression=_window_attention_expr,
    macs=_window_attention_call,
)

__all__ = ["CONV2D_NORM_ACTIVATION", "LAYER_SCALE", "SHIFTED_WINDOW_ATTENTION", "STOCHASTIC_DEPTH", "TIMM_ATTENTION"]
