"""Hypothesis strategies for every layer type registered in :data:`archaudit.REGISTRY`.

One composite strategy per registered type, collected in :data:`MODULE_STRATEGIES`. Every module is built on
the meta device, so a ``Linear(65536, 65536)`` or a 3-layer bidirectional LSTM costs no memory and no time:
parameter counts are read from shapes.

Each formula family also exports the strategy of its constructor keyword arguments (``linear_kwargs()``,
``conv_kwargs(ndim)``, ``recurrent_kwargs(mode)``, ``attention_kwargs()`` ...), so that other property tests
(MAC counts, FLOP counts) can draw the same hyperparameters and build the module themselves, on meta or on a
real device, with :func:`build_on` or :func:`meta_module`. :func:`with_fixed` pins some of those arguments
(``with_fixed(linear_kwargs(), bias=True)``) to restrict a property to where it is claimed to hold.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from typing import Any, Callable, Mapping

import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from torch import nn

from archaudit import REGISTRY  # importing archaudit registers every formula family
from archaudit.registry import qualified_name

Kwargs = dict[str, Any]

LARGE_SIZES = (1024, 2048, 3072, 4096, 8192, 32000, 50257, 65536)
"""Production-scale widths drawn now and then; free on the meta device."""


# --------------------------------------------------------------------------------------------- building blocks


def build_on(device: str | torch.device, cls: type[nn.Module], kwargs: Mapping[str, Any]) -> nn.Module:
    """``cls(**kwargs)`` with every tensor created on ``device``.

    ``device`` is passed to ``cls`` itself when it takes one (every formula type does; it is cheaper than
    the ``torch.device`` context, which intercepts every torch call); other types are built inside the context.
    """
    if _takes_device(cls):
        return cls(**kwargs, device=device)
    with torch.device(device):
        return cls(**kwargs)


@st.composite
def meta_module(draw: st.DrawFn, cls: type[nn.Module], kwargs: SearchStrategy[Kwargs]) -> nn.Module:
    """A ``cls`` built on the meta device from drawn constructor arguments."""
    return build_on("meta", cls, draw(kwargs))


@functools.lru_cache(maxsize=None)
def _takes_device(cls: type[nn.Module]) -> bool:
    try:
        return "device" in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def with_fixed(kwargs: SearchStrategy[Kwargs], **fixed: Any) -> SearchStrategy[Kwargs]:
    """``kwargs`` with some arguments pinned, e.g. ``with_fixed(conv_kwargs(1), groups=1, bias=True)``."""
    return kwargs.map(lambda drawn: {**drawn, **fixed})


# Strategies are built once and reused: a strategy object built inside a composite on every draw is
# validated afresh each time, which costs more than drawing from it.
_BOOL = st.booleans()
_ONE_IN_16 = st.integers(0, 15)
_LARGE = st.sampled_from(LARGE_SIZES)


@functools.lru_cache(maxsize=None)
def sizes(max_value: int = 512, min_value: int = 1) -> SearchStrategy[int]:
    """A layer width: ``min_value..max_value``, and about one draw in sixteen a production-scale width."""
    small = st.integers(min_value, max_value)

    @st.composite
    def _sizes(draw: st.DrawFn) -> int:
        # Large on 15, not 0: Hypothesis shrinks towards 0, so a failing example shrinks to a small width.
        return draw(_LARGE) if draw(_ONE_IN_16) == 15 else draw(small)

    return _sizes()


@functools.lru_cache(maxsize=None)
def _tuple_or_int(ndim: int, values: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """A per-dimension argument given either as one int or as a tuple of ``ndim`` ints."""
    return st.one_of(values, st.tuples(*[values] * ndim))


@functools.lru_cache(maxsize=None)
def _unit_floats(lo: float = 0.0, hi: float = 1.0) -> SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@functools.lru_cache(maxsize=None)
def _maybe(values: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.one_of(st.none(), values)


def _maybe_int(draw: st.DrawFn, lo: int, hi: int) -> int | None:
    """None, or an int in ``lo..hi`` (bounds that depend on earlier draws)."""
    return draw(st.integers(lo, hi)) if draw(_BOOL) else None


_EPS = st.sampled_from([1e-5, 1e-6, 1e-12])
_MOMENTUM = _maybe(_unit_floats(0.01, 0.99))
_DROPOUT = _unit_floats(0.0, 0.5)


# --------------------------------------------------------------------------------------------- linear, bilinear


@st.composite
def linear_kwargs(draw: st.DrawFn) -> Kwargs:
    return {"in_features": draw(sizes()), "out_features": draw(sizes()), "bias": draw(_BOOL)}


@st.composite
def bilinear_kwargs(draw: st.DrawFn) -> Kwargs:
    return {
        "in1_features": draw(sizes()),
        "in2_features": draw(sizes()),
        "out_features": draw(sizes()),
        "bias": draw(_BOOL),
    }


# --------------------------------------------------------------------------------------------- convolutions

_GROUPS = st.one_of(st.just(1), st.integers(1, 8), st.sampled_from([16, 32]))
_KERNEL = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 11])
_STRIDE = st.integers(1, 3)
_PAD = st.integers(0, 3)
_PADDING_MODES = st.sampled_from(["zeros", "reflect", "replicate", "circular"])


@st.composite
def conv_kwargs(draw: st.DrawFn, ndim: int, transposed: bool = False) -> Kwargs:
    """Conv{ndim}d (or ConvTranspose{ndim}d) arguments; channels are multiples of ``groups``.

    ``kernel_size``, ``stride``, ``dilation`` and ``padding`` are drawn per dimension, as an int or a tuple.
    ``padding`` may be ``"same"``/``"valid"`` (plain convolutions, ``"same"`` only with stride 1) and
    ``padding_mode`` anything PyTorch accepts (transposed convolutions: ``"zeros"`` only).
    """
    groups = draw(_GROUPS)
    stride = draw(_tuple_or_int(ndim, _STRIDE))
    dilation = draw(_tuple_or_int(ndim, _STRIDE))
    kwargs: Kwargs = {
        "in_channels": groups * draw(sizes(max_value=64)),
        "out_channels": groups * draw(sizes(max_value=64)),
        "kernel_size": draw(_tuple_or_int(ndim, _KERNEL)),
        "stride": stride,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(_BOOL),
    }
    if transposed:
        # output_padding must be smaller than stride or dilation, per dimension.
        strides = stride if isinstance(stride, tuple) else (stride,) * ndim
        dilations = dilation if isinstance(dilation, tuple) else (dilation,) * ndim
        kwargs["padding"] = draw(_tuple_or_int(ndim, _PAD))
        kwargs["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations))
        kwargs["padding_mode"] = "zeros"
        return kwargs
    unit_stride = stride == 1 or stride == (1,) * ndim
    choice = draw(st.integers(0, 2 if unit_stride else 1))
    kwargs["padding"] = draw(_tuple_or_int(ndim, _PAD)) if choice == 0 else ("valid", "same")[choice - 1]
    kwargs["padding_mode"] = draw(_PADDING_MODES)
    return kwargs


# --------------------------------------------------------------------------------------------- normalisation


@st.composite
def batch_norm_kwargs(draw: st.DrawFn) -> Kwargs:
    """BatchNorm1d/2d/3d and SyncBatchNorm."""
    return {
        "num_features": draw(sizes()),
        "eps": draw(_EPS),
        "momentum": draw(_MOMENTUM),
        "affine": draw(_BOOL),
        "track_running_stats": draw(_BOOL),
    }


instance_norm_kwargs = batch_norm_kwargs
"""InstanceNorm1d/2d/3d take the same arguments as BatchNorm."""


_NUM_GROUPS = st.integers(1, 32)


@st.composite
def group_norm_kwargs(draw: st.DrawFn) -> Kwargs:
    num_groups = draw(_NUM_GROUPS)
    return {
        "num_groups": num_groups,
        "num_channels": num_groups * draw(sizes(max_value=64)),
        "eps": draw(_EPS),
        "affine": draw(_BOOL),
    }


_SHAPE_DIMS = st.lists(sizes(), min_size=1, max_size=3)
_SHAPE_FORM = st.sampled_from(["tuple", "list", "int"])


@st.composite
def normalized_shapes(draw: st.DrawFn) -> int | tuple[int, ...] | list[int]:
    """1 to 3 trailing dimensions, given as an int (1-D only), a tuple or a list."""
    dims = draw(_SHAPE_DIMS)
    form = draw(_SHAPE_FORM)
    if form == "int" and len(dims) == 1:
        return dims[0]
    return list(dims) if form == "list" else tuple(dims)


@st.composite
def layer_norm_kwargs(draw: st.DrawFn) -> Kwargs:
    return {
        "normalized_shape": draw(normalized_shapes()),
        "eps": draw(_EPS),
        "elementwise_affine": draw(_BOOL),
        "bias": draw(_BOOL),
    }


@st.composite
def rms_norm_kwargs(draw: st.DrawFn) -> Kwargs:
    return {
        "normalized_shape": draw(normalized_shapes()),
        "eps": draw(_maybe(_EPS)),
        "elementwise_affine": draw(_BOOL),
    }


# --------------------------------------------------------------------------------------------- embeddings

_MAX_NORM = _maybe(_unit_floats(0.5, 10.0))
_BAG_MODES = st.sampled_from(["sum", "mean", "max"])


@st.composite
def embedding_kwargs(draw: st.DrawFn) -> Kwargs:
    num_embeddings = draw(sizes(max_value=4096))
    return {
        "num_embeddings": num_embeddings,
        "embedding_dim": draw(sizes()),
        "padding_idx": _maybe_int(draw, -num_embeddings, num_embeddings - 1),
        "max_norm": draw(_MAX_NORM),
        "scale_grad_by_freq": draw(_BOOL),
        "sparse": draw(_BOOL),
    }


@st.composite
def embedding_bag_kwargs(draw: st.DrawFn) -> Kwargs:
    num_embeddings = draw(sizes(max_value=4096))
    return {
        "num_embeddings": num_embeddings,
        "embedding_dim": draw(sizes()),
        "max_norm": draw(_MAX_NORM),
        "scale_grad_by_freq": draw(_BOOL),
        "mode": draw(_BAG_MODES),
        "sparse": draw(_BOOL),
        "include_last_offset": draw(_BOOL),
        "padding_idx": _maybe_int(draw, -num_embeddings, num_embeddings - 1),
    }


# --------------------------------------------------------------------------------------------- recurrent

_NUM_LAYERS = st.integers(1, 4)
_NONLINEARITY = st.sampled_from(["tanh", "relu"])


def _check_mode(where: str, mode: str) -> None:
    if mode not in {"RNN", "LSTM", "GRU"}:
        raise ValueError(f"{where}: {mode=} is not one of 'RNN', 'LSTM', 'GRU'")


@st.composite
def recurrent_kwargs(draw: st.DrawFn, mode: str) -> Kwargs:
    """RNN/LSTM/GRU arguments (``mode`` is ``"RNN"``, ``"LSTM"`` or ``"GRU"``).

    ``proj_size`` (LSTM only) is 0 or in ``1..hidden_size-1``; ``dropout`` is non-zero only when stacked,
    since PyTorch warns about dropout on a single layer.
    """
    _check_mode("recurrent_kwargs", mode)
    hidden_size = draw(sizes())
    num_layers = draw(_NUM_LAYERS)
    kwargs: Kwargs = {
        "input_size": draw(sizes()),
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "bias": draw(_BOOL),
        "batch_first": draw(_BOOL),
        "dropout": draw(_DROPOUT) if num_layers > 1 else 0.0,
        "bidirectional": draw(_BOOL),
    }
    if mode == "RNN":
        kwargs["nonlinearity"] = draw(_NONLINEARITY)
    if mode == "LSTM" and hidden_size > 1:
        kwargs["proj_size"] = _maybe_int(draw, 1, hidden_size - 1) or 0
    return kwargs


@st.composite
def cell_kwargs(draw: st.DrawFn, mode: str) -> Kwargs:
    """RNNCell/LSTMCell/GRUCell arguments."""
    _check_mode("cell_kwargs", mode)
    kwargs: Kwargs = {"input_size": draw(sizes()), "hidden_size": draw(sizes()), "bias": draw(_BOOL)}
    if mode == "RNN":
        kwargs["nonlinearity"] = draw(_NONLINEARITY)
    return kwargs


# --------------------------------------------------------------------------------------------- attention

_HEADS = st.integers(1, 16)
_OTHER_DIM = _maybe(sizes())


@st.composite
def attention_kwargs(draw: st.DrawFn) -> Kwargs:
    """MultiheadAttention arguments; ``embed_dim = num_heads * head_dim``.

    ``kdim``/``vdim`` are each None (= ``embed_dim``) or a drawn width, so both the packed ``in_proj_weight``
    and the separate ``q/k/v_proj_weight`` layouts occur.
    """
    num_heads = draw(_HEADS)
    return {
        "embed_dim": num_heads * draw(sizes(max_value=64)),
        "num_heads": num_heads,
        "dropout": draw(_DROPOUT),
        "bias": draw(_BOOL),
        "add_bias_kv": draw(_BOOL),
        "add_zero_attn": draw(_BOOL),
        "kdim": draw(_OTHER_DIM),
        "vdim": draw(_OTHER_DIM),
        "batch_first": draw(_BOOL),
    }


_ACTIVATIONS: SearchStrategy[str | Callable[..., Any]] = st.one_of(
    st.sampled_from(["relu", "gelu"]),
    st.just(F.silu),
    st.builds(nn.GELU, approximate=st.sampled_from(["none", "tanh"])),
    st.builds(nn.ReLU),
)
"""A Transformer layer's ``activation``: a name, a function, or a module (which becomes a child)."""


