"""The registry of layer rules: completeness, declaration, copies and overrides, and rules keyed by a type's name.

Oracles, named in each test's docstring:

* **The registry's own listing** against the strategies of tests/strategies.py, for completeness: one strategy per
  rule key and one rule per strategy; a MAC rule (or a stated reason for none) for every rule.
* **numel()** of the real module's parameters, for audits run with a copied or extended registry.
* **FlopCounterMode on meta**, for the MACs of a module counted by a rule keyed by name.
* **Hand arithmetic**, with the arithmetic beside each figure.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from typing import Any, Callable

import pytest
import torch
from strategies import MODULE_STRATEGIES
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archaudit import KNOWN_ZERO, REGISTRY, FormulaRegistry, LayerFormula, LayerRule, RegistryError, Status
from archaudit import audit_params
from archaudit.formulas.linear import LinearSpec, linear_macs, linear_params
from archaudit.macs import audit_macs
from archaudit.records import Call, MacCount
from archaudit.registry import qualified_name


def _name(t: object) -> str:
    return t if isinstance(t, str) else t.__name__  # type: ignore[attr-defined]


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def _ident(key: object) -> str:
    """A rule key or strategy key as the qualified name it stands for (a type and its name are one key)."""
    return key if isinstance(key, str) else qualified_name(key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------- completeness


def test_every_rule_has_exactly_one_strategy_and_every_strategy_a_rule() -> None:
    """Oracle: the registry's listing against MODULE_STRATEGIES (a type and its qualified name are one key)."""
    rules = {_ident(key) for key in REGISTRY}
    strategies = [_ident(key) for key in MODULE_STRATEGIES]
    assert len(strategies) == len(set(strategies)), "two strategies for one type"
    missing = sorted(rules - set(strategies))
    stray = sorted(set(strategies) - rules)
    assert not missing, f"rules with no strategy in tests/strategies.py: {missing}"
    assert not stray, f"strategies for types archaudit has no rule for: {stray}"


def test_every_rule_counts_parameters_one_way() -> None:
    """Oracle: the registry's listing. Each key's rule is a formula or known zero, never both nor neither."""
    formulas, zeros = set(REGISTRY.formula_types()), set(REGISTRY.zero_types())
    assert formulas & zeros == set()
    assert formulas | zeros == set(REGISTRY)
    # Guards the completeness tests against passing over an empty or partial registry.
    assert {nn.Linear, nn.Conv2d, nn.LSTM, nn.MultiheadAttention, nn.LayerNorm} <= formulas
    assert {nn.ReLU, nn.Dropout, nn.MaxPool2d, nn.Sequential, nn.TransformerEncoder} <= zeros


def test_every_rule_has_a_mac_rule_or_says_why_not() -> None:
    """Oracle: the registry's listing. Every key with a parameter rule has a MAC rule, found under that very key
    (not only inherited along the MRO), or was declared without one with a reason; the built-in rules all have
    one."""
    for key, rule in REGISTRY.rules():
        assert rule.macs is not None or rule.no_macs.strip(), f"{_name(key)}: no MAC rule and no reason"
        if rule.macs is not None and isinstance(key, type):
            assert REGISTRY.lookup_macs(key) == (key, rule.macs), _name(key)
    without = sorted(_name(key) for key, rule in REGISTRY.rules() if rule.macs is None)
    assert without == []
    assert set(REGISTRY.mac_types()) == set(REGISTRY)


def test_families_partition_the_keys() -> None:
    """Oracle: the registry's listing. Every key is under exactly one family, and each family's keys have rules of
    that family (the test files derive their type lists from these)."""
    by_family = {family: REGISTRY.keys(family=family) for family in REGISTRY.families()}
    assert sorted(key for keys in by_family.values() for key in map(_ident, keys)) == sorted(map(_ident, REGISTRY))
    for family, keys in by_family.items():
        assert keys and all(REGISTRY.lookup_rule(k)[1].family == family for k in keys if isinstance(k, type))  # type: ignore[index]
    assert set(REGISTRY.keys(family="conv")) >= {nn.Conv1d, nn.ConvTranspose3d}
    assert REGISTRY.keys(family="no such family") == []


