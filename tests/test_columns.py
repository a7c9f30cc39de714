"""The extra columns of a FLOPs audit (bias, norm, activation, softmax) against independent oracles.

archaudit/macs.py states each column's convention, which every oracle here follows:

* ``bias``: one addition per output element per bias vector;
* ``norm``: elements normalised (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm);
* ``activation``: elements through a non-linearity (including gate non-linearities inside RNN cells);
* ``softmax``: elements through a softmax (attention scores, Softmax layers).

Oracles, named in each test's docstring:

* **ColumnCounter**: a ``TorchDispatchMode`` over the real module's forward on meta tensors (shapes only; on meta
  attention takes its decomposed path, so its softmax is an aten op of its own, and RNN cells run gate by gate),
  FlopCounterMode-style: per column it adds the output elements of the aten ops that do that work (the op tables
  below). A fused ``nn.RNN``/``nn.LSTM``/``nn.GRU`` is one op, so it is run as the unrolled reference of
  tests/oracles.py (checked against the fused output in test_mac_formulas.py), under the same counter.
* **Hand arithmetic**, where no aten op marks the work (RMSNorm, LocalResponseNorm, CrossMapLRN2d and Softsign
  decompose into plain arithmetic), and in the pinned examples, with the arithmetic in a comment.
* **The registry itself**, for completeness: every registered type is checked here against an oracle, or has
  no column work by the convention (and its rule is checked to count none).

Every archaudit figure compared here comes from a MAC rule: audits run with ``flop_counter=False`` and have no
unsupported module.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils._python_dispatch import TorchDispatchMode

from archaudit import REGISTRY
from archaudit.inputs import InputSpec
from archaudit.macs import audit_macs
from archaudit.records import Call, MacCount
from oracles import unrolled_rnn
from strategies import (
    MODULE_STRATEGIES,
    same_key,
    attention_input_shapes,
    bilinear_input_shapes,
    cell_input_shapes,
    conv_input_shapes,
    key_name,
    linear_input_shapes,
    meta_module,
    recurrent_inputs,
    small_bilinear_kwargs,
    transformer_layer_input_shapes,
)

EXTRA = ("bias", "norm", "activation", "softmax")


def _budget(examples: int) -> settings:
    """At most ``examples`` per run, fewer when the loaded profile asks for fewer (dev: 30)."""
    return settings(max_examples=min(examples, settings.default.max_examples))


def _name(t: type[nn.Module] | str) -> str:
    return key_name(t)  # a rule keyed by a qualified name: its class name


# --------------------------------------------------------------------------------------------- the op counter

ACTIVATION_OPS = frozenset({
    "relu", "gelu", "silu", "sigmoid", "tanh", "elu", "celu", "leaky_relu", "hardtanh", "hardsigmoid",
    "hardswish", "mish", "softplus", "softshrink", "hardshrink", "threshold", "log_sigmoid_forward",
    "rrelu_with_noise", "_prelu_kernel", "glu", "erf",
})
"""Element-wise non-linearities: each output element went through the non-linearity once (GLU's output is half
its input: only the gating half goes through the sigmoid; ``erf`` is the exact GELU written out, as transformers'
``GELUActivation(use_gelu_python=True)`` does)."""

SOFTMAX_OPS = frozenset({"_softmax", "_log_softmax", "_safe_softmax"})

NORM_OPS = frozenset({
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_batch_norm_with_update", "_batch_norm_no_update", "native_layer_norm", "native_group_norm",
    "_fused_rms_norm",
})
"""Normalisations (InstanceNorm runs as a batch norm over ``(1, N*C, ...)``: the same elements). A norm's affine
shift is part of the normalisation, not a bias addition."""


NORM_MODULES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm)


def bias_vectors(module: nn.Module) -> list[torch.Tensor]:
    """The biases *added* to outputs: ``bias``, ``in_proj_bias``, ``bias_ih_l0_reverse`` ...; not a norm's shift
    (part of the normalisation), nor MultiheadAttention's ``bias_k``/``bias_v`` (concatenated to the keys and
    values)."""
    return [p for m in module.modules() if not isinstance(m, NORM_MODULES)
            for name, p in m.named_parameters(recurse=False) if "bias" in name and name not in {"bias_k", "bias_v"}]


def _tensors(values: Any) -> list[torch.Tensor]:
    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, (tuple, list)):
        return [t for v in values for t in _tensors(v)]
    if isinstance(values, dict):
        return _tensors(list(values.values()))
    return []


class ColumnCounter(TorchDispatchMode):
    """Counts, per extra column, the output elements of the aten ops doing that work in a forward pass.

    bias: ``addmm``'s bias (its first argument, broadcast over the output), ``convolution``'s bias, and an ``add``
    one of whose operands shares storage with one of the module's bias vectors (``Bilinear``, ``Linear`` on inputs
    of rank 4). Any other op reading a bias vector (views aside) is listed in ``unclassified``, so that a bias added
    some other way cannot be missed silently.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.biases = bias_vectors(module)
        self.counts: Counter[str] = Counter()
        self.unclassified: list[str] = []

    def _reads_bias(self, value: Any) -> bool:
        return any(torch._C._is_alias_of(t, b) for t in _tensors(value) for b in self.biases)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        base = name[:-1] if name.endswith("_") else name  # relu_ is relu, in place
        produced = _tensors(out)
        elements = produced[0].numel() if produced else 0
        if base in ACTIVATION_OPS:
            self.counts["activation"] += elements
        elif base in SOFTMAX_OPS:
            self.counts["softmax"] += elements
        elif base in NORM_OPS:
            self.counts["norm"] += elements
        elif base == "addmm":
            self.counts["bias"] += elements
        elif base == "convolution":
            if args[2] is not None:
                self.counts["bias"] += elements
        elif base == "add" and self._reads_bias(args[:2]):
            self.counts["bias"] += elements
        elif not func.is_view and self._reads_bias((args, kwargs)):
            self.unclassified.append(str(func))
        return out

    def columns(self) -> dict[str, int]:
        assert self.unclassified == [], f"ops reading a bias vector, not classified: {self.unclassified}"
        return {column: self.counts[column] for column in EXTRA}


