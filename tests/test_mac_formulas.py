"""MAC formulas against independent oracles, on hypothesis-drawn layers and input shapes.

Three oracles, named in each test's docstring:

* **FlopCounterMode on meta**: PyTorch's own counter over the same forward pass on meta tensors. On meta every
  layer takes its decomposed path (no fused kernels), so FlopCounterMode sees each ``mm``/``addmm``/``bmm``/
  convolution/attention product, and counts 2 x MACs with bias excluded, archaudit's convention.
* **An unrolled reference implementation on CPU** (``tests/oracles.py``): for layers whose fused kernel
  FlopCounterMode cannot see (``aten::lstm`` on CPU, ``aten::_trilinear`` anywhere), the layer rebuilt from its
  own weights with matrix products only. Its output must match the fused layer's, and FlopCounterMode over it
  must count archaudit's MACs.
* **The registry itself**, for completeness: every formula family with MACs is checked here (that every rule has a
  MAC rule is tests/test_registry.py's).

Every archaudit figure compared here comes from a MAC rule: audits run with ``flop_counter=False`` and each
compared record is checked to be ``source == "formula"``, so FlopCounterMode never stands on both sides.
"""

from __future__ import annotations

import importlib

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from archaudit.records import FlopsAudit
from archaudit.macs import audit_macs
from archaudit.registry import REGISTRY
from oracles import unrolled_bilinear, unrolled_rnn, flop_counter_macs
from strategies import (
    FORMULA_STRATEGIES,
    MODULE_STRATEGIES,
    attention_input_shapes,
    bilinear_input_shapes,
    build_on,
    cell_input_shapes,
    conv_input_shapes,
    is_of_key,
    key_name,
    linear_input_shapes,
    recurrent_inputs,
    small_bilinear_kwargs,
    small_recurrent_kwargs,
    transformer_layer_input_shapes,
)