@st.composite
def transformer_layer_kwargs(draw: st.DrawFn) -> Kwargs:
    """TransformerEncoderLayer/TransformerDecoderLayer arguments; ``d_model = nhead * head_dim``."""
    nhead = draw(_HEADS)
    return {
        "d_model": nhead * draw(sizes(max_value=64)),
        "nhead": nhead,
        "dim_feedforward": draw(sizes(max_value=2048)),
        "dropout": draw(_DROPOUT),
        "activation": draw(_ACTIVATIONS),
        "layer_norm_eps": draw(_EPS),
        "batch_first": draw(_BOOL),
        "norm_first": draw(_BOOL),
        "bias": draw(_BOOL),
    }


_NUM_PARAMETERS = st.one_of(st.just(1), sizes())


@st.composite
def prelu_kwargs(draw: st.DrawFn) -> Kwargs:
    return {"num_parameters": draw(_NUM_PARAMETERS), "init": draw(_DROPOUT)}


# --------------------------------------------------------------------------------------------- known-zero types


def _zero(cls: type[nn.Module], **arguments: SearchStrategy[Any]) -> SearchStrategy[nn.Module]:
    """A parameter-free ``cls`` built from independently drawn keyword arguments."""
    return meta_module(cls, st.fixed_dictionaries(arguments))


