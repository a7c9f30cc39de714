"""Property tests of archaudit's parameter formulas and its walker (the registry's own tests: test_registry.py).

The oracle throughout is ``numel()`` of the parameters a real ``torch.nn`` module holds, built on the meta
device (shapes only, no memory), never another formula. The audited document's own formulas (seed 001, "Layer
Formulas" table) are put to archaudit's formula-claim checker, and what it reports (where each holds, where it does
not) is held to the same oracle.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from strategies import (
    CONTAINER_TYPES,
    MODULE_STRATEGIES,
    ZERO_STRATEGIES,
    attention_kwargs,
    batch_norm_kwargs,
    build_on,
    conv_kwargs,
    is_of_key,
    key_name,
    layer_norm_kwargs,
    linear_kwargs,
    meta_module,
    recurrent_kwargs,
    same_key,
    with_fixed,
)
from torch import nn

import archaudit
from archaudit import REGISTRY, LayerFormula, Status
from archaudit.claims import evaluate
from archaudit.claims.layer_formulas import FormulaVerdict, check_layer_formula

FORMULA_TYPES = REGISTRY.formula_types()
ZERO_TYPES = REGISTRY.zero_types()


def _name(t: type[nn.Module] | str) -> str:
    return key_name(t)  # a rule keyed by a qualified name: its class name


def numel(module: nn.Module) -> int:
    """The oracle: elements of every parameter the module holds, children included, each tensor once."""
    return sum(p.numel() for p in module.parameters())


def own_numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def formula_of(layer_type: type[nn.Module]) -> LayerFormula[Any]:
    found = REGISTRY.lookup(layer_type)
    assert found is not None, f"{layer_type.__qualname__} has no registry entry"
    entry = found[1]
    assert isinstance(entry, LayerFormula), f"{layer_type.__qualname__} is registered as {entry!r}"
    return entry


def meta(cls: type[nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    with torch.device("meta"):
        return cls(*args, **kwargs)


# --------------------------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("layer_type", FORMULA_TYPES, ids=_name)
@given(data=st.data())
def test_formula_and_walker_equal_numel(layer_type: type[nn.Module] | str, data: st.DataObject) -> None:
    """The registered formula counts every parameter of a module of its type, and audit_params on that module
    finds no mismatch, accounts for every record and totals the same. (One test for both, on the same drawn
    module: building it is most of an example's cost.)

    oracle: numel() of the real module's parameters (built on meta, children included).
    """
    module = data.draw(MODULE_STRATEGIES[layer_type], label=_name(layer_type))
    assert is_of_key(module, layer_type)
    registered_as, entry = REGISTRY.lookup(type(module)) or (None, None)
    assert same_key(registered_as, layer_type) and isinstance(entry, LayerFormula)
    expected = numel(module)
    assert entry.count(module) == expected, f"{entry.describe(module)} != numel {expected:,} for {module}"

    audit = archaudit.audit_params(module)
    assert audit.mismatches == ()
    assert audit.total == expected
    assert {r.status for r in audit.records} <= {Status.FORMULA, Status.ZERO}, audit.unsupported
    root = audit.record("")
    assert root.status is Status.FORMULA
    assert root.formula_params == root.subtree_params == expected


# --------------------------------------------------------------------------------------------- known-zero types


# Whether a known-zero type owns parameters does not depend on its arguments: a quarter of the profile's examples
# (50 under ci) suffices here. Containers, whose children vary, get the full profile in the walker test below.
COMPOSITE_ZERO_KEYS = {
    key for family in ("container", "hf_attention", "timm_attention") for key in REGISTRY.keys(family=family)
}
"""Known-zero keys whose modules hold children by design (an attention module's projections, a conv-norm-activation
block's layers): they own no parameter themselves, and their children are counted by their own rules."""

ZERO_SETTINGS = settings(max_examples=max(10, settings.default.max_examples // 4))


@pytest.mark.parametrize("layer_type", ZERO_TYPES, ids=_name)
@ZERO_SETTINGS
@given(data=st.data())
def test_zero_type_owns_no_parameters(layer_type: type[nn.Module] | str, data: st.DataObject) -> None:
    """A type registered as known-zero owns no parameters; a leaf one holds none at all.

    oracle: numel() of the real module's own parameters (recurse=False), and of all of them for leaves.
    """
    module = data.draw(ZERO_STRATEGIES[layer_type], label=_name(layer_type))
    assert is_of_key(module, layer_type)
    assert own_numel(module) == 0
    if layer_type not in CONTAINER_TYPES and layer_type not in COMPOSITE_ZERO_KEYS:
        assert list(module.children()) == [], f"{_name(layer_type)} is registered as a leaf but has children"
        assert numel(module) == 0


# Each example builds a nested container of up to a dozen random registered modules, some tied: 100 per type.
@pytest.mark.parametrize("layer_type", CONTAINER_TYPES, ids=_name)
@settings(max_examples=min(100, settings.default.max_examples))
@given(data=st.data())
def test_walker_agrees_with_numel_on_containers(layer_type: type[nn.Module], data: st.DataObject) -> None:
    """Containers of random registered modules (nested, some tied): walker total = numel, all accounted for.

    oracle: numel() of the real container's parameters (each tensor once).
    """
    module = data.draw(ZERO_STRATEGIES[layer_type], label=_name(layer_type))
    assert type(module) is layer_type and own_numel(module) == 0
    audit = archaudit.audit_params(module)
    assert audit.mismatches == ()
    assert audit.total == numel(module)
    assert {r.status for r in audit.records} <= {Status.FORMULA, Status.ZERO}, audit.unsupported
    assert audit.record("").status is Status.ZERO


# --------------------------------------------------------------------------------------------- strategies reach


def _first(strategy: st.SearchStrategy[nn.Module], condition: Callable[[nn.Module], bool]) -> nn.Module:
    return find(strategy, condition, settings=settings(
        max_examples=2000, database=None, derandomize=True, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    ))


def _tied(m: nn.Module) -> bool:
    return len(list(m.named_modules(remove_duplicate=False))) > len(list(m.named_modules()))


REACHES: list[tuple[str, type[nn.Module], Callable[[nn.Module], bool]]] = [
    ("grouped conv without bias", nn.Conv1d, lambda m: m.groups > 1 and m.bias is None),
    ("non-zeros padding mode", nn.Conv2d, lambda m: m.padding_mode != "zeros"),
    ("grouped transposed conv", nn.ConvTranspose3d, lambda m: m.groups > 1 and m.bias is not None),
    ("production-scale width", nn.Linear, lambda m: m.in_features >= 1024),
    ("stacked bidirectional projected LSTM", nn.LSTM,
     lambda m: m.proj_size > 0 and m.bidirectional and m.num_layers > 1),
    ("LSTM without bias", nn.LSTM, lambda m: not m.bias),
    ("separate q/k/v projections", nn.MultiheadAttention, lambda m: not m._qkv_same_embed_dim),
    ("packed in_proj", nn.MultiheadAttention, lambda m: m._qkv_same_embed_dim and m.in_proj_bias is not None),
    ("bias_k/bias_v without bias", nn.MultiheadAttention, lambda m: m.bias_k is not None and m.in_proj_bias is None),
    ("3-D LayerNorm with weight but no bias", nn.LayerNorm,
     lambda m: len(m.normalized_shape) == 3 and m.weight is not None and m.bias is None),
    ("decoder layer without bias, module activation", nn.TransformerDecoderLayer,
     lambda m: m.linear1.bias is None and isinstance(m.activation, nn.Module)),
    ("nested, tied Sequential", nn.Sequential,
     lambda m: _tied(m) and any(isinstance(c, CONTAINER_TYPES) for c in m.children())),
    ("ModuleDict holding a recurrent layer", nn.ModuleDict,
     lambda m: any(isinstance(c, nn.RNNBase) for c in m.children())),
]


@pytest.mark.parametrize(("what", "layer_type", "condition"), REACHES, ids=[r[0] for r in REACHES])
def test_strategy_reaches(what: str, layer_type: type[nn.Module], condition: Callable[[nn.Module], bool]) -> None:
    """The strategies draw the options the formulas branch on (else the properties above would be vacuous)."""
    assert condition(_first(MODULE_STRATEGIES[layer_type], condition)), what


# --------------------------------------------------------------------------------------------- pinned examples

PINNED: list[tuple[str, Callable[[], nn.Module], int]] = [
    ("Linear(256,128)", lambda: meta(nn.Linear, 256, 128), 32_896),  # 256*128 + 128
    ("Linear(128,1)", lambda: meta(nn.Linear, 128, 1), 129),  # 128*1 + 1
    ("Linear(256,64)", lambda: meta(nn.Linear, 256, 64), 16_448),  # 256*64 + 64
    ("Linear(64,3)", lambda: meta(nn.Linear, 64, 3), 195),  # 64*3 + 3
    ("MultiheadAttention(768,12)", lambda: meta(nn.MultiheadAttention, 768, 12), 2_362_368),  # 4*768*768 + 4*768
    ("MultiheadAttention(256,8)", lambda: meta(nn.MultiheadAttention, 256, 8), 263_168),  # 4*256*256 + 4*256
    ("Conv1d(17,128,3)", lambda: meta(nn.Conv1d, 17, 128, 3), 6_656),  # 17*128*3 + 128
    ("BatchNorm1d(128)", lambda: meta(nn.BatchNorm1d, 128), 256),  # 2*128 (running stats are buffers)
    ("LayerNorm(768)", lambda: meta(nn.LayerNorm, 768), 1_536),  # 2*768
    # Per direction, layer 0: 4*(384*384 + 384*384 + 384 + 384) = 4*295,680 = 1,182,720;
    # layers 1 and 2 take both directions' output (768): 4*(768*384 + 384*384 + 384 + 384) = 4*443,136 = 1,772,544;
    # total 2 directions * (1,182,720 + 2*1,772,544) = 2*4,727,808 = 9,455,616.
    ("LSTM(384,384,3,bidirectional)",
     lambda: meta(nn.LSTM, 384, 384, num_layers=3, bidirectional=True), 9_455_616),
    # 4*(384*384 + 384*128) + 2*4*384 weights and biases, + 128*384 weight_hr = 786,432 + 3,072 + 49,152
    ("LSTM(384,384,proj_size=128)", lambda: meta(nn.LSTM, 384, 384, proj_size=128), 838_656),
    ("Conv1d(16,128,3,groups=2)", lambda: meta(nn.Conv1d, 16, 128, 3, groups=2), 3_200),  # 16/2*128*3 + 128
    # 768*(768 + 512 + 512) q/k/v + 768*768 out_proj + 4*768 biases = 1,376,256 + 589,824 + 3,072
    ("MultiheadAttention(768,12,kdim=vdim=512)",
     lambda: meta(nn.MultiheadAttention, 768, 12, kdim=512, vdim=512), 1_969_152),
]


@pytest.mark.parametrize(("what", "make", "expected"), PINNED, ids=[p[0] for p in PINNED])
def test_pinned_examples(what: str, make: Callable[[], nn.Module], expected: int) -> None:
    """Hand-computed counts (arithmetic beside each). oracle: numel() of the real module, then the formula."""
    module = make()
    assert numel(module) == expected, f"{what}: numel {numel(module):,}"
    assert formula_of(type(module)).count(module) == expected
    assert archaudit.audit_params(module).total == expected


# --------------------------------------------------------------------------------------------- the document's formulas
# The audited document's "Layer Formulas" table and LSTM formula (shared/seeds/001_c03e6947d3dbf9eb.txt), as printed
# there and as reference_models/claims/amnl_001.toml records them, put to archaudit's formula-claim checker
# (archaudit/claims/layer_formulas.py). Each test pins what the checker returns (the conditions under which the
# formula holds, a counterexample per condition) and holds it to numel() of real modules drawn from
# tests/strategies.py, which vary what the checker's own draws do not (strides, paddings, padding modes, running
# statistics, multi-dimensional shapes, production-scale widths).

DOC_FORMULAS = {
    "Linear": "in × out + out",
    "Conv1d": "in × out × k + out",
    "BatchNorm1d": "2n",
    "LayerNorm": "2n",
    "LSTM": "4 × (i × h + h × h + h + h)",
    "MultiheadAttention": "4d² + 4d",
}


DOC_EXAMPLES = 50
"""Configurations per verdict: a quarter of what a claims file gets (200), for time; the conditions and
counterexamples are the same (test_claims.py pins amnl_001.toml's verdicts on these formulas at 200)."""


@functools.lru_cache(maxsize=None)
def doc_verdict(layer: str) -> FormulaVerdict:
    """The checker's verdict on the document's formula for ``layer`` (computed once per run)."""
    verdict = check_layer_formula(layer, DOC_FORMULAS[layer], examples=DOC_EXAMPLES)
    assert verdict.layer == layer and verdict.examples == DOC_EXAMPLES, verdict
    return verdict


def only_when(verdict: FormulaVerdict) -> tuple[bool, bool, tuple[str, ...]]:
    return verdict.holds_in_general, verdict.never_holds, verdict.conditions


def meets(verdict: FormulaVerdict, module: nn.Module, predicates: dict[str, Callable[[nn.Module], bool]]) -> bool:
    """Whether ``module`` meets every condition the checker reported (``predicates``: condition -> test)."""
    unread = set(verdict.conditions) - set(predicates)
    assert not unread, f"the checker reports conditions this test cannot read: {unread}"
    return all(predicates[condition](module) for condition in verdict.conditions)


# The document's formulas, as Python: the oracle's side of each comparison.


def doc_linear(i: int, o: int) -> int:
    return i * o + o


def doc_conv1d(i: int, o: int, k: int) -> int:
    return i * o * k + o


def doc_batchnorm1d(n: int) -> int:
    return 2 * n


def doc_layernorm(n: int) -> int:
    return 2 * n


def doc_lstm_layer(i: int, h: int) -> int:
    return 4 * (i * h + h * h + h + h)


def doc_mha(d: int) -> int:
    return 4 * d * d + 4 * d


LINEAR_CONDITIONS = {"bias=True": lambda m: m.bias is not None}


def test_a_configuration_is_built_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every formula claim on a layer draws the same configurations; their numel() is the same each time."""
    from archaudit.claims import layer_formulas

    built: list[dict] = []
    family = layer_formulas.LAYER_FAMILIES["Linear"]
    counting = dataclasses.replace(family, build=lambda c: built.append(c) or family.build(c))
    monkeypatch.setitem(layer_formulas.LAYER_FAMILIES, "Linear", counting)
    layer_formulas.numel_of.cache_clear()
    try:
        first = check_layer_formula("Linear", "in × out + out", examples=20)
        # the 20 draws, each built once: the canonical counterexample (the base with bias=False) is the second draw
        assert len(built) == 20 and first.conditions == ("bias=True",)
        again = check_layer_formula("Linear", "in × out + out", examples=20)
        assert len(built) == 20 and again == first  # none built again
    finally:
        layer_formulas.numel_of.cache_clear()


@given(module=meta_module(nn.Linear, linear_kwargs()))
def test_doc_linear_formula_holds_exactly_with_bias(module: nn.Linear) -> None:
    """Doc: Linear(in, out) = in × out + out. The checker: it holds only when bias=True. On any Linear it holds
    exactly where the checker says, and without a bias it overcounts by out.

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("Linear")
    assert only_when(verdict) == (False, False, ("bias=True",))
    doc = doc_linear(module.in_features, module.out_features)
    assert (doc == numel(module)) == meets(verdict, module, LINEAR_CONDITIONS)
    assert doc - numel(module) == (0 if module.bias is not None else module.out_features)


CONV1D_CONDITIONS = {"bias=True": lambda m: m.bias is not None, "groups=1": lambda m: m.groups == 1}


@given(module=meta_module(nn.Conv1d, conv_kwargs(1)))
def test_doc_conv1d_formula_holds_exactly_with_groups_1_and_bias(module: nn.Conv1d) -> None:
    """Doc: Conv1d(in, out, k) = in × out × k + out. The checker: it holds only when bias=True and groups=1. On any
    Conv1d it holds exactly there: stride, padding, dilation and padding_mode change nothing; with groups=g the
    weight is in*out*k/g.

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("Conv1d")
    assert only_when(verdict) == (False, False, ("bias=True", "groups=1"))
    (k,) = module.kernel_size
    doc = doc_conv1d(module.in_channels, module.out_channels, k)
    assert (doc == numel(module)) == meets(verdict, module, CONV1D_CONDITIONS)


def test_doc_conv1d_counterexamples() -> None:
    """The checker's counterexample for each condition, confirmed by numel(); and the document's own layer grouped,
    audited."""
    assert doc_verdict("Conv1d").counterexamples == (
        # 4*4*3 = 48 without a bias; the formula adds out: 4*4*3 + 4 = 52
        "bias=True violated: Conv1d(4, 4, 3, groups=1, bias=False) has 48 parameters, the formula gives 52",
        # 4/2*4*3 + 4 = 28: the formula ignores groups
        "groups=1 violated: Conv1d(4, 4, 3, groups=2, bias=True) has 28 parameters, the formula gives 52",
    )
    assert numel(meta(nn.Conv1d, 4, 4, 3, bias=False)) == 48
    assert numel(meta(nn.Conv1d, 4, 4, 3, groups=2)) == 28
    grouped = archaudit.audit_params(meta(nn.Conv1d, 16, 128, 3, groups=2)).record("")
    # 16/2*128*3 + 128 = 3,200; the document's 16*128*3 + 128 = 6,272 overcounts by 3,072
    assert (grouped.formula, grouped.formula_params) == ("16*128/2*3 + 128", 3_200)
    assert evaluate("16 × 128 × 3 + 128") == 6_272


BATCHNORM_CONDITIONS = {"affine=True": lambda m: m.affine}


@given(module=meta_module(nn.BatchNorm1d, batch_norm_kwargs()))
def test_doc_batchnorm1d_formula_holds_exactly_when_affine(module: nn.BatchNorm1d) -> None:
    """Doc: BatchNorm1d(n) = 2n. The checker: it holds only when affine=True. On any BatchNorm1d it holds exactly
    there: track_running_stats adds buffers, never parameters.

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("BatchNorm1d")
    assert only_when(verdict) == (False, False, ("affine=True",))
    assert (doc_batchnorm1d(module.num_features) == numel(module)) == meets(verdict, module, BATCHNORM_CONDITIONS)


def test_doc_batchnorm1d_counterexample() -> None:
    """The checker's counterexample, confirmed by numel(): it counts parameters, not the running statistics."""
    assert doc_verdict("BatchNorm1d").counterexamples == (
        # gamma and beta, 2*8 = 16, are absent with affine=False
        "affine=True violated: BatchNorm1d(8, affine=False) has 0 parameters, the formula gives 16",
    )
    bn = meta(nn.BatchNorm1d, 8, affine=False)
    assert numel(bn) == 0
    assert sum(b.numel() for b in bn.buffers()) == 17  # running_mean 8 + running_var 8 + num_batches_tracked 1


LAYERNORM_CONDITIONS = {"elementwise_affine=True": lambda m: m.elementwise_affine,
                        "bias=True": lambda m: m.bias is not None}


@given(module=meta_module(nn.LayerNorm, layer_norm_kwargs()))
def test_doc_layernorm_formula_holds_exactly_with_weight_and_bias(module: nn.LayerNorm) -> None:
    """Doc: LayerNorm(n) = 2n. The checker (on LayerNorm(n)): it holds only when elementwise_affine=True and
    bias=True. On any LayerNorm, n the product of a normalized_shape of 1 to 3 dimensions, it holds exactly there.

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("LayerNorm")
    assert only_when(verdict) == (False, False, ("elementwise_affine=True", "bias=True"))
    n = math.prod(module.normalized_shape)
    assert (doc_layernorm(n) == numel(module)) == meets(verdict, module, LAYERNORM_CONDITIONS)


def test_doc_layernorm_counterexample() -> None:
    """The checker's counterexample for each condition, confirmed by numel()."""
    assert doc_verdict("LayerNorm").counterexamples == (
        # neither weight nor bias: 0, against 2*8 = 16
        "elementwise_affine=True violated: LayerNorm(8, elementwise_affine=False, bias=True) has 0 parameters, "
        "the formula gives 16",
        # the weight alone: 8
        "bias=True violated: LayerNorm(8, elementwise_affine=True, bias=False) has 8 parameters, the formula gives 16",
    )
    assert numel(meta(nn.LayerNorm, 8, elementwise_affine=False)) == 0
    assert numel(meta(nn.LayerNorm, 8, bias=False)) == 8


LSTM_CONDITIONS = {"bias=True": lambda m: m.bias, "proj_size=0": lambda m: m.proj_size == 0,
                   "num_layers=1": lambda m: m.num_layers == 1, "bidirectional=False": lambda m: not m.bidirectional}


@given(kwargs=with_fixed(recurrent_kwargs("LSTM"), bias=True, proj_size=0))
def test_doc_lstm_formula_holds_per_direction_per_layer(kwargs: dict[str, Any]) -> None:
    """Doc: an LSTM layer = 4 × (i × h + h × h + h + h). The checker: for a whole nn.LSTM it holds only when
    bias=True, proj_size=0, num_layers=1 and bidirectional=False, and its scope reads it per layer and direction,
    a later layer of a bidirectional stack taking 2h. Both readings hold: a single-layer one-way LSTM with bias is
    the formula, and with bias and no proj_size any stack is the sum over layers and directions, where i is
    input_size for layer 0 and directions*h for every later layer.

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("LSTM")
    assert only_when(verdict) == (False, False, ("bias=True", "proj_size=0", "num_layers=1", "bidirectional=False"))
    assert "per layer and direction" in verdict.scope and "2h" in verdict.scope
    single = build_on("meta", nn.LSTM, {**kwargs, "num_layers": 1, "bidirectional": False, "dropout": 0.0})
    assert meets(verdict, single, LSTM_CONDITIONS)
    assert numel(single) == doc_lstm_layer(single.input_size, single.hidden_size)
    module = build_on("meta", nn.LSTM, kwargs)
    i, h, layers = module.input_size, module.hidden_size, module.num_layers
    directions = 2 if module.bidirectional else 1
    assert numel(module) == directions * (doc_lstm_layer(i, h) + (layers - 1) * doc_lstm_layer(directions * h, h))


def test_doc_lstm_counterexamples() -> None:
    """The checker's counterexample for each condition, confirmed by numel(); and the document's 3-layer BiLSTM read
    with i = input_size for every layer, against its audit."""
    assert doc_verdict("LSTM").counterexamples == (
        # 4*4*(8 + 4) = 192 without the 2*4*4 biases; the formula: 4*(8*4 + 4*4 + 4 + 4) = 224
        "bias=True violated: LSTM(8, 4, num_layers=1, bidirectional=False, bias=False, proj_size=0) has 192 "
        "parameters, the formula gives 224",
        # weight_hh is 4*4*3, and weight_hr 3*4 is added: 4*4*8 + 4*4*3 + 2*4*4 + 3*4 = 128 + 48 + 32 + 12 = 220
        "proj_size=0 violated: LSTM(8, 4, num_layers=1, bidirectional=False, bias=True, proj_size=3) has 220 "
        "parameters, the formula gives 224",
        # layer 1 takes h = 4 inputs: 224 + 4*(4*4 + 4*4 + 4 + 4) = 224 + 160 = 384
        "num_layers=1 violated: LSTM(8, 4, num_layers=2, bidirectional=False, bias=True, proj_size=0) has 384 "
        "parameters, the formula gives 224",
        # two directions: 2*224 = 448
        "bidirectional=False violated: LSTM(8, 4, num_layers=1, bidirectional=True, bias=True, proj_size=0) has 448 "
        "parameters, the formula gives 224",
    )
    assert numel(meta(nn.LSTM, 8, 4, bias=False)) == 192
    assert numel(meta(nn.LSTM, 8, 4, proj_size=3)) == 220
    assert numel(meta(nn.LSTM, 8, 4, num_layers=2)) == 384
    assert numel(meta(nn.LSTM, 8, 4, bidirectional=True)) == 448
    # The document's BiLSTM read with i = 384 for every layer: 3 layers * 2 directions * 1,182,720 = 7,096,320;
    # layers 1-2 take 2*384 inputs (see PINNED): 9,455,616, 2,359,296 more.
    assert evaluate("3 × 2 × 4 × (384 × 384 + 384 × 384 + 384 + 384)") == 7_096_320
    assert archaudit.audit_params(meta(nn.LSTM, 384, 384, num_layers=3, bidirectional=True)).total == 9_455_616


MHA_FIXED = {"bias=True": {"bias": True}, "kdim=vdim=d": {"kdim": None, "vdim": None},
             "add_bias_kv=False": {"add_bias_kv": False}}
"""Each condition the checker reports for MultiheadAttention, as the constructor arguments that meet it."""


@given(kwargs=attention_kwargs())
def test_doc_mha_formula_holds_with_bias_and_packed_projections(kwargs: dict[str, Any]) -> None:
    """Doc: MultiheadAttention(d, h) = 4d² + 4d, whatever the head count. The checker: it holds only when
    bias=True, kdim=vdim=d and add_bias_kv=False. Those are enough on any MultiheadAttention (heads, dropout,
    add_zero_attn, batch_first). (Not an iff: kdim + vdim = 2d gives 4d² + 4d by coincidence.)

    oracle: numel() of the real module's parameters.
    """
    verdict = doc_verdict("MultiheadAttention")
    assert only_when(verdict) == (False, False, ("bias=True", "kdim=vdim=d", "add_bias_kv=False"))
    fixed = {key: value for condition in verdict.conditions for key, value in MHA_FIXED[condition].items()}
    module = build_on("meta", nn.MultiheadAttention, {**kwargs, **fixed})
    assert numel(module) == doc_mha(module.embed_dim)


def test_doc_mha_counterexamples() -> None:
    """The checker's counterexample for each condition, confirmed by numel()."""
    assert doc_verdict("MultiheadAttention").counterexamples == (
        # 4*8*8 = 256 without the 4*8 biases; the formula: 4*8*8 + 4*8 = 288
        "bias=True violated: MultiheadAttention(8, 2, bias=False, kdim=vdim=8, add_bias_kv=False) has 256 parameters, "
        "the formula gives 288",
        # q 8*8, k and v 8*5 each, out_proj 8*8, biases 4*8: 64 + 80 + 64 + 32 = 240
        "kdim=vdim=d violated: MultiheadAttention(8, 2, bias=True, kdim=vdim=5, add_bias_kv=False) has 240 "
        "parameters, the formula gives 288",
        # bias_k and bias_v: 2*8 more, 304
        "add_bias_kv=False violated: MultiheadAttention(8, 2, bias=True, kdim=vdim=8, add_bias_kv=True) has 304 "
        "parameters, the formula gives 288",
    )
    assert numel(meta(nn.MultiheadAttention, 8, 2, bias=False)) == 256
    assert numel(meta(nn.MultiheadAttention, 8, 2, kdim=5, vdim=5)) == 240
    assert numel(meta(nn.MultiheadAttention, 8, 2, add_bias_kv=True)) == 304


# --------------------------------------------------------------------------------------------- leaf-only counting


def doc_count_parameters(model: nn.Module) -> dict[str, int]:
    """The document's utils/model_analysis.py ``count_parameters``, verbatim: the thing under test."""
    param_counts = {}
    total = 0

    for name, module in model.named_modules():
        if len(list(module.children())) == 0:  # Leaf modules only
            count = sum(p.numel() for p in module.parameters())
            if count > 0:
                param_counts[name] = count
                total += count

    param_counts['total'] = total
    return param_counts


def test_doc_leaf_only_counter_misses_attention_in_proj() -> None:
    """The document's leaf-only utility skips MultiheadAttention itself (it has a child, out_proj), so it
    misses the in_proj_weight and in_proj_bias the attention owns.

    oracle: numel() of the model's parameters; archaudit's audit must agree.
    """
    model = meta(nn.Sequential, meta(nn.Linear, 17, 768), meta(nn.MultiheadAttention, 768, 12))
    full = numel(model)
    assert full == 2_376_192  # 17*768 + 768 + 4*768*768 + 4*768
    doc = doc_count_parameters(model)
    assert doc == {"0": 13_824, "1.out_proj": 590_592, "total": 604_416}  # 17*768 + 768; 768*768 + 768
    undercount = full - doc["total"]
    assert undercount == 1_771_776  # in_proj_weight 3*768*768 + in_proj_bias 3*768
    audit = archaudit.audit_params(model)
    assert audit.total == full
    assert audit.total - audit.leaf_only_total == undercount


@given(attention=MODULE_STRATEGIES[nn.MultiheadAttention])
def test_doc_leaf_only_counter_misses_exactly_what_attention_owns(attention: nn.MultiheadAttention) -> None:
    """For any MultiheadAttention, the leaf-only count misses exactly the tensors the attention owns itself.

    oracle: numel() of the attention's own parameters (recurse=False).
    """
    model = nn.Sequential(attention)
    audit = archaudit.audit_params(model)
    undercount = numel(model) - doc_count_parameters(model)["total"]
    assert undercount == own_numel(attention) > 0
    assert audit.total - audit.leaf_only_total == undercount