# --------------------------------------------------------------------------------------------- declaring


def _params(spec: object) -> int:
    return 0


def _expr(spec: object) -> str:
    return "0"


def _adapter(module: nn.Module) -> object:
    return None


def _no_work(module: nn.Module, call: Call) -> MacCount:
    return MacCount()


def _formula(registry: FormulaRegistry, *keys: Any, family: str = "x", override: bool = False) -> LayerRule:
    return registry.rule(
        *keys, family=family, spec=_adapter, params=_params, expression=_expr, macs=_no_work, override=override
    )


class NotAModule:
    pass


BAD_KEYS = ["Linear", "", "torch..Linear", "torch.nn.1Linear", ".Linear", 3, NotAModule, int, nn.Linear(2, 2), None]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_a_key_that_is_neither_a_module_type_nor_a_qualified_name_is_refused(key: object) -> None:
    registry = FormulaRegistry()
    with pytest.raises(RegistryError, match="nn.Module subclasses or qualified type names") as formula_error:
        _formula(registry, key)
    with pytest.raises(TypeError, match="nn.Module subclasses") as zero_error:  # RegistryError is a TypeError
        registry.zero(key, family="x", macs=_no_work)  # type: ignore[arg-type]
    assert isinstance(zero_error.value, RegistryError)
    assert repr(key) in str(formula_error.value)  # the message shows the value
    assert len(registry) == 0


def test_a_rule_needs_a_key() -> None:
    with pytest.raises(RegistryError, match="needs at least one"):
        _formula(FormulaRegistry())
    with pytest.raises(RegistryError, match="needs at least one"):
        FormulaRegistry().zero(family="x", macs=_no_work)


def test_a_rule_needs_a_mac_rule_or_a_reason() -> None:
    registry = FormulaRegistry()
    with pytest.raises(RegistryError, match="no MAC rule: pass macs=, or no_macs="):
        registry.rule(nn.Linear, family="linear", spec=_adapter, params=_params, expression=_expr)
    with pytest.raises(RegistryError, match="no MAC rule"):
        registry.zero(nn.ReLU, family="activation", no_macs="   ")
    with pytest.raises(RegistryError, match="both a MAC rule and no_macs"):
        registry.zero(nn.ReLU, family="activation", macs=_no_work, no_macs="counted by its ops")
    with pytest.raises(RegistryError, match="needs a family name"):
        registry.zero(nn.ReLU, family="", macs=_no_work)
    assert len(registry) == 0
    registry.zero(nn.ReLU, family="activation", no_macs="counted from its traced ops")
    assert registry.lookup(nn.ReLU) == (nn.ReLU, KNOWN_ZERO)
    assert registry.lookup_macs(nn.ReLU) is None


def test_a_duplicate_is_refused_in_the_same_registry() -> None:
    registry = FormulaRegistry()
    _formula(registry, nn.Linear, family="linear")
    with pytest.raises(RegistryError, match=r"Linear is already registered \(as 'linear'\); pass override=True"):
        _formula(registry, nn.Linear, family="other")
    with pytest.raises(RegistryError, match="Linear is already registered"):
        registry.zero(nn.Linear, family="x", macs=_no_work)
    # A type and its own qualified name are one key, both ways round.
    with pytest.raises(RegistryError, match="torch.nn.modules.linear.Linear is already registered"):
        _formula(registry, "torch.nn.modules.linear.Linear")
    registry.zero("torch.nn.modules.activation.ReLU", family="activation", macs=_no_work)
    with pytest.raises(RegistryError, match=r"ReLU is already registered \(as 'activation'\)"):
        registry.zero(nn.ReLU, family="activation", macs=_no_work)
    with pytest.raises(RegistryError, match="torch.nn.modules.activation.ReLU is already registered"):
        registry.zero("torch.nn.modules.activation.ReLU", family="activation", macs=_no_work)
    assert list(registry) == [nn.Linear, "torch.nn.modules.activation.ReLU"]
    assert registry.lookup_rule(nn.Linear)[1].family == "linear"  # type: ignore[index]