_INPLACE = st.booleans()
_DIM = st.integers(-3, 3)


def _pool_kwargs(ndim: int, *, padding: bool = True) -> dict[str, SearchStrategy[Any]]:
    kw: dict[str, SearchStrategy[Any]] = {
        "kernel_size": _tuple_or_int(ndim, st.integers(2, 7)),
        "stride": st.one_of(st.none(), _tuple_or_int(ndim, st.integers(1, 3))),
    }
    if padding:
        kw["padding"] = _tuple_or_int(ndim, st.integers(0, 1))
    return kw


def _max_pool(cls: type[nn.Module], ndim: int) -> SearchStrategy[nn.Module]:
    return _zero(cls, **_pool_kwargs(ndim), dilation=_tuple_or_int(ndim, st.integers(1, 2)),
                 return_indices=st.booleans(), ceil_mode=st.booleans())


def _avg_pool(cls: type[nn.Module], ndim: int) -> SearchStrategy[nn.Module]:
    extra = {} if ndim == 1 else {"divisor_override": st.one_of(st.none(), st.integers(1, 9))}
    return _zero(cls, **_pool_kwargs(ndim), ceil_mode=st.booleans(), count_include_pad=st.booleans(), **extra)


def _adaptive_size(ndim: int) -> SearchStrategy[Any]:
    return st.one_of(st.integers(1, 16), st.tuples(*[st.one_of(st.none(), st.integers(1, 16))] * ndim))


@st.composite
def _fractional_max_pool(draw: st.DrawFn, cls: type[nn.Module], ndim: int) -> nn.Module:
    kwargs: Kwargs = {"kernel_size": draw(_tuple_or_int(ndim, st.integers(2, 5))),
                      "return_indices": draw(_BOOL)}
    if draw(_BOOL):
        kwargs["output_size"] = draw(_tuple_or_int(ndim, st.integers(1, 16)))
    else:
        kwargs["output_ratio"] = draw(_tuple_or_int(ndim, _unit_floats(0.1, 0.9)))
    return build_on("meta", cls, kwargs)


def _padding(cls: type[nn.Module], ndim: int, *, value: bool = False) -> SearchStrategy[nn.Module]:
    pads = st.one_of(st.integers(0, 4), st.tuples(*[st.integers(0, 4)] * (2 * ndim)))
    if value:
        return _zero(cls, padding=pads, value=_unit_floats(-1.0, 1.0))
    return _zero(cls, padding=pads)


_SCALE_FACTOR = st.one_of(st.integers(1, 4), _unit_floats(0.5, 4.0))
_UPSAMPLE_MODES = st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear"])


@st.composite
def _upsample(draw: st.DrawFn, cls: type[nn.Module] = nn.Upsample) -> nn.Module:
    kwargs: Kwargs = {}
    if draw(_BOOL):
        kwargs["size"] = draw(_tuple_or_int(2, st.integers(1, 64)))
    else:
        kwargs["scale_factor"] = draw(_SCALE_FACTOR)
    if cls is nn.Upsample:
        mode = draw(_UPSAMPLE_MODES)
        kwargs["mode"] = mode
        if mode not in {"nearest", "nearest-exact"}:
            kwargs["align_corners"] = draw(_maybe(_BOOL))
    return build_on("meta", cls, kwargs)


_UNFLATTENED = st.lists(st.integers(1, 16), min_size=1, max_size=3).map(tuple)


@st.composite
def _unflatten(draw: st.DrawFn) -> nn.Module:
    return build_on("meta", nn.Unflatten, {"dim": draw(_DIM), "unflattened_size": draw(_UNFLATTENED)})


@st.composite
def _hardtanh(draw: st.DrawFn) -> nn.Module:
    low = draw(_unit_floats(-3.0, 0.0))
    return build_on("meta", nn.Hardtanh, {"min_val": low, "max_val": low + draw(_unit_floats(0.1, 6.0)),
                                          "inplace": draw(_INPLACE)})


@st.composite
def _rrelu(draw: st.DrawFn) -> nn.Module:
    lower = draw(_unit_floats(0.0, 0.3))
    return build_on("meta", nn.RReLU, {"lower": lower, "upper": lower + draw(_unit_floats(0.0, 0.3)),
                                       "inplace": draw(_INPLACE)})