def counted(module: nn.Module, run: Any, *inputs: Any) -> dict[str, int]:
    """The oracle's columns for ``run(*inputs)`` (``run`` is the module or a reference over it)."""
    counter = ColumnCounter(module)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        with counter:
            run(*inputs)
    return counter.columns()


def meta(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def audited(module: nn.Module, shapes: tuple[tuple[int, ...], ...]) -> dict[str, int]:
    """archaudit's extra columns for ``module(*shapes)``, summed over every record of the audit (each module's own
    work where it is called), after checking that every figure came from a MAC rule."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = audit_macs(module, [InputSpec(tuple(s)) for s in shapes], flop_counter=False)
    assert audit.unsupported == (), [(r.name, r.note) for r in audit.unsupported]
    assert all(r.source in {"formula", "none"} for r in audit.records), [(r.name, r.source) for r in audit.records]
    counts = audit.counts.as_dict()
    return {column: counts[column] for column in EXTRA}


def _columns(**values: int) -> dict[str, int]:
    return {column: values.get(column, 0) for column in EXTRA}


# --------------------------------------------------------------------------------------------- input shapes
# Shapes for the element-wise and normalisation layers (tests/strategies.py has them for the other families).

_SMALL = st.integers(1, 5)
_AT_LEAST_2 = st.integers(2, 5)
_LEAD = st.lists(_SMALL, max_size=2)

CHANNEL_NORMS = tuple(REGISTRY.keys(family="batchnorm"))
"""BatchNorm, SyncBatchNorm and InstanceNorm: the registry's batchnorm family."""


def _spatial_dims(module: nn.Module) -> tuple[int, int]:
    """The fewest and most spatial dimensions a channel norm takes after ``(N, C)``, asked of the module itself:
    the input ranks its own ``_check_input_dim`` accepts (an instance norm's own rank without a batch, less C, is
    its one spatial count: its unbatched input is drawn apart)."""
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        spatial = module._get_no_batch_dim() - 1
        return spatial, spatial
    accepted = []
    for rank in range(2, 6):
        try:
            module._check_input_dim(torch.empty((1,) * rank, device="meta"))
        except ValueError:
            continue
        accepted.append(rank - 2)
    assert accepted, f"{type(module).__name__} accepts no input of rank 2 to 5"
    return min(accepted), max(accepted)


def _family(module: nn.Module) -> str | None:
    found = REGISTRY.lookup_rule(type(module))
    return None if found is None else found[1].family


@st.composite
def column_inputs(draw: st.DrawFn, module: nn.Module) -> tuple[int, ...]:
    """An input shape ``module`` accepts: softmax/GLU dimensions that exist (GLU's of even size), PReLU's channels,
    a norm's channels or normalised shape; more than one value per channel where training mode requires it."""
    if isinstance(module, CHANNEL_NORMS):
        least, most = _spatial_dims(module)
        spatial = draw(st.lists(_SMALL, min_size=least, max_size=most))
        if isinstance(module, nn.modules.instancenorm._InstanceNorm):
            spatial[0] = draw(_AT_LEAST_2)  # instance statistics need two values per channel
            if draw(st.booleans()):
                return (module.num_features, *spatial)  # unbatched
        return (draw(_AT_LEAST_2), module.num_features, *spatial)  # batch statistics need two values
    if isinstance(module, nn.GroupNorm):  # group statistics need two values per group
        return (draw(_SMALL), module.num_channels, draw(_AT_LEAST_2), *draw(st.lists(_SMALL, max_size=1)))
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        return (*draw(_LEAD), *module.normalized_shape)
    if _family(module) == "hf_rmsnorm":  # transformers' RMSNorms: over the last axis, the weight's width
        return (*draw(_LEAD), module.weight.shape[0])
    if isinstance(module, nn.LocalResponseNorm):
        return tuple(draw(st.lists(_SMALL, min_size=3, max_size=5)))
    if isinstance(module, nn.CrossMapLRN2d):
        return tuple(draw(st.lists(_SMALL, min_size=4, max_size=4)))
    if isinstance(module, nn.Softmax2d):
        return tuple(draw(st.lists(_SMALL, min_size=3, max_size=4)))
    if isinstance(module, nn.PReLU):
        return (draw(_SMALL), module.num_parameters, *draw(st.lists(_SMALL, max_size=2)))
    dim = getattr(module, "dim", None)
    rank = 1 if dim is None else (dim + 1 if dim >= 0 else -dim)
    shape = draw(st.lists(_SMALL, min_size=rank, max_size=max(rank, 4)))
    if isinstance(module, nn.GLU):
        shape[dim] *= 2  # GLU halves its dimension
    return tuple(shape)


# --------------------------------------------------------------------------------------------- 1. element-wise layers

# The registry's families, by the column their work lands in (a new type of one of these families is tested here
# without a change to this file).
COLUMN_OF_FAMILY = {
    "softmax": "softmax",
    "activation": "activation",
    "glu": "activation",
    "prelu": "activation",
    "batchnorm": "norm",
    "groupnorm": "norm",
    "layernorm": "norm",
    "rmsnorm": "norm",
    "parameter_free_norm": "norm",
    "hf_activation": "activation",
    "hf_rmsnorm": "norm",
}


def _elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


HAND_ELEMENTWISE = {
    # RMSNorm: every element of x is divided by its row's root mean square, x / sqrt(mean(x^2) + eps): prod(shape)
    nn.RMSNorm: ("norm", _elements),
    # LocalResponseNorm: each element divided by (k + alpha/n * sum of squares over n channels)^beta: prod(shape)
    nn.LocalResponseNorm: ("norm", _elements),
    # CrossMapLRN2d: the same normalisation, as a legacy autograd Function: prod(shape)
    nn.CrossMapLRN2d: ("norm", _elements),
    # Softsign: x / (1 + |x|) for every element: prod(shape)
    nn.Softsign: ("activation", _elements),
    # transformers' RMSNorms (keyed by qualified name): x * rsqrt(mean(x^2) + eps) * weight, per element: prod(shape)
    **{key: ("norm", _elements) for key in REGISTRY.keys(family="hf_rmsnorm")},
}
"""Layers that decompose into plain arithmetic (no aten op marks the work): hand arithmetic, per element."""

COUNTED_ELEMENTWISE = {
    t: column
    for family, column in COLUMN_OF_FAMILY.items()
    for t in REGISTRY.keys(family=family)
    if t not in HAND_ELEMENTWISE
}
"""Layers whose work is one aten op the counter recognises, with the column it lands in."""


# One aten op per example, but 36 types: 6 examples each.
@pytest.mark.parametrize("layer_type", [t for t in REGISTRY if t in COUNTED_ELEMENTWISE], ids=_name)
@_budget(6)
@given(st.data())
def test_elementwise_columns_equal_counted_ops(layer_type, data):
    """Oracle: ColumnCounter over the real module on meta. Activations (in place or not, PReLU's channels, RReLU
    in training and eval), softmax layers (any dim, implicit or not) and normalisations (affine or not, running
    statistics or not, training or eval, batched and unbatched): every column equals the counted ops' elements,
    and the work lands in its own column."""
    module = data.draw(MODULE_STRATEGIES[layer_type], label="module")
    module.train(data.draw(st.booleans(), label="training"))
    if getattr(module, "momentum", 0.1) is None and module.track_running_stats:
        module.eval()  # training with momentum=None reads num_batches_tracked's value, which meta tensors lack
    shape = data.draw(column_inputs(module), label="input")
    expected = counted(module, module, meta(shape))
    assert expected[COUNTED_ELEMENTWISE[layer_type]] > 0, expected  # the oracle saw the work
    assert audited(module, (shape,)) == expected




@pytest.mark.parametrize("layer_type", [t for t in REGISTRY if t in HAND_ELEMENTWISE], ids=_name)
@_budget(10)
@given(st.data())
def test_decomposed_layer_columns_equal_hand_arithmetic(layer_type, data):
    """Oracle: hand arithmetic (HAND_ELEMENTWISE, one normalised or activated element per input element), for
    layers that run as plain arithmetic; ColumnCounter sees no op of another column in them."""
    module = data.draw(MODULE_STRATEGIES[layer_type], label="module")
    shape = data.draw(column_inputs(module), label="input")
    column, arithmetic = HAND_ELEMENTWISE[layer_type]
    assert audited(module, (shape,)) == _columns(**{column: arithmetic(shape)})
    others = {c: n for c, n in counted(module, module, meta(shape)).items() if c != column}
    assert others == {c: 0 for c in EXTRA if c != column}


# --------------------------------------------------------------------------------------------- 2. layers with weights


def _linear_shapes(module: nn.Module) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return linear_input_shapes(module.in_features).map(lambda s: (s,))


def _bilinear_shapes(module: nn.Module) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return bilinear_input_shapes(module.in1_features, module.in2_features)


def _conv_shapes(module: nn.Module) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return conv_input_shapes(module).map(lambda s: (s,))


def _cell_shapes(module: nn.Module) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return cell_input_shapes(module).map(lambda s: (s,))


def _hf_conv1d_shapes(module: nn.Module) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    return linear_input_shapes(module.nx).map(lambda s: (s,))


SHAPES_OF_FAMILY = {
    "linear": _linear_shapes,
    "hf_conv1d": _hf_conv1d_shapes,
    "bilinear": _bilinear_shapes,
    "conv": _conv_shapes,
    "recurrent_cell": _cell_shapes,
    "attention": attention_input_shapes,
    "transformer_layer": transformer_layer_input_shapes,
}

COUNTED_MODULES = {
    t: (MODULE_STRATEGIES[t], shapes) for family, shapes in SHAPES_OF_FAMILY.items() for t in REGISTRY.keys(family=family)
}
# Bilinear's meta kernel costs time in proportion to its widths: the CPU-sized strategy (widths 1..12)
COUNTED_MODULES[nn.Bilinear] = (meta_module(nn.Bilinear, small_bilinear_kwargs()), _bilinear_shapes)
"""Layers run as they are under ColumnCounter: the strategy of the module and of its input shapes."""


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("layer_type", [t for t in REGISTRY if t in COUNTED_MODULES], ids=_name)
@_budget(10)
@given(st.data())
def test_layer_columns_equal_counted_ops(layer_type, data):
    """Oracle: ColumnCounter over the real module on meta, summed over the whole forward pass against the audit's
    columns summed over every record. Linear, Bilinear and convolutions (bias or not, every padding mode, groups,
    unbatched): bias adds. RNN cells: both bias vectors per gate and each gate's non-linearity. MultiheadAttention
    (kdim/vdim, bias, add_bias_kv, add_zero_attn, L apart from S): projection biases and softmax over every key.
    Transformer layers (activation as a name, a function or a module, norm_first, bias): all four columns."""
    modules, inputs = COUNTED_MODULES[layer_type]
    module = data.draw(modules, label="module")
    shapes = data.draw(inputs(module), label="inputs")
    expected = counted(module, module, *[meta(s) for s in shapes])
    assert audited(module, shapes) == expected


class Pack(nn.Module):
    """Packs its padded input with fixed ``lengths`` (any order) and runs ``inner`` on the PackedSequence."""

    def __init__(self, inner: nn.RNNBase, lengths: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = inner
        self.lengths = torch.tensor(lengths)  # a plain attribute: pack_padded_sequence wants lengths on CPU

    def pack(self, x: torch.Tensor) -> PackedSequence:
        return pack_padded_sequence(x, self.lengths, batch_first=self.inner.batch_first, enforce_sorted=False)

    def forward(self, x: torch.Tensor) -> Any:
        return self.inner(self.pack(x))


RECURRENT_TYPES = REGISTRY.keys(family="recurrent")


# The unrolled reference makes 2 x gates F.linear calls per layer, direction and step (up to 4 layers x 2
# directions x 3 steps here): 10 examples per type.
@pytest.mark.parametrize("layer_type", [t for t in REGISTRY if t in RECURRENT_TYPES], ids=_name)
@_budget(10)
@given(st.data())
def test_recurrent_columns_equal_counted_ops_of_the_unrolled_reference(layer_type, data):
    """Oracle: ColumnCounter over the unrolled reference (tests/oracles.py) on meta: each gate's sigmoid/tanh/relu
    and the cell state's tanh, and both bias vectors of every gate, per real step, layer and direction.
    num_layers, bidirectional, bias, proj_size, batch_first, nonlinearity; padded, unbatched and packed inputs."""
    module = data.draw(MODULE_STRATEGIES[layer_type], label="module").eval()  # no random inter-layer dropout
    shape, lengths = data.draw(recurrent_inputs(module, max_steps=3, max_batch=3), label="input, lengths")
    if lengths is None:
        expected = counted(module, lambda x: unrolled_rnn(module, x), meta(shape))
        ours = audited(module, (shape,))
    else:
        packer = Pack(module, lengths)
        expected = counted(module, lambda x: unrolled_rnn(module, packer.pack(x)), meta(shape))
        ours = audited(packer, (shape,))
    assert expected["activation"] > 0, expected  # the oracle saw the gates
    assert ours == expected


# --------------------------------------------------------------------------------------------- 3. pinned examples


def _meta(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    with torch.device("meta"):
        return cls(*args, **kwargs)


PINNED = [
    # GRU, 3 gates (2 sigmoid + tanh) x hidden 16 x steps 5 x batch 3 x directions 2 x layers 2 = 2,880 activations;
    # bias_ih and bias_hh: 2 x 3 x 16 x 5 x 3 x 2 x 2 = 5,760
    ("GRU", lambda: _meta(nn.GRU, 8, 16, num_layers=2, bidirectional=True), [(5, 3, 8)],
     _columns(bias=5_760, activation=2_880)),
    # LSTM, 5 non-linearities (3 sigmoid gates, tanh of g, tanh of c) x 16 x 5 steps x 3 = 1,200; bias 2 x 4 x 16 x 15
    ("LSTM", lambda: _meta(nn.LSTM, 8, 16), [(5, 3, 8)], _columns(bias=1_920, activation=1_200)),
    # RNN(relu), 1 non-linearity x 16 x 5 x 3 = 240; bias 2 x 1 x 16 x 15 = 480
    ("RNN", lambda: _meta(nn.RNN, 8, 16, nonlinearity="relu"), [(5, 3, 8)], _columns(bias=480, activation=240)),
    # GRUCell, batch 4: 3 x 16 x 4 = 192 activations; 2 x 3 x 16 x 4 = 384 bias adds
    ("GRUCell", lambda: _meta(nn.GRUCell, 8, 16), [(4, 8)], _columns(bias=384, activation=192)),
    # LSTMCell, unbatched (batch 1): 5 x 16 = 80; 2 x 4 x 16 = 128
    ("LSTMCell", lambda: _meta(nn.LSTMCell, 8, 16), [(8,)], _columns(bias=128, activation=80)),
    # MultiheadAttention(16, 4), L=5, S=7, batch 2: softmax 2 x 4 heads x 5 x 7 = 280;
    # bias 2 x (q 5x16 + k 7x16 + v 7x16 + out 5x16) = 2 x 384 = 768
    ("MultiheadAttention", lambda: _meta(nn.MultiheadAttention, 16, 4), [(5, 2, 16), (7, 2, 16), (7, 2, 16)],
     _columns(bias=768, softmax=280)),
    # bias_k/bias_v and the zero key add 2 key positions (concatenated, not added): softmax 2 x 4 x 5 x (7+2) = 360
    ("MultiheadAttention(add_bias_kv, add_zero_attn)",
     lambda: _meta(nn.MultiheadAttention, 16, 4, add_bias_kv=True, add_zero_attn=True),
     [(5, 2, 16), (7, 2, 16), (7, 2, 16)], _columns(bias=768, softmax=360)),
    # Conv2d(3, 8, 3) on 2x3x10x10: 2 x 8 x 8x8 output elements, one bias add each = 1,024
    ("Conv2d", lambda: _meta(nn.Conv2d, 3, 8, 3), [(2, 3, 10, 10)], _columns(bias=1_024)),
    # Linear(4, 6) on 2x5x4: 10 rows x 6 outputs = 60 bias adds
    ("Linear", lambda: _meta(nn.Linear, 4, 6), [(2, 5, 4)], _columns(bias=60)),
    # LayerNorm(16) on 2x5x16: 160 elements normalised (its affine shift is part of the norm, not a bias)
    ("LayerNorm", lambda: _meta(nn.LayerNorm, 16), [(2, 5, 16)], _columns(norm=160)),
    # BatchNorm1d(3) on 4x3x7: 84 elements
    ("BatchNorm1d", lambda: _meta(nn.BatchNorm1d, 3), [(4, 3, 7)], _columns(norm=84)),
    # GLU on 4x6: a * sigmoid(b) over halves of 3: 4 x 3 = 12 elements through the sigmoid
    ("GLU", lambda: _meta(nn.GLU), [(4, 6)], _columns(activation=12)),
    # Softmax2d on 2x3x4x5: 120 elements
    ("Softmax2d", lambda: _meta(nn.Softmax2d), [(2, 3, 4, 5)], _columns(softmax=120)),
    # TransformerEncoderLayer(16, 4, 32, relu), L=5, batch 2 (10 rows):
    # bias: in_proj 3 x 10 x 16 + out_proj 10 x 16 + linear1 10 x 32 + linear2 10 x 16 = 480 + 160 + 320 + 160 = 1,120;
    # norm 2 LayerNorms x 10 x 16 = 320; activation 10 x 32 = 320; softmax 2 x 4 heads x 5 x 5 = 200
    ("TransformerEncoderLayer", lambda: _meta(nn.TransformerEncoderLayer, 16, 4, 32), [(5, 2, 16)],
     _columns(bias=1_120, norm=320, activation=320, softmax=200)),
]


@pytest.mark.parametrize(("what", "build", "shapes", "expected"), PINNED, ids=[p[0] for p in PINNED])
def test_pinned_columns(what, build, shapes, expected):
    """Hand arithmetic (beside each example); ColumnCounter agrees with it too (over the unrolled reference for the
    fused recurrent layers)."""
    module = build()
    shapes = [tuple(s) for s in shapes]
    assert audited(module, tuple(shapes)) == expected
    run = (lambda x: unrolled_rnn(module, x)) if isinstance(module, nn.RNNBase) else module
    assert counted(module, run, *[meta(s) for s in shapes]) == expected


# --------------------------------------------------------------------------------------------- 4. completeness

NO_COLUMN_FAMILIES = (
    "embedding", "dropout", "pooling", "reshaping", "padding", "distance", "container", "timm_layerscale",
    "tv_stochastic_depth",
)
NO_COLUMNS = {t for family in NO_COLUMN_FAMILIES for t in REGISTRY.keys(family=family)}
"""Types with no column work by the convention (macs.py: pooling windows, dropout masks, copies and reshapes are
not counted; a table lookup, a distance and a container have no work of their own)."""

CHECKED_ELSEWHERE = {
    "timm_attention": "tests/test_vision_rules.py: softmax by hand arithmetic, B x heads x N x N",
    "tv_swin_attention": "tests/test_vision_rules.py: softmax and bias by hand arithmetic, per window",
    "hf_attention": "tests/test_hf_attention.py: softmax against the model's own attention shapes",
}
"""Families whose columns are checked beside their torch-only equivalents or their transformers models, where the
module is called the way its model calls it (ColumnCounter here runs a module on positional shapes only)."""

ORACLE_CHECKED = {
    *COUNTED_ELEMENTWISE, *HAND_ELEMENTWISE, *COUNTED_MODULES, *RECURRENT_TYPES,
    *(key for family in CHECKED_ELSEWHERE for key in REGISTRY.keys(family=family)),
}


def test_every_registered_type_has_a_column_oracle_or_none_by_convention():
    """Oracle: the registry's own list of types. Each is checked against an oracle above or has no column work by
    convention, never both, so a new rule with a column cannot go without an oracle."""
    registered = set(REGISTRY)
    assert sorted(map(_name, registered - ORACLE_CHECKED - NO_COLUMNS)) == []
    assert sorted(map(_name, ORACLE_CHECKED & NO_COLUMNS)) == []
    assert sorted(map(_name, (ORACLE_CHECKED | NO_COLUMNS) - registered)) == []


_ANY_CALL = Call(args=((2, 3, 4, 5),), kwargs=(), outputs=((2, 3, 4, 5),))


@pytest.mark.parametrize("layer_type", [t for t in REGISTRY if t in NO_COLUMNS], ids=_name)
@_budget(2)
@given(st.data())
def test_types_without_column_work_count_none(layer_type, data):
    """Oracle: the convention in archaudit/macs.py. The type's own rule counts nothing in any column."""
    module = data.draw(MODULE_STRATEGIES[layer_type], label="module")
    found = REGISTRY.lookup_macs(type(module))
    assert found is not None and same_key(found[0], layer_type)
    counts = found[1](module, _ANY_CALL)
    assert isinstance(counts, MacCount)
    assert {column: getattr(counts, column) for column in EXTRA} == _columns()