def _zero_then_bad_key(registry: FormulaRegistry) -> None:
    registry.zero(nn.ReLU, 3, family="x", macs=_no_work)  # type: ignore[arg-type]


def _formula_then_duplicate(registry: FormulaRegistry) -> None:
    _formula(registry, nn.ReLU, nn.Conv1d)


def _name_then_duplicate(registry: FormulaRegistry) -> None:
    _formula(registry, "fakepkg.layers.Thing", "torch.nn.modules.conv.Conv1d")


def _listed_twice(registry: FormulaRegistry) -> None:
    registry.zero(nn.ReLU, nn.ReLU, family="x", macs=_no_work)


def _type_and_its_name(registry: FormulaRegistry) -> None:
    registry.zero(nn.ReLU, "torch.nn.modules.activation.ReLU", family="x", macs=_no_work)


@pytest.mark.parametrize(
    "register",
    [_zero_then_bad_key, _formula_then_duplicate, _name_then_duplicate, _listed_twice, _type_and_its_name],
    ids=_name,
)
def test_refused_registration_adds_nothing(register: Callable[[FormulaRegistry], None]) -> None:
    """Registration is all-or-nothing: the keys listed before a refused one are not left registered."""
    registry = FormulaRegistry()
    registry.zero(nn.Conv1d, family="x", macs=_no_work)
    with pytest.raises(RegistryError):
        register(registry)
    assert list(registry) == [nn.Conv1d]


def test_override_replaces_a_rule_only_when_asked() -> None:
    registry = FormulaRegistry()
    first = _formula(registry, nn.Linear, nn.Conv1d, family="first")
    second = _formula(registry, nn.Linear, family="second", override=True)
    assert registry.lookup_rule(nn.Linear) == (nn.Linear, second)
    assert registry.lookup_rule(nn.Conv1d) == (nn.Conv1d, first)  # the other key of the first rule keeps it
    assert list(registry) == [nn.Linear, nn.Conv1d]  # replaced in place
    # override=True also adds a key that had no rule, and replaces a type by its name.
    third = _formula(registry, nn.Bilinear, "torch.nn.modules.conv.Conv1d", family="third", override=True)
    assert list(registry) == [nn.Linear, nn.Bilinear, "torch.nn.modules.conv.Conv1d"]
    assert registry.lookup_rule(nn.Conv1d) == (nn.Conv1d, third)


def test_a_rule_is_one_declaration_of_parameters_expression_and_macs() -> None:
    """Oracle: hand arithmetic. One declaration gives the walker its formula and expression and the MAC audit its
    rule, for every type it lists."""
    registry = FormulaRegistry()
    rule = registry.rule(
        nn.Linear,
        family="affine",
        spec=lambda m: LinearSpec(m.in_features, m.out_features, m.bias is not None),
        params=linear_params,
        expression=lambda s: f"{s.in_features}*{s.out_features} + {s.out_features}",
        macs=lambda m, call: MacCount(macs=5, bias=1),
    )
    assert isinstance(rule.parameters, LayerFormula) and rule.family == rule.parameters.family == "affine"
    record = audit_params(nn.Linear(3, 2), registry=registry).record("")
    assert (record.status, record.family, record.formula, record.formula_params) == (
        Status.FORMULA, "affine", "3*2 + 2", 8  # 3*2 + 2
    )
    counted = audit_macs(nn.Linear(3, 2), [meta((1, 3))], registry=registry, flop_counter=False).record("")
    assert (counted.macs, counted.counts.bias, counted.source) == (5, 1, "formula")