_ZERO_LEAF_STRATEGIES: dict[type[nn.Module], SearchStrategy[nn.Module]] = {
    # activations
    nn.CELU: _zero(nn.CELU, alpha=_unit_floats(0.1, 2.0), inplace=_INPLACE),
    nn.ELU: _zero(nn.ELU, alpha=_unit_floats(0.1, 2.0), inplace=_INPLACE),
    nn.GELU: _zero(nn.GELU, approximate=st.sampled_from(["none", "tanh"])),
    nn.GLU: _zero(nn.GLU, dim=_DIM),
    nn.Hardshrink: _zero(nn.Hardshrink, lambd=_unit_floats(0.0, 2.0)),
    nn.Hardsigmoid: _zero(nn.Hardsigmoid, inplace=_INPLACE),
    nn.Hardswish: _zero(nn.Hardswish, inplace=_INPLACE),
    nn.Hardtanh: _hardtanh(),
    nn.LeakyReLU: _zero(nn.LeakyReLU, negative_slope=_unit_floats(0.0, 0.5), inplace=_INPLACE),
    nn.LogSigmoid: _zero(nn.LogSigmoid),
    nn.LogSoftmax: _zero(nn.LogSoftmax, dim=st.one_of(st.none(), _DIM)),
    nn.Mish: _zero(nn.Mish, inplace=_INPLACE),
    nn.RReLU: _rrelu(),
    nn.ReLU: _zero(nn.ReLU, inplace=_INPLACE),
    nn.ReLU6: _zero(nn.ReLU6, inplace=_INPLACE),
    nn.SELU: _zero(nn.SELU, inplace=_INPLACE),
    nn.SiLU: _zero(nn.SiLU, inplace=_INPLACE),
    nn.Sigmoid: _zero(nn.Sigmoid),
    nn.Softmax: _zero(nn.Softmax, dim=st.one_of(st.none(), _DIM)),
    nn.Softmax2d: _zero(nn.Softmax2d),
    nn.Softmin: _zero(nn.Softmin, dim=st.one_of(st.none(), _DIM)),
    nn.Softplus: _zero(nn.Softplus, beta=_unit_floats(0.5, 5.0), threshold=_unit_floats(1.0, 30.0)),
    nn.Softshrink: _zero(nn.Softshrink, lambd=_unit_floats(0.0, 2.0)),
    nn.Softsign: _zero(nn.Softsign),
    nn.Tanh: _zero(nn.Tanh),
    nn.Tanhshrink: _zero(nn.Tanhshrink),
    nn.Threshold: _zero(nn.Threshold, threshold=_unit_floats(-1.0, 1.0), value=_unit_floats(-1.0, 1.0),
                        inplace=_INPLACE),
    # dropout
    **{cls: _zero(cls, p=_unit_floats(), inplace=_INPLACE)
       for cls in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)},
    # pooling
    nn.MaxPool1d: _max_pool(nn.MaxPool1d, 1),
    nn.MaxPool2d: _max_pool(nn.MaxPool2d, 2),
    nn.MaxPool3d: _max_pool(nn.MaxPool3d, 3),
    nn.AvgPool1d: _avg_pool(nn.AvgPool1d, 1),
    nn.AvgPool2d: _avg_pool(nn.AvgPool2d, 2),
    nn.AvgPool3d: _avg_pool(nn.AvgPool3d, 3),
    nn.AdaptiveMaxPool1d: _zero(nn.AdaptiveMaxPool1d, output_size=st.integers(1, 16), return_indices=st.booleans()),
    nn.AdaptiveMaxPool2d: _zero(nn.AdaptiveMaxPool2d, output_size=_adaptive_size(2), return_indices=st.booleans()),
    nn.AdaptiveMaxPool3d: _zero(nn.AdaptiveMaxPool3d, output_size=_adaptive_size(3), return_indices=st.booleans()),
    nn.AdaptiveAvgPool1d: _zero(nn.AdaptiveAvgPool1d, output_size=st.integers(1, 16)),
    nn.AdaptiveAvgPool2d: _zero(nn.AdaptiveAvgPool2d, output_size=_adaptive_size(2)),
    nn.AdaptiveAvgPool3d: _zero(nn.AdaptiveAvgPool3d, output_size=_adaptive_size(3)),
    nn.LPPool1d: _zero(nn.LPPool1d, norm_type=st.sampled_from([1.0, 2.0, 3.0]), **_pool_kwargs(1, padding=False),
                       ceil_mode=st.booleans()),
    nn.LPPool2d: _zero(nn.LPPool2d, norm_type=st.sampled_from([1.0, 2.0, 3.0]), **_pool_kwargs(2, padding=False),
                       ceil_mode=st.booleans()),
    nn.LPPool3d: _zero(nn.LPPool3d, norm_type=st.sampled_from([1.0, 2.0, 3.0]), **_pool_kwargs(3, padding=False),
                       ceil_mode=st.booleans()),
    nn.FractionalMaxPool2d: _fractional_max_pool(nn.FractionalMaxPool2d, 2),
    nn.FractionalMaxPool3d: _fractional_max_pool(nn.FractionalMaxPool3d, 3),
    nn.MaxUnpool1d: _zero(nn.MaxUnpool1d, **_pool_kwargs(1)),
    nn.MaxUnpool2d: _zero(nn.MaxUnpool2d, **_pool_kwargs(2)),
    nn.MaxUnpool3d: _zero(nn.MaxUnpool3d, **_pool_kwargs(3)),
    # reshaping
    nn.Identity: _zero(nn.Identity),
    nn.Flatten: _zero(nn.Flatten, start_dim=st.integers(0, 2), end_dim=st.sampled_from([-1, 3])),
    nn.Unflatten: _unflatten(),
    nn.Fold: _zero(nn.Fold, output_size=_tuple_or_int(2, st.integers(4, 32)),
                   kernel_size=_tuple_or_int(2, st.integers(1, 4)), dilation=_tuple_or_int(2, st.integers(1, 2)),
                   padding=_tuple_or_int(2, st.integers(0, 2)), stride=_tuple_or_int(2, st.integers(1, 3))),
    nn.Unfold: _zero(nn.Unfold, kernel_size=_tuple_or_int(2, st.integers(1, 4)),
                     dilation=_tuple_or_int(2, st.integers(1, 2)), padding=_tuple_or_int(2, st.integers(0, 2)),
                     stride=_tuple_or_int(2, st.integers(1, 3))),
    nn.PixelShuffle: _zero(nn.PixelShuffle, upscale_factor=st.integers(1, 4)),
    nn.PixelUnshuffle: _zero(nn.PixelUnshuffle, downscale_factor=st.integers(1, 4)),
    nn.ChannelShuffle: _zero(nn.ChannelShuffle, groups=st.integers(1, 8)),
    nn.Upsample: _upsample(nn.Upsample),
    nn.UpsamplingNearest2d: _upsample(nn.UpsamplingNearest2d),
    nn.UpsamplingBilinear2d: _upsample(nn.UpsamplingBilinear2d),
    # padding
    nn.ConstantPad1d: _padding(nn.ConstantPad1d, 1, value=True),
    nn.ConstantPad2d: _padding(nn.ConstantPad2d, 2, value=True),
    nn.ConstantPad3d: _padding(nn.ConstantPad3d, 3, value=True),
    nn.ZeroPad1d: _padding(nn.ZeroPad1d, 1),
    nn.ZeroPad2d: _padding(nn.ZeroPad2d, 2),
    nn.ZeroPad3d: _padding(nn.ZeroPad3d, 3),
    nn.ReflectionPad1d: _padding(nn.ReflectionPad1d, 1),
    nn.ReflectionPad2d: _padding(nn.ReflectionPad2d, 2),
    nn.ReflectionPad3d: _padding(nn.ReflectionPad3d, 3),
    nn.ReplicationPad1d: _padding(nn.ReplicationPad1d, 1),
    nn.ReplicationPad2d: _padding(nn.ReplicationPad2d, 2),
    nn.ReplicationPad3d: _padding(nn.ReplicationPad3d, 3),
    nn.CircularPad1d: _padding(nn.CircularPad1d, 1),
    nn.CircularPad2d: _padding(nn.CircularPad2d, 2),
    nn.CircularPad3d: _padding(nn.CircularPad3d, 3),
    # parameter-free normalisation, distances
    nn.LocalResponseNorm: _zero(nn.LocalResponseNorm, size=st.integers(1, 9), alpha=_unit_floats(1e-5, 1e-3),
                                beta=_unit_floats(0.5, 1.0), k=_unit_floats(0.5, 2.0)),
    nn.CrossMapLRN2d: _zero(nn.CrossMapLRN2d, size=st.integers(1, 9), alpha=_unit_floats(1e-5, 1e-3),
                            beta=_unit_floats(0.5, 1.0), k=_unit_floats(0.5, 2.0)),
    nn.CosineSimilarity: _zero(nn.CosineSimilarity, dim=_DIM, eps=st.sampled_from([1e-8, 1e-6])),
    nn.PairwiseDistance: _zero(nn.PairwiseDistance, p=st.sampled_from([1.0, 2.0, 3.0]),
                               eps=st.sampled_from([1e-6, 1e-8]), keepdim=st.booleans()),
}