def _budget(examples: int) -> settings:
    """``examples`` per run, at most what the loaded profile allows (ci: 60, dev: 30), and ten times as many under the
    deep profile (1,000), so a thorough run searches the slow tests too."""
    scale = max(1, settings.default.max_examples // 100)
    return settings(max_examples=min(examples * scale, settings.default.max_examples))


# --------------------------------------------------------------------------------------------- helpers




def meta(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def formula_macs(audit: FlopsAudit, path: str = "") -> int:
    """Own MACs of the module at ``path`` (the root by default), after checking that every figure in the audit
    came from a MAC rule or is the zero of a module without work: none from FlopCounterMode."""
    assert audit.unsupported == (), [(r.name, r.note) for r in audit.unsupported]
    assert all(r.source in {"formula", "none"} for r in audit.records), [(r.name, r.source) for r in audit.records]
    record = audit.record(path)
    assert record.source == "formula" and record.calls >= 1, record
    return record.macs


class Forward(nn.Module):
    """Calls ``inner`` with fixed keyword arguments (``need_weights=False``); no work of its own."""

    def __init__(self, inner: nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.inner = inner
        self.kwargs = kwargs

    def forward(self, *args: torch.Tensor) -> Any:
        return self.inner(*args, **self.kwargs)


class Pack(nn.Module):
    """Packs its padded input with fixed ``lengths`` (any order) and runs ``inner`` on the PackedSequence."""

    def __init__(self, inner: nn.RNNBase, lengths: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = inner
        self.lengths = torch.tensor(lengths)  # a plain attribute: pack_padded_sequence wants lengths on CPU

    def forward(self, x: torch.Tensor) -> Any:
        return self.inner(pack_padded_sequence(x, self.lengths, batch_first=self.inner.batch_first,
                                               enforce_sorted=False))


def _audited_and_counted(module: nn.Module, shapes: tuple[tuple[int, ...], ...], path: str = "") -> tuple[int, int]:
    """archaudit's own MACs for ``path`` and FlopCounterMode's MACs (on meta), for ``module(*shapes)``."""
    inputs = [meta(s) for s in shapes]
    return formula_macs(audit_macs(module, inputs, flop_counter=False), path), flop_counter_macs(module, *inputs)


# ------------------------------------------------------------------------------- 1. FlopCounterMode on meta

LINEAR_TYPES = REGISTRY.keys(family="linear")


@pytest.mark.parametrize("linear_type", LINEAR_TYPES, ids=key_name)
@given(st.data())
def test_linear_macs_equal_flop_counter_on_meta(linear_type, data):
    """Oracle: FlopCounterMode on meta. Linear with or without bias, inputs of rank 1 to 4."""
    module = data.draw(FORMULA_STRATEGIES[linear_type], label="module")
    shape = data.draw(linear_input_shapes(module.in_features), label="input")
    ours, counted = _audited_and_counted(module, (shape,))
    assert ours == counted


HF_CONV1D_TYPES = REGISTRY.keys(family="hf_conv1d")


@pytest.mark.parametrize("conv1d_type", HF_CONV1D_TYPES, ids=key_name)
@given(st.data())
def test_hf_conv1d_macs_equal_flop_counter_on_meta(conv1d_type, data):
    """Oracle: FlopCounterMode on meta (its addmm formula over ``x.view(-1, nx) @ weight``). transformers' Conv1D
    (keyed by qualified name; skipped without transformers), widths up to production scale, inputs of rank 1 to 4:
    tokens x nx x nf."""
    module = data.draw(MODULE_STRATEGIES[conv1d_type], label="module")
    assert is_of_key(module, conv1d_type)
    shape = data.draw(linear_input_shapes(module.nx), label="input")
    ours, counted = _audited_and_counted(module, (shape,))
    assert ours == counted


CONV_TYPES = REGISTRY.keys(family="conv")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("conv_type", CONV_TYPES, ids=key_name)
@given(st.data())
def test_conv_macs_equal_flop_counter_on_meta(conv_type, data):
    """Oracle: FlopCounterMode on meta. Stride, padding (ints, tuples, "same", "valid"), every padding mode,
    dilation, groups, output_padding (transposed), bias; batched and unbatched inputs."""
    module = data.draw(FORMULA_STRATEGIES[conv_type], label="module")
    shape = data.draw(conv_input_shapes(module), label="input")
    ours, counted = _audited_and_counted(module, (shape,))
    assert ours == counted


_ATTENTION = FORMULA_STRATEGIES[nn.MultiheadAttention]


# Each example runs MultiheadAttention's Python forward twice on meta (audit and oracle), about 15 ms: 100 examples.
@_budget(100)
@given(st.data())
def test_attention_macs_equal_flop_counter_on_meta(data):
    """Oracle: FlopCounterMode on meta. batch_first or not, unbatched inputs, kdim/vdim apart from embed_dim,
    bias, add_bias_kv, add_zero_attn, source length S apart from target length L, need_weights True/False."""
    module = data.draw(_ATTENTION, label="module")
    shapes = data.draw(attention_input_shapes(module), label="query, key, value")
    wrapped = Forward(module, need_weights=data.draw(st.booleans(), label="need_weights"))
    ours, counted = _audited_and_counted(wrapped, shapes, "inner")
    assert ours == counted


RECURRENT_TYPES = REGISTRY.keys(family="recurrent")


# A forward of nn.LSTM on meta runs PyTorch's Python decomposition, about 4 ms per layer, direction and time step;
# at up to 4 layers x 2 directions x 4 steps, 100 examples per type would take half a minute: 30 per type (still
# every combination of layers, directions, bias, projection and input form more than once).
@pytest.mark.parametrize("rnn_type", RECURRENT_TYPES, ids=key_name)
@_budget(30)
@given(st.data())
def test_recurrent_macs_equal_flop_counter_on_meta(rnn_type, data):
    """Oracle: FlopCounterMode on meta (where nn.RNN/LSTM/GRU decompose into one addmm/mm per gate matrix and
    step). num_layers, bidirectional, bias, proj_size, batch_first, nonlinearity; padded, unbatched and
    packed inputs."""
    module = data.draw(FORMULA_STRATEGIES[rnn_type], label="module")
    shape, lengths = data.draw(recurrent_inputs(module, max_steps=4), label="input, lengths")
    if lengths is None:
        ours, counted = _audited_and_counted(module, (shape,))
    else:
        ours, counted = _audited_and_counted(Pack(module, lengths), (shape,), "inner")
    assert ours == counted


CELL_TYPES = REGISTRY.keys(family="recurrent_cell")


# A cell is one step: one product per gate matrix and its biases. Each example runs it on meta twice (audit and
# oracle); 100 examples per type draw every combination of bias, nonlinearity and batched input many times.
@pytest.mark.parametrize("cell_type", CELL_TYPES, ids=key_name)
@_budget(100)
@given(st.data())
def test_cell_macs_equal_flop_counter_on_meta(cell_type, data):
    """Oracle: FlopCounterMode on meta. bias, nonlinearity; batched and unbatched inputs."""
    module = data.draw(FORMULA_STRATEGIES[cell_type], label="module")
    shape = data.draw(cell_input_shapes(module), label="input")
    ours, counted = _audited_and_counted(module, (shape,))
    assert ours == counted


TRANSFORMER_TYPES = REGISTRY.keys(family="transformer_layer")


# A decoder layer on meta costs about 25 ms a pass, an encoder layer 15 ms, and each example makes four passes
# (audit and oracle, train and eval): 20 examples per type, which still draw each of the six options below about
# ten times (derandomised under the ci profile, so the same 20 every run; the deep profile runs 200).
@pytest.mark.parametrize("layer_type", TRANSFORMER_TYPES, ids=key_name)
@_budget(20)
@given(st.data())
def test_transformer_layer_macs_equal_flop_counter_on_meta(layer_type, data):
    """Oracle: FlopCounterMode on meta, over the whole layer: the sum of own MACs over every record of the audit
    (attention, feed-forward, norms, the layer's functional activation) equals its total, in train mode and in
    eval mode under no_grad (on meta no fused fast path is taken, so FlopCounterMode sees every product). And
    eval under no_grad counts what train mode counts: the fused fast path does the same work. norm_first,
    batch_first, bias, activation (name, function or module), batched and unbatched inputs."""
    module = data.draw(FORMULA_STRATEGIES[layer_type], label="module")
    inputs = [meta(s) for s in data.draw(transformer_layer_input_shapes(module), label="inputs")]
    counted_train = flop_counter_macs(module.train(), *inputs)
    audit_train = audit_macs(module, inputs, flop_counter=False)
    with torch.no_grad():
        counted_eval = flop_counter_macs(module.eval(), *inputs)
        audit_eval = audit_macs(module, inputs, flop_counter=False)
    formula_macs(audit_train)
    formula_macs(audit_eval)
    assert audit_train.macs == counted_train
    assert audit_eval.macs == counted_eval
    assert audit_eval.macs == audit_train.macs


def test_encoder_layer_fast_path_is_invisible_to_flop_counter_on_cpu():
    """Pinned: on CPU, in eval mode under no_grad, TransformerEncoderLayer runs the fused
    ``_transformer_encoder_layer_fwd`` and FlopCounterMode counts 0 FLOPs; archaudit counts the real work."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        assert flop_counter_macs(layer, x) == 0
        audit = audit_macs(layer, [x])
    formula_macs(audit, "self_attn")
    # batch 2, L = S = 5, E = 16, F = 32:
    # attention 2 * (5*16*16 + 5*(16+16)*16 + 5*16*16 projections + 2*5*5*16 products) = 2 * 5,920 = 11,840
    # feed-forward 2 * 5 * (16*32 + 32*16) = 10,240
    assert audit.macs == 11_840 + 10_240 == 22_080
    assert audit.record("self_attn").macs == 11_840
    assert flop_counter_macs(layer.train(), x) == 22_080  # the unfused path, counted on CPU: the same figure


# ------------------------------------------------------------------------------- 2. unrolled RNN/LSTM/GRU

_SMALL_RECURRENT = {mode: small_recurrent_kwargs(mode) for mode in ("RNN", "LSTM", "GRU")}


def _recurrent_case(data: st.DataObject, rnn_type: type[nn.RNNBase]) -> tuple[nn.RNNBase, Any, tuple, Any]:
    """A float64 CPU module, a random input (padded, unbatched or packed), its padded shape and its lengths."""
    kwargs = data.draw(_SMALL_RECURRENT[rnn_type.__name__], label="kwargs")
    torch.manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    module = build_on("cpu", rnn_type, {**kwargs, "dtype": torch.float64})
    shape, lengths = data.draw(recurrent_inputs(module), label="input, lengths")
    x = torch.randn(shape, dtype=torch.float64)
    if lengths is not None:
        x = pack_padded_sequence(x, torch.tensor(lengths), batch_first=module.batch_first, enforce_sorted=False)
    return module, x, shape, lengths


def _assert_same_output(got: Any, expected: Any) -> None:
    if isinstance(expected, PackedSequence):
        assert isinstance(got, PackedSequence)
        assert torch.equal(got.batch_sizes, expected.batch_sizes)
        got, expected = got.data, expected.data
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _assert_same_output(g, e)
        return
    torch.testing.assert_close(got, expected)


# The unrolled reference makes 2 x gates F.linear calls per layer, direction and step: 100 examples per type.
@pytest.mark.parametrize("rnn_type", RECURRENT_TYPES, ids=key_name)
@_budget(100)
@given(st.data())
def test_unrolled_reference_matches_fused_recurrent_output(rnn_type, data):
    """Oracle check: the unrolled reference (tests/oracles.py) returns what the fused nn.RNN/LSTM/GRU returns
    (output, h_n and c_n; float64), over num_layers, bidirectional, bias, proj_size, batch_first, nonlinearity,
    unbatched and packed inputs. It is what makes the next test's oracle trustworthy."""
    module, x, _, _ = _recurrent_case(data, rnn_type)
    with torch.no_grad():
        _assert_same_output(unrolled_rnn(module, x), module(x))


# As above, and the fused module is audited on meta (about 4 ms per layer, direction and step): 40 per type.
@pytest.mark.parametrize("rnn_type", RECURRENT_TYPES, ids=key_name)
@_budget(40)
@given(st.data())
def test_recurrent_macs_equal_flop_counter_over_unrolled_reference(rnn_type, data):
    """Oracle: FlopCounterMode on CPU over the unrolled reference (matrix products per gate block, step, layer and
    direction; only real steps of a PackedSequence), against archaudit's analytic MACs for the fused module on
    the same input shape."""
    module, x, shape, lengths = _recurrent_case(data, rnn_type)
    with torch.no_grad():
        counted = flop_counter_macs(unrolled_rnn, module, x)
    if lengths is None:
        ours = formula_macs(audit_macs(module, [meta(shape, torch.float64)], flop_counter=False))
    else:
        audit = audit_macs(Pack(module, lengths), [meta(shape, torch.float64)], flop_counter=False)
        ours = formula_macs(audit, "inner")
    assert ours == counted


# ------------------------------------------------------------------------------- 3. unrolled Bilinear

_SMALL_BILINEAR = small_bilinear_kwargs()


def _bilinear_case(data: st.DataObject) -> tuple[nn.Bilinear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(data.draw(st.integers(0, 2**16), label="seed"))
    module = build_on("cpu", nn.Bilinear, {**data.draw(_SMALL_BILINEAR, label="kwargs"), "dtype": torch.float64})
    shape1, shape2 = data.draw(bilinear_input_shapes(module.in1_features, module.in2_features), label="inputs")
    return module, torch.randn(shape1, dtype=torch.float64), torch.randn(shape2, dtype=torch.float64)


@given(st.data())
def test_unrolled_reference_matches_bilinear_output(data):
    """Oracle check: the two-product reference (tests/oracles.py) returns what nn.Bilinear returns (float64),
    with and without bias, inputs of rank 1 to 4."""
    module, x1, x2 = _bilinear_case(data)
    with torch.no_grad():
        torch.testing.assert_close(unrolled_bilinear(module, x1, x2), module(x1, x2))


@given(st.data())
def test_bilinear_macs_equal_flop_counter_over_unrolled_reference(data):
    """Oracle: FlopCounterMode on CPU over the two-product reference (one mm, one bmm), since it counts
    aten::_trilinear as 0: rows * out * (in1*in2 + in2) MACs."""
    module, x1, x2 = _bilinear_case(data)
    with torch.no_grad():
        counted = flop_counter_macs(unrolled_bilinear, module, x1, x2)
    assert formula_macs(audit_macs(module, [x1, x2], flop_counter=False)) == counted


# ------------------------------------------------------------------------------- 4. completeness

ORACLE_FAMILIES = {
    "linear": "test_linear_macs_equal_flop_counter_on_meta",
    "hf_conv1d": "test_hf_conv1d_macs_equal_flop_counter_on_meta",
    "bilinear": "test_bilinear_macs_equal_flop_counter_over_unrolled_reference",
    "conv": "test_conv_macs_equal_flop_counter_on_meta",
    "attention": "test_attention_macs_equal_flop_counter_on_meta",
    "recurrent": "test_recurrent_macs_equal_flop_counter_on_meta",
    "recurrent_cell": "test_cell_macs_equal_flop_counter_on_meta",
    "transformer_layer": "test_transformer_layer_macs_equal_flop_counter_on_meta",
    "tv_swin_attention": "test_vision_rules:test_window_attention_macs_equal_flop_counter_on_meta",
}
"""Formula families whose MACs are checked against an oracle, by the test that checks them (here, or ``module:test``
for a family whose oracle lives with its torch-only equivalents): each such test draws every type of its family from
the registry (``CONV_TYPES = REGISTRY.keys(family="conv")`` ...)."""

NO_MACS_FAMILIES = {
    "batchnorm", "groupnorm", "layernorm", "rmsnorm", "hf_rmsnorm", "embedding", "prelu", "timm_layerscale",
}
"""Formula families whose work lies outside MACs (norm and activation columns, table lookups)."""


def test_every_family_with_macs_has_an_oracle_here():
    """Oracle: the registry's formula families. Each is either checked above or has no MACs by convention, so a new
    layer family with matrix work cannot go unchecked (a new type of a checked family is checked with it)."""
    rules = dict(REGISTRY.rules())  # by key: a rule keyed by a qualified name cannot be looked up by type here
    formula_families = {rules[key].family for key in REGISTRY.formula_types()}
    assert formula_families - ORACLE_FAMILIES.keys() - NO_MACS_FAMILIES == set()
    assert ORACLE_FAMILIES.keys() | NO_MACS_FAMILIES <= formula_families
    assert ORACLE_FAMILIES.keys() & NO_MACS_FAMILIES == set()
    for test in ORACLE_FAMILIES.values():
        where, _, name = test.rpartition(":")
        found = getattr(importlib.import_module(where), name, None) if where else globals().get(name)
        assert callable(found), test


ONE_TYPE_FAMILIES = {"bilinear": [nn.Bilinear], "attention": [nn.MultiheadAttention]}
"""Checked families whose test above builds its one type itself (the others draw each type of the family)."""


def test_families_checked_for_one_type_hold_only_that_type():
    """Oracle: the registry's families. A type added to a family whose test checks one type fails here, rather than
    going unchecked."""
    assert {family: REGISTRY.keys(family=family) for family in ONE_TYPE_FAMILIES} == ONE_TYPE_FAMILIES