# --------------------------------------------------------------------------------------------- copies


def test_a_copy_holds_the_same_rules() -> None:
    mine = REGISTRY.copy()
    assert mine is not REGISTRY
    assert list(mine.rules()) == list(REGISTRY.rules())
    assert all(a[1] is b[1] for a, b in zip(mine.rules(), REGISTRY.rules()))


class Gadget(nn.Module):
    """A layer with parameters that no built-in rule covers."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _scale_rule(registry: FormulaRegistry) -> LayerRule:
    return registry.rule(
        Gadget,
        family="scale",
        spec=lambda m: m.scale.shape[0],
        params=lambda n: n,
        expression=str,
        macs=lambda m, call: MacCount(macs=m.scale.shape[0]),
    )


def test_adding_to_a_copy_leaves_the_original_as_it_was() -> None:
    """Oracle: numel(). The copy counts Gadget by its rule; REGISTRY still has no rule for it, both ways round."""
    size = len(REGISTRY)
    mine = REGISTRY.copy()
    _scale_rule(mine)
    assert Gadget in mine and Gadget not in REGISTRY and len(REGISTRY) == size == len(mine) - 1
    counted = audit_params(Gadget(), registry=mine).record("")
    assert (counted.status, counted.family, counted.formula_params) == (Status.FORMULA, "scale", numel(Gadget()))
    assert counted.formula_params == 5
    assert audit_params(Gadget()).record("").status is Status.DIRECT
    assert audit_macs(Gadget(), [meta((2, 5))], registry=mine).record("").macs == 5
    assert audit_macs(Gadget(), [meta((2, 5))]).record("").source != "formula"
    # The other way round: what the original gains after copying, the copy does not.
    base = FormulaRegistry()
    copied = base.copy()
    _scale_rule(base)
    assert Gadget in base and Gadget not in copied and len(copied) == 0


def test_overriding_in_a_copy_leaves_the_original_as_it_was() -> None:
    """Oracle: numel() and hand arithmetic. A copy's override is used by audit_params and audit_macs given that
    copy; REGISTRY, and audits without registry=, are unchanged."""
    original = REGISTRY.lookup_rule(nn.Linear)
    mine = REGISTRY.copy()
    with pytest.raises(RegistryError, match="Linear is already registered"):
        _formula(mine, nn.Linear)
    # A weights-only formula: the audit must flag that it disagrees with numel().
    mine.rule(
        nn.Linear,
        family="weights_only",
        spec=lambda m: LinearSpec(m.in_features, m.out_features, False),
        params=linear_params,
        expression=lambda s: f"{s.in_features}*{s.out_features}",
        macs=lambda m, call: MacCount(macs=7),
        override=True,
    )
    record = audit_params(nn.Linear(3, 2), registry=mine).record("")
    assert (record.family, record.formula_params, record.subtree_params) == ("weights_only", 6, 8)  # 3*2; 3*2 + 2
    assert audit_macs(nn.Linear(4, 3), [meta((2, 4))], registry=mine, flop_counter=False).record("").macs == 7
    assert REGISTRY.lookup_rule(nn.Linear) == original
    assert audit_params(nn.Linear(3, 2)).record("").family == "linear"
    assert audit_macs(nn.Linear(4, 3), [meta((2, 4))]).record("").macs == 24  # 2 rows * 4*3


def test_a_copy_can_override_the_macs_of_a_rule_alone() -> None:
    """Oracle: hand arithmetic. dataclasses.replace on the rule found keeps its formula and swaps its MAC rule."""
    mine = REGISTRY.copy()
    _, linear = REGISTRY.lookup_rule(nn.Linear)  # type: ignore[misc]
    mine.add(dataclasses.replace(linear, macs=lambda m, call: MacCount(macs=1)), nn.Linear, override=True)
    assert mine.lookup(nn.Linear) == REGISTRY.lookup(nn.Linear)
    assert audit_macs(nn.Linear(4, 3), [meta((2, 4))], registry=mine, flop_counter=False).record("").macs == 1
    # MultiheadAttention's out_proj (a Linear subclass) follows the override too; REGISTRY's rule does not change.
    assert mine.lookup_macs(nn.modules.linear.NonDynamicallyQuantizableLinear)[1] is not linear.macs  # type: ignore[index]
    assert REGISTRY.lookup_macs(nn.Linear)[1] is linear.macs  # type: ignore[index]


def test_a_rule_declared_without_macs_is_counted_from_its_ops() -> None:
    """Oracle: hand arithmetic (FlopCounterMode's addmm formula on the traced op). A rule with ``no_macs`` stops
    the lookup there: the module's work is counted from its ops, not by a base class's rule, and named so."""
    mine = REGISTRY.copy()
    _, linear = REGISTRY.lookup_rule(nn.Linear)  # type: ignore[misc]
    mine.add(dataclasses.replace(linear, macs=None, no_macs="counted from its ops"), nn.Linear, override=True)
    assert mine.lookup_macs(nn.Linear) is None
    assert mine.lookup_macs(nn.modules.linear.NonDynamicallyQuantizableLinear) is None
    record = audit_macs(nn.Linear(4, 3), [meta((2, 4))], registry=mine).record("")
    assert (record.status, record.source, record.macs) == (Status.OPS, "ops", 24)  # 2 * 4*3
    assert record.note.startswith("no MAC rule for Linear (counted from its ops): ")  # the reason is shown
    assert audit_params(nn.Linear(4, 3), registry=mine).record("").status is Status.FORMULA


# --------------------------------------------------------------------------------------------- lookup


def test_lookup_follows_the_mro() -> None:
    class MyLinear(nn.Linear):
        pass

    found = REGISTRY.lookup(MyLinear)
    assert found is not None and found[0] is nn.Linear and found[1] is REGISTRY.lookup(nn.Linear)[1]  # type: ignore[index]
    with torch.device("meta"):
        assert found[1].count(MyLinear(3, 4)) == 16  # type: ignore[union-attr]  # 3*4 + 4
    # MultiheadAttention's out_proj is a NonDynamicallyQuantizableLinear: counted as a Linear.
    assert REGISTRY.lookup(nn.modules.linear.NonDynamicallyQuantizableLinear)[0] is nn.Linear  # type: ignore[index]
    assert REGISTRY.lookup(Gadget) is None
    assert REGISTRY.lookup(nn.Module) is None

    fresh = FormulaRegistry()
    assert fresh.lookup(MyLinear) is None
    _formula(fresh, nn.Linear)
    fresh.zero(nn.ReLU, family="activation", macs=_no_work)
    assert fresh.lookup(MyLinear)[0] is nn.Linear  # type: ignore[index]
    assert fresh.lookup(type("MyReLU", (nn.ReLU,), {})) == (nn.ReLU, KNOWN_ZERO)
    assert fresh.lookup(Gadget) is None


# --------------------------------------------------------------------------------------------- keys by name

FAKE_PACKAGE = "fakepkg_never_installed"


class FakeConv1D(nn.Module):
    """Stands in for a layer of a package that is not installed: transformers' Conv1D (a Linear whose weight is
    stored transposed, ``(nx, nf)``), under a package name that cannot be imported."""

    __module__ = f"{FAKE_PACKAGE}.pytorch_utils"
    __qualname__ = "Conv1D"

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(*x.shape[:-1], self.nf)


def _conv1d_spec(m: Any) -> LinearSpec:
    nx, nf = m.weight.shape
    return LinearSpec(nx, nf, m.bias is not None)


def _conv1d_rule(registry: FormulaRegistry, key: str, override: bool = False) -> LayerRule:
    return registry.rule(
        key,
        override=override,
        family="conv1d_transposed",
        spec=_conv1d_spec,
        params=linear_params,
        expression=lambda s: f"{s.in_features}*{s.out_features} + {s.out_features}",
        macs=lambda m, call: linear_macs(_conv1d_spec(m), call.input),
    )


def flop_counter_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        module(*inputs)
    return counter.get_total_flops() // 2


def test_a_rule_keyed_by_name_matches_without_importing_the_package() -> None:
    """Oracle: numel() and FlopCounterMode on meta. A rule keyed by ``"fakepkg_never_installed.pytorch_utils.Conv1D"``
    counts the class of that qualified name, though that package cannot be imported; REGISTRY is untouched."""
    assert importlib.util.find_spec(FAKE_PACKAGE) is None  # nothing could import it
    assert qualified_name(FakeConv1D) == f"{FAKE_PACKAGE}.pytorch_utils.Conv1D"
    mine = REGISTRY.copy()
    rule = _conv1d_rule(mine, f"{FAKE_PACKAGE}.pytorch_utils.Conv1D")
    assert mine.lookup_rule(FakeConv1D) == (FakeConv1D, rule)
    assert FAKE_PACKAGE not in sys.modules
    with torch.device("meta"):
        layer = FakeConv1D(nf=6, nx=4)
    record = audit_params(layer, registry=mine).record("")
    assert (record.status, record.family, record.formula) == (Status.FORMULA, "conv1d_transposed", "4*6 + 6")
    assert record.formula_params == numel(layer) == 30  # 4*6 + 6
    x = meta((2, 5, 4))
    counted = audit_macs(layer, [x], registry=mine, flop_counter=False).record("")
    assert counted.source == "formula" and counted.macs == flop_counter_macs(layer, x) == 240  # 2*5 rows * 4*6
    assert audit_params(layer).record("").status is Status.DIRECT  # REGISTRY has no such rule: numel() counts its own weight and bias


def test_registering_and_looking_up_names_imports_nothing() -> None:
    """Oracle: sys.modules. A name key costs a user without the package nothing: neither declaring it nor any lookup
    (of that type, of built-in types, in audits) imports a module."""
    audit_params(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))  # anything an audit imports lazily, imported now
    before = set(sys.modules)
    mine = REGISTRY.copy()
    assert "transformers.pytorch_utils.Conv1D" in REGISTRY  # archaudit's own rule (formulas/hf.py), declared by name
    _conv1d_rule(mine, "transformers.pytorch_utils.Conv1D", override=True)
    _conv1d_rule(mine, f"{FAKE_PACKAGE}.pytorch_utils.Conv1D")
    assert mine.lookup(nn.Linear) == REGISTRY.lookup(nn.Linear)
    assert mine.lookup(Gadget) is None
    assert mine.lookup(FakeConv1D) is not None
    audit_params(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), Gadget()), registry=mine)
    assert set(sys.modules) - before == set()


class GPT2Projection(FakeConv1D):
    """A subclass of the name-keyed class, in this (importable) module: found along its MRO."""


def test_a_rule_keyed_by_name_is_inherited_along_the_mro() -> None:
    """Oracle: numel(). A subclass of the named class is counted by its rule, and the walker says so."""
    mine = REGISTRY.copy()
    rule = _conv1d_rule(mine, f"{FAKE_PACKAGE}.pytorch_utils.Conv1D")
    assert mine.lookup_rule(GPT2Projection) == (FakeConv1D, rule)
    record = audit_params(GPT2Projection(nf=3, nx=2), registry=mine).record("")
    assert (record.status, record.formula_params) == (Status.FORMULA, 9)  # 2*3 + 3
    assert record.note == "counted as FakeConv1D"


def _fake(name: str, *bases: type) -> type:
    """A class named ``fakepkg_never_installed.layers.<name>``, as if defined in that package."""
    return type(name, bases or (nn.Module,), {"__module__": f"{FAKE_PACKAGE}.layers", "__qualname__": name})


def test_lookup_takes_each_base_in_mro_order_type_key_then_name_key() -> None:
    """For each base along the MRO in turn: its type-keyed rule, then its name-keyed rule. So the nearest base with
    either kind of key wins, whichever kind the farther bases have."""
    registry = FormulaRegistry()
    by_type = _formula(registry, nn.Linear, family="linear by type")
    named_sub = _fake("NamedSub", nn.Linear)
    by_name = _formula(registry, f"{FAKE_PACKAGE}.layers.NamedSub", family="subclass by name")
    assert registry.lookup_rule(named_sub) == (named_sub, by_name)  # a name at the first base beats a type later
    assert registry.lookup_rule(type("Deeper", (named_sub,), {})) == (named_sub, by_name)
    assert registry.lookup_rule(nn.Linear) == (nn.Linear, by_type)

    named_base = _fake("NamedBase")
    child = type("Child", (named_base,), {})
    base_rule = _formula(registry, f"{FAKE_PACKAGE}.layers.NamedBase", family="base by name")
    child_rule = _formula(registry, child, family="child by type")
    assert registry.lookup_rule(type("GrandChild", (child,), {})) == (child, child_rule)  # a type before a name
    assert registry.lookup_rule(type("Sibling", (named_base,), {})) == (named_base, base_rule)
    # At one base the two kinds never meet: a type and its own name are one key (refused, or replaced on override).
    with pytest.raises(RegistryError, match="already registered"):
        _formula(registry, qualified_name(child))
    replaced = _formula(registry, qualified_name(child), family="child by name", override=True)
    assert child not in registry and registry.lookup_rule(child) == (child, replaced)


def test_a_name_matches_module_types_only() -> None:
    """A name key names an nn.Module type: a plain mixin of that name in a module's MRO is not matched."""
    mixin = type("Mixin", (), {"__module__": f"{FAKE_PACKAGE}.layers", "__qualname__": "Mixin"})
    registry = FormulaRegistry()
    _formula(registry, f"{FAKE_PACKAGE}.layers.Mixin")
    assert registry.lookup_rule(type("Layer", (mixin, nn.Module), {})) is None