FORMULA_STRATEGIES: dict[type[nn.Module], SearchStrategy[nn.Module]] = {
    nn.Linear: meta_module(nn.Linear, linear_kwargs()),
    nn.Bilinear: meta_module(nn.Bilinear, bilinear_kwargs()),
    nn.Conv1d: meta_module(nn.Conv1d, conv_kwargs(1)),
    nn.Conv2d: meta_module(nn.Conv2d, conv_kwargs(2)),
    nn.Conv3d: meta_module(nn.Conv3d, conv_kwargs(3)),
    nn.ConvTranspose1d: meta_module(nn.ConvTranspose1d, conv_kwargs(1, transposed=True)),
    nn.ConvTranspose2d: meta_module(nn.ConvTranspose2d, conv_kwargs(2, transposed=True)),
    nn.ConvTranspose3d: meta_module(nn.ConvTranspose3d, conv_kwargs(3, transposed=True)),
    nn.BatchNorm1d: meta_module(nn.BatchNorm1d, batch_norm_kwargs()),
    nn.BatchNorm2d: meta_module(nn.BatchNorm2d, batch_norm_kwargs()),
    nn.BatchNorm3d: meta_module(nn.BatchNorm3d, batch_norm_kwargs()),
    nn.SyncBatchNorm: meta_module(nn.SyncBatchNorm, batch_norm_kwargs()),
    nn.InstanceNorm1d: meta_module(nn.InstanceNorm1d, instance_norm_kwargs()),
    nn.InstanceNorm2d: meta_module(nn.InstanceNorm2d, instance_norm_kwargs()),
    nn.InstanceNorm3d: meta_module(nn.InstanceNorm3d, instance_norm_kwargs()),
    nn.GroupNorm: meta_module(nn.GroupNorm, group_norm_kwargs()),
    nn.LayerNorm: meta_module(nn.LayerNorm, layer_norm_kwargs()),
    nn.RMSNorm: meta_module(nn.RMSNorm, rms_norm_kwargs()),
    nn.Embedding: meta_module(nn.Embedding, embedding_kwargs()),
    nn.EmbeddingBag: meta_module(nn.EmbeddingBag, embedding_bag_kwargs()),
    nn.RNN: meta_module(nn.RNN, recurrent_kwargs("RNN")),
    nn.LSTM: meta_module(nn.LSTM, recurrent_kwargs("LSTM")),
    nn.GRU: meta_module(nn.GRU, recurrent_kwargs("GRU")),
    nn.RNNCell: meta_module(nn.RNNCell, cell_kwargs("RNN")),
    nn.LSTMCell: meta_module(nn.LSTMCell, cell_kwargs("LSTM")),
    nn.GRUCell: meta_module(nn.GRUCell, cell_kwargs("GRU")),
    nn.MultiheadAttention: meta_module(nn.MultiheadAttention, attention_kwargs()),
    nn.PReLU: meta_module(nn.PReLU, prelu_kwargs()),
    nn.TransformerEncoderLayer: meta_module(nn.TransformerEncoderLayer, transformer_layer_kwargs()),
    nn.TransformerDecoderLayer: meta_module(nn.TransformerDecoderLayer, transformer_layer_kwargs()),
}


# --------------------------------------------------------------------------------------------- containers

CONTAINER_TYPES: tuple[type[nn.Module], ...] = tuple(
    t for t in REGISTRY.keys(family="container") if isinstance(t, type)
)
"""Registered known-zero types whose instances hold child modules (every other zero type is a leaf): the
registry's ``container`` rule."""

_NON_CONTAINER = st.deferred(lambda: st.one_of(*FORMULA_STRATEGIES.values(), *_ZERO_LEAF_STRATEGIES.values()))


@functools.lru_cache(maxsize=None)
def any_module(max_depth: int = 1) -> SearchStrategy[nn.Module]:
    """A module of any registered type; containers nest at most ``max_depth`` levels deep."""
    if max_depth <= 0:
        return _NON_CONTAINER
    return st.one_of(
        _NON_CONTAINER,
        sequentials(max_depth - 1),
        module_lists(max_depth - 1),
        module_dicts(max_depth - 1),
    )


@functools.lru_cache(maxsize=None)
def _child_lists(max_depth: int) -> SearchStrategy[list[nn.Module]]:
    return st.lists(any_module(max_depth), max_size=4)


def _children(draw: st.DrawFn, max_depth: int) -> list[nn.Module]:
    """0 to 4 children of random registered types; sometimes one of them twice (a tied module)."""
    children = draw(_child_lists(max_depth))
    if children and draw(_BOOL):
        children.append(children[draw(st.integers(0, len(children) - 1))])
    return children


@st.composite
def sequentials(draw: st.DrawFn, max_depth: int = 1) -> nn.Module:
    return nn.Sequential(*_children(draw, max_depth))


@st.composite
def module_lists(draw: st.DrawFn, max_depth: int = 1) -> nn.Module:
    return nn.ModuleList(_children(draw, max_depth))


_DICT_KEYS = st.lists(st.text("abcdefgh_", min_size=1, max_size=6), unique=True, max_size=4)


@st.composite
def module_dicts(draw: st.DrawFn, max_depth: int = 1) -> nn.Module:
    keys = draw(_DICT_KEYS)
    return nn.ModuleDict({f"m_{key}": draw(any_module(max_depth)) for key in keys})


_TRANSFORMER_LAYER_KWARGS = transformer_layer_kwargs()


@st.composite
def _small_transformer_layer_kwargs(draw: st.DrawFn) -> Kwargs:
    """Transformer layer arguments kept small: a stack of them is built whole."""
    nhead = draw(st.integers(1, 8))
    return {**draw(_TRANSFORMER_LAYER_KWARGS),
            "nhead": nhead, "d_model": nhead * draw(st.integers(1, 32)), "dim_feedforward": draw(st.integers(1, 256))}


_SMALL_LAYER_KWARGS = _small_transformer_layer_kwargs()


def _stack_norm(draw: st.DrawFn, d_model: int) -> nn.Module | None:
    """The optional final LayerNorm of a Transformer encoder or decoder stack."""
    if not draw(_BOOL):
        return None
    return nn.LayerNorm(d_model, bias=draw(_BOOL), device="meta")


@st.composite
def transformer_encoders(draw: st.DrawFn) -> nn.Module:
    kwargs = draw(_SMALL_LAYER_KWARGS)
    layer = build_on("meta", nn.TransformerEncoderLayer, kwargs)
    # enable_nested_tensor only changes the fast inference path; False keeps PyTorch from warning about it.
    return build_on("meta", nn.TransformerEncoder, {
        "encoder_layer": layer, "num_layers": draw(st.integers(1, 3)),
        "norm": _stack_norm(draw, kwargs["d_model"]), "enable_nested_tensor": False,
    })


@st.composite
def transformer_decoders(draw: st.DrawFn) -> nn.Module:
    kwargs = draw(_SMALL_LAYER_KWARGS)
    layer = build_on("meta", nn.TransformerDecoderLayer, kwargs)
    return build_on("meta", nn.TransformerDecoder, {
        "decoder_layer": layer, "num_layers": draw(st.integers(1, 3)), "norm": _stack_norm(draw, kwargs["d_model"]),
    })


@st.composite
def transformers(draw: st.DrawFn) -> nn.Module:
    kwargs = draw(_SMALL_LAYER_KWARGS)
    kwargs = {**kwargs, "num_encoder_layers": draw(st.integers(0, 3)), "num_decoder_layers": draw(st.integers(0, 3))}
    with warnings.catch_warnings():
        # nn.Transformer builds its encoder with enable_nested_tensor=True and warns when the fast path is off.
        warnings.filterwarnings("ignore", message="enable_nested_tensor is True", category=UserWarning)
        return build_on("meta", nn.Transformer, kwargs)


_CONTAINER_STRATEGIES: dict[type[nn.Module], SearchStrategy[nn.Module]] = {
    nn.Sequential: sequentials(),
    nn.ModuleList: module_lists(),
    nn.ModuleDict: module_dicts(),
    nn.TransformerEncoder: transformer_encoders(),
    nn.TransformerDecoder: transformer_decoders(),
    nn.Transformer: transformers(),
}


# --------------------------------------------------------------------------------------------- Hugging Face layers
# Keyed by the qualified name the rule is keyed by: transformers is imported inside the strategy, at the first draw,
# so that collecting the tests needs no transformers (a test drawing one of these is skipped where it is absent).


def hf_class(qualified: str) -> type[nn.Module]:
    """The transformers class named ``qualified``, imported now; skips the calling test without transformers."""
    pytest.importorskip("transformers", reason="transformers is not installed (it is no dependency of archaudit)")
    module_name, _, class_name = qualified.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert isinstance(cls, type) and issubclass(cls, nn.Module), qualified
    return cls


HF_CONV1D = "transformers.pytorch_utils.Conv1D"
HF_RMS_NORMS = (
    "transformers.models.llama.modeling_llama.LlamaRMSNorm",
    "transformers.models.mistral.modeling_mistral.MistralRMSNorm",
    "transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm",
    "transformers.models.gemma.modeling_gemma.GemmaRMSNorm",
    "transformers.models.t5.modeling_t5.T5LayerNorm",
)
HF_ACTIVATIONS = (
    "transformers.activations.NewGELUActivation",
    "transformers.activations.GELUActivation",
    "transformers.activations.FastGELUActivation",
    "transformers.activations.QuickGELUActivation",
    "transformers.activations.SiLUActivation",
)


@st.composite
def hf_conv1d(draw: st.DrawFn) -> nn.Module:
    """``Conv1D(nf, nx)`` on meta: weight ``(nx, nf)``, bias ``(nf,)``."""
    cls = hf_class(HF_CONV1D)
    return build_on("meta", cls, {"nf": draw(sizes()), "nx": draw(sizes())})


@st.composite
def hf_rms_norm(draw: st.DrawFn, qualified: str) -> nn.Module:
    """An RMSNorm of the transformers family on meta; its first argument (``hidden_size``, Gemma's ``dim``) is
    passed positionally, as the models do."""
    cls = hf_class(qualified)
    with torch.device("meta"):
        return cls(draw(sizes()), eps=draw(_EPS))


@st.composite
def hf_activation(draw: st.DrawFn, qualified: str) -> nn.Module:
    """A transformers activation module; GELUActivation with its C or its Python (erf) implementation."""
    cls = hf_class(qualified)
    if qualified.endswith(".GELUActivation"):
        return cls(use_gelu_python=draw(_BOOL))
    return cls()


HF_LLAMA_LIKE_ATTENTIONS = {
    "transformers.models.llama.modeling_llama.LlamaAttention": "LlamaConfig",
    "transformers.models.mistral.modeling_mistral.MistralAttention": "MistralConfig",
    "transformers.models.qwen2.modeling_qwen2.Qwen2Attention": "Qwen2Config",
}
"""Grouped-query attention modules, each with the config class it is built from."""
HF_GPT2_ATTENTION = "transformers.models.gpt2.modeling_gpt2.GPT2Attention"
HF_BERT_SELF_ATTENTIONS = {
    "transformers.models.bert.modeling_bert.BertSelfAttention": "eager",
    "transformers.models.bert.modeling_bert.BertSdpaSelfAttention": "sdpa",
}
"""BERT's self-attention classes, each with the attention implementation that selects it."""
HF_ATTENTIONS = (*HF_LLAMA_LIKE_ATTENTIONS, HF_GPT2_ATTENTION, *HF_BERT_SELF_ATTENTIONS)
_ATTN_IMPLEMENTATION = st.sampled_from(["eager", "sdpa"])
_HF_HEADS = st.integers(1, 4)
_HF_HEAD_DIM = st.integers(1, 8).map(lambda n: 2 * n)  # rotary embeddings split each head in halves


@st.composite
def hf_llama_attention(draw: st.DrawFn, qualified: str) -> nn.Module:
    """A Llama/Mistral/Qwen2 attention on meta from a small config: query heads over a divisor of them as key/value
    heads (grouped-query attention), ``head_dim`` sometimes apart from ``hidden / heads``, eager or sdpa."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    cls = hf_class(qualified)
    heads = draw(_HF_HEADS)
    kv_heads = draw(st.sampled_from([d for d in range(1, heads + 1) if heads % d == 0]))
    head_dim = draw(_HF_HEAD_DIM)
    hidden = heads * head_dim if draw(_BOOL) else draw(st.integers(1, 32))
    config = getattr(transformers, HF_LLAMA_LIKE_ATTENTIONS[qualified])(
        hidden_size=hidden, num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        num_hidden_layers=1, intermediate_size=8, vocab_size=16,
    )
    config._attn_implementation = draw(_ATTN_IMPLEMENTATION)
    with torch.device("meta"):
        return cls(config, layer_idx=0)


@st.composite
def hf_gpt2_attention(draw: st.DrawFn) -> nn.Module:
    """GPT-2's attention on meta from a small config (hidden = heads x head_dim), eager or sdpa."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    cls = hf_class(HF_GPT2_ATTENTION)
    heads = draw(_HF_HEADS)
    config = transformers.GPT2Config(
        n_embd=heads * draw(_HF_HEAD_DIM), n_head=heads, n_layer=1, n_positions=16, vocab_size=16
    )
    config._attn_implementation = draw(_ATTN_IMPLEMENTATION)
    with torch.device("meta"):
        return cls(config, layer_idx=0)