def test_a_rule_keyed_by_name_matches_transformers_conv1d() -> None:
    """Oracle: numel() and FlopCounterMode on meta, on the real ``transformers.pytorch_utils.Conv1D``."""
    pytorch_utils = pytest.importorskip(
        "transformers.pytorch_utils", reason="transformers is not installed (it is no dependency of archaudit)"
    )
    conv1d = pytorch_utils.Conv1D
    assert qualified_name(conv1d) == "transformers.pytorch_utils.Conv1D"
    builtin = REGISTRY.lookup_rule(conv1d)  # archaudit's own rule (formulas/hf.py); a copy may override it
    assert builtin is not None and builtin[1].family == "hf_conv1d"
    mine = REGISTRY.copy()
    with pytest.raises(RegistryError, match="already registered"):
        _conv1d_rule(mine, "transformers.pytorch_utils.Conv1D")
    rule = _conv1d_rule(mine, "transformers.pytorch_utils.Conv1D", override=True)
    assert mine.lookup_rule(conv1d) == (conv1d, rule) and REGISTRY.lookup_rule(conv1d) == builtin
    with torch.device("meta"):
        layer = conv1d(nf=6, nx=4)
    record = audit_params(layer, registry=mine).record("")
    assert (record.status, record.formula_params) == (Status.FORMULA, numel(layer))
    assert record.formula_params == 30  # 4*6 + 6
    x = meta((2, 5, 4))
    counted = audit_macs(layer, [x], registry=mine, flop_counter=False).record("")
    assert counted.source == "formula" and counted.macs == flop_counter_macs(layer, x) == 240  # 2*5 rows * 4*6