@st.composite
def hf_bert_self_attention(draw: st.DrawFn, qualified: str) -> nn.Module:
    """BERT's self-attention on meta from a small config, with absolute or relative position scores (the sdpa class
    falls back to the eager products for relative ones)."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    cls = hf_class(qualified)
    heads = draw(_HF_HEADS)
    config = transformers.BertConfig(
        hidden_size=heads * draw(_HF_HEAD_DIM), num_attention_heads=heads, num_hidden_layers=1,
        intermediate_size=8, vocab_size=16, max_position_embeddings=16,
        position_embedding_type=draw(st.sampled_from(["absolute", "relative_key", "relative_key_query"])),
    )
    config._attn_implementation = HF_BERT_SELF_ATTENTIONS[qualified]
    with torch.device("meta"):
        return cls(config)


_HF_ATTENTION_STRATEGIES: dict[str, SearchStrategy[nn.Module]] = {
    **{name: hf_llama_attention(name) for name in HF_LLAMA_LIKE_ATTENTIONS},
    HF_GPT2_ATTENTION: hf_gpt2_attention(),
    **{name: hf_bert_self_attention(name) for name in HF_BERT_SELF_ATTENTIONS},
}
"""Known-zero modules with children (their projections): drawn with them, as the models hold them."""

_HF_ZERO_STRATEGIES: dict[str, SearchStrategy[nn.Module]] = {
    **{name: hf_activation(name) for name in HF_ACTIVATIONS}, **_HF_ATTENTION_STRATEGIES,
}

HF_STRATEGIES: dict[str, SearchStrategy[nn.Module]] = {
    HF_CONV1D: hf_conv1d(),
    **{name: hf_rms_norm(name) for name in HF_RMS_NORMS},
    **_HF_ZERO_STRATEGIES,
}
"""The Hugging Face layers' strategies, by qualified name. Kept out of :func:`any_module` (containers draw
built-in types only), so that no container test depends on transformers."""


# --------------------------------------------------------------------------------------------- the table

MODULE_STRATEGIES: dict[type[nn.Module] | str, SearchStrategy[nn.Module]] = {
    **FORMULA_STRATEGIES, **_ZERO_LEAF_STRATEGIES, **_CONTAINER_STRATEGIES, **HF_STRATEGIES,
}
"""One strategy per rule key in :data:`archaudit.REGISTRY` (tests/test_registry.py holds the two to each other); each
draws modules of exactly that type. A rule keyed by a qualified name (``"package.module.Class"``) has its strategy
under the type itself, or under that name where the package may be absent."""

ZERO_STRATEGIES: dict[type[nn.Module] | str, SearchStrategy[nn.Module]] = {
    **_ZERO_LEAF_STRATEGIES, **_CONTAINER_STRATEGIES, **_HF_ZERO_STRATEGIES,
}


def key_name(key: type[nn.Module] | str) -> str:
    """A rule key as a test id: a type's ``__name__``, a qualified name's last part (``"Conv1D"``)."""
    return key.rpartition(".")[2] if isinstance(key, str) else key.__name__


def is_of_key(module: nn.Module, key: type[nn.Module] | str) -> bool:
    """Whether ``module`` is exactly of the rule key's type: that type, or the type of that qualified name."""
    return type(module) is key if isinstance(key, type) else qualified_name(type(module)) == key


def same_key(found: type | None, key: type[nn.Module] | str) -> bool:
    """Whether a lookup's ``registered_as`` type is the rule key (compared by qualified name for a name key)."""
    return found is key if isinstance(key, type) else found is not None and qualified_name(found) == key


def strategy_for(layer_type: type[nn.Module] | str) -> SearchStrategy[nn.Module]:
    """The strategy for a registered type or name; ``KeyError`` naming it when there is none."""
    try:
        return MODULE_STRATEGIES[layer_type]
    except KeyError:
        raise KeyError(f"no strategy for {key_name(layer_type)} (registered: {layer_type in REGISTRY})") from None


__all__ = [
    "CONTAINER_TYPES", "FORMULA_STRATEGIES", "HF_ACTIVATIONS", "HF_CONV1D", "HF_RMS_NORMS", "HF_STRATEGIES",
    "LARGE_SIZES", "MODULE_STRATEGIES", "ZERO_STRATEGIES", "hf_activation", "hf_class", "hf_conv1d", "hf_rms_norm",
    "is_of_key", "key_name", "same_key",
    "any_module", "attention_kwargs", "batch_norm_kwargs", "bilinear_kwargs", "build_on", "cell_kwargs",
    "conv_kwargs", "embedding_bag_kwargs", "embedding_kwargs", "group_norm_kwargs", "instance_norm_kwargs",
    "layer_norm_kwargs", "linear_kwargs", "meta_module", "module_dicts", "module_lists", "normalized_shapes",
    "prelu_kwargs", "recurrent_kwargs", "rms_norm_kwargs", "sequentials", "sizes", "strategy_for",
    "transformer_decoders", "transformer_encoders", "transformer_layer_kwargs", "transformers", "with_fixed",
]


# --------------------------------------------------------------------------------------------- input shapes
#
# Input shapes for a built module, for properties that run a forward pass (MAC counts against FlopCounterMode
# or an unrolled reference). Each strategy takes the module (on any device) and draws shapes it accepts:
# batched and unbatched forms, ``batch_first`` honoured, convolution sizes large enough for the kernel, padding
# mode and stride. Sizes stay small, since a forward pass on meta costs Python time per op, not per element.

_BATCH = st.integers(1, 4)
_SEQ = st.integers(1, 8)
_LEAD_DIMS = st.lists(st.integers(1, 6), max_size=3)
_EXTRA_SPATIAL = st.integers(0, 6)


@st.composite
def linear_input_shapes(draw: st.DrawFn, in_features: int) -> tuple[int, ...]:
    """``(*lead, in_features)`` of rank 1 to 4."""
    return (*draw(_LEAD_DIMS), in_features)


@st.composite
def bilinear_input_shapes(draw: st.DrawFn, in1_features: int, in2_features: int) -> tuple[tuple[int, ...], ...]:
    """``((*lead, in1), (*lead, in2))`` of rank 1 to 4, the same leading dimensions for both."""
    lead = tuple(draw(_LEAD_DIMS))
    return (*lead, in1_features), (*lead, in2_features)


def _per_dim(value: Any, ndim: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def conv_min_spatial(module: nn.Module) -> tuple[int, ...]:
    """The smallest spatial size per dimension that ``module`` (ConvNd or ConvTransposeNd) accepts."""
    ndim = len(module.kernel_size)
    kernel, stride, dilation = module.kernel_size, module.stride, module.dilation
    least = []
    for i in range(ndim):
        reach = dilation[i] * (kernel[i] - 1)  # the kernel's span less one
        if module.transposed:
            # output (in-1)*stride - 2*padding + reach + output_padding + 1 must be at least 1
            shortfall = 2 * module.padding[i] - reach - module.output_padding[i]
            least.append(1 + max(0, -(-shortfall // stride[i])))
            continue
        if module.padding == "valid":
            before = after = 0
        elif module.padding == "same":
            before, after = reach // 2, reach - reach // 2
        else:
            before = after = module.padding[i]
        size = max(1, reach + 1 - before - after)
        if module.padding_mode in {"reflect", "circular"}:
            size = max(size, max(before, after) + 1)  # reflect: pad < size; circular: pad <= size
        least.append(size)
    return tuple(least)


@st.composite
def conv_input_shapes(draw: st.DrawFn, module: nn.Module) -> tuple[int, ...]:
    """``(N, C, *spatial)`` or unbatched ``(C, *spatial)`` for a ConvNd or ConvTransposeNd."""
    spatial = tuple(low + draw(_EXTRA_SPATIAL) for low in conv_min_spatial(module))
    if draw(_BOOL):
        return (module.in_channels, *spatial)
    return (draw(_BATCH), module.in_channels, *spatial)


@st.composite
def attention_input_shapes(draw: st.DrawFn, module: nn.MultiheadAttention) -> tuple[tuple[int, ...], ...]:
    """``(query, key, value)`` shapes: target length L and source length S drawn apart; unbatched
    ``(L, E)``, ``(S, kdim)``, ``(S, vdim)`` or batched in the module's ``batch_first`` layout."""
    target, source = draw(_SEQ), draw(_SEQ)
    widths = (module.embed_dim, module.kdim, module.vdim)
    lengths = (target, source, source)
    if draw(_BOOL):
        return tuple((n, w) for n, w in zip(lengths, widths))
    batch = draw(_BATCH)
    if module.batch_first:
        return tuple((batch, n, w) for n, w in zip(lengths, widths))
    return tuple((n, batch, w) for n, w in zip(lengths, widths))


@st.composite
def transformer_layer_input_shapes(draw: st.DrawFn, module: nn.Module) -> tuple[tuple[int, ...], ...]:
    """``(src,)`` for an encoder layer, ``(tgt, memory)`` for a decoder layer; unbatched or batched in the
    layer's ``batch_first`` layout."""
    d_model = module.self_attn.embed_dim
    lengths = [draw(_SEQ)] if isinstance(module, nn.TransformerEncoderLayer) else [draw(_SEQ), draw(_SEQ)]
    if draw(_BOOL):
        return tuple((n, d_model) for n in lengths)
    batch = draw(_BATCH)
    first = module.self_attn.batch_first
    return tuple((batch, n, d_model) if first else (n, batch, d_model) for n in lengths)


@st.composite
def cell_input_shapes(draw: st.DrawFn, module: nn.Module) -> tuple[int, ...]:
    """``(N, input_size)`` or unbatched ``(input_size,)``."""
    return (module.input_size,) if draw(_BOOL) else (draw(_BATCH), module.input_size)


@st.composite
def recurrent_inputs(
    draw: st.DrawFn, module: nn.Module, max_steps: int = 6, max_batch: int = 4,
) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """``(shape, lengths)`` for RNN/LSTM/GRU: ``(L, N, H)`` (``(N, L, H)`` with ``batch_first``) or unbatched
    ``(L, H)``; ``lengths`` (one per sequence, each ``1..L``, any order) when the input is to be packed with
    ``pack_padded_sequence(..., enforce_sorted=False)``, else None."""
    steps = draw(st.integers(1, max_steps))
    if draw(_BOOL):
        return (steps, module.input_size), None
    batch = draw(st.integers(1, max_batch))
    shape = (batch, steps, module.input_size) if module.batch_first else (steps, batch, module.input_size)
    lengths = tuple(draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))) if draw(_BOOL) else None
    return shape, lengths


_RECURRENT_KWARGS = {mode: recurrent_kwargs(mode) for mode in ("RNN", "LSTM", "GRU")}
_SMALL_INPUT = st.integers(1, 8)
_SMALL_HIDDEN = st.integers(1, 16)
_SMALL_LAYERS = st.integers(1, 3)
_SMALL_WIDTH = st.integers(1, 12)
_BILINEAR_KWARGS = bilinear_kwargs()


@st.composite
def small_recurrent_kwargs(draw: st.DrawFn, mode: str) -> Kwargs:
    """:func:`recurrent_kwargs` with sizes small enough to run on CPU (input 1..8, hidden 1..16, 1..3 layers)
    and no inter-layer dropout, so that a reference implementation can reproduce the output exactly."""
    _check_mode("small_recurrent_kwargs", mode)
    kwargs = draw(_RECURRENT_KWARGS[mode])
    hidden_size = draw(_SMALL_HIDDEN)
    kwargs.update(input_size=draw(_SMALL_INPUT), hidden_size=hidden_size, num_layers=draw(_SMALL_LAYERS),
                  dropout=0.0)
    if mode == "LSTM":
        kwargs["proj_size"] = (_maybe_int(draw, 1, hidden_size - 1) or 0) if hidden_size > 1 else 0
    return kwargs


@st.composite
def small_bilinear_kwargs(draw: st.DrawFn) -> Kwargs:
    """:func:`bilinear_kwargs` with widths of 1..12, to run on CPU."""
    return {**draw(_BILINEAR_KWARGS), "in1_features": draw(_SMALL_WIDTH), "in2_features": draw(_SMALL_WIDTH),
            "out_features": draw(_SMALL_WIDTH)}


__all__ += [
    "attention_input_shapes", "bilinear_input_shapes", "cell_input_shapes", "conv_input_shapes", "conv_min_spatial",
    "linear_input_shapes", "recurrent_inputs", "small_bilinear_kwargs", "small_recurrent_kwargs",
    "transformer_layer_input_shapes",
]


# --------------------------------------------------------------------------------------------- timm and torchvision
from strategies_vision import VISION_STRATEGIES, VISION_ZERO_STRATEGIES  # noqa: E402

MODULE_STRATEGIES.update(VISION_STRATEGIES)
ZERO_STRATEGIES.update(VISION_ZERO_STRATEGIES)
