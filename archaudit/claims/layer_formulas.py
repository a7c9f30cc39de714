"""Checking a document's layer formula ("Conv1d(in, out, k): in x out x k + out") against torch.

Configurations are drawn deterministically (see :func:`configurations`: the same on every machine), the module is built
on the meta device, and the formula, evaluated by the safe evaluator with the configuration's variables, is
compared with ``numel()``. The answer is the smallest set of conditions (bias=True, groups=1, ...) under which
the formula holds on every drawn configuration, with a counterexample for each condition.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .safe_eval import evaluate


@dataclass(frozen=True)
class LayerFamily:
    build: Callable[[dict[str, Any]], nn.Module]
    variables: Callable[[dict[str, Any]], dict[str, int]]
    """The document's variable names (in, out, k, n, i, h, d ...) for a configuration."""
    conditions: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...]
    base: dict[str, Any]
    """A small configuration meeting every condition."""
    violations: dict[str, dict[str, Any]]
    """Per condition, the change to ``base`` that violates it: the canonical counterexample."""
    describe: Callable[[dict[str, Any]], str]
    scope: str = ""


# Per layer family, each configuration variable's domain: a (low, high) range of integers or a tuple of choices.
_DOMAINS: dict[str, dict[str, tuple[int, int] | tuple[Any, ...]]] = {
    "Linear": {"in": (1, 64), "out": (1, 64), "bias": (False, True)},
    "Conv1d": {"g": (1, 2, 4), "a": (1, 16), "b": (1, 16), "k": (1, 7), "bias": (False, True)},
    "BatchNorm1d": {"n": (1, 64), "affine": (False, True), "bias": (False, True)},
    "LayerNorm": {"n": (1, 64), "affine": (False, True), "bias": (False, True)},
    "LSTM": {
        "i": (1, 64),
        "h": (2, 64),
        "bias": (False, True),
        "proj": (False, True),
        "layers": (1, 3),
        "bidir": (False, True),
    },
    "MultiheadAttention": {
        "heads": (1, 4),
        "hd": (1, 16),
        "bias": (False, True),
        "kdim": (None, 1, 2, 7, 16, 64),
        "bias_kv": (False, True),
    },
}


def _draw(rng: random.Random, domain: tuple[Any, ...]) -> Any:
    """One value from a domain, using only ``rng.random()``: the one part of :mod:`random` whose sequence Python
    guarantees across versions for a given seed."""
    if len(domain) == 2 and all(type(v) is int for v in domain):
        low, high = domain
        return low + min(int(rng.random() * (high - low + 1)), high - low)
    return domain[min(int(rng.random() * len(domain)), len(domain) - 1)]


def configurations(layer: str, count: int) -> list[dict[str, Any]]:
    """``count`` configurations of a layer family, the same on every machine and Python version: the family's
    small base configuration, then the base with each condition violated, then draws seeded by the layer's name
    (no test framework is needed at run time)."""
    family = LAYER_FAMILIES[layer]
    firsts = [dict(family.base), *({**family.base, **change} for change in family.violations.values())]
    rng = random.Random(f"archaudit:{layer}")
    domains = _DOMAINS[layer]
    drawn = [{name: _draw(rng, domain) for name, domain in domains.items()} for _ in range(max(count - len(firsts), 0))]
    return (firsts + drawn)[:count]


def _lstm_d(c: dict[str, Any]) -> int:
    return c["h"] - 1 if c["proj"] else 0


LAYER_FAMILIES: dict[str, LayerFamily] = {
    "Linear": LayerFamily(
        build=lambda c: nn.Linear(c["in"], c["out"], bias=c["bias"]),
        variables=lambda c: {"in_": c["in"], "out": c["out"]},
        conditions=(("bias=True", lambda c: c["bias"]),),
        base={"in": 4, "out": 3, "bias": True},
        violations={"bias=True": {"bias": False}},
        describe=lambda c: f"Linear({c['in']}, {c['out']}, bias={c['bias']})",
    ),
    "Conv1d": LayerFamily(
        build=lambda c: nn.Conv1d(c["a"] * c["g"], c["b"] * c["g"], c["k"], groups=c["g"], bias=c["bias"]),
        variables=lambda c: {"in_": c["a"] * c["g"], "out": c["b"] * c["g"], "k": c["k"]},
        conditions=(("bias=True", lambda c: c["bias"]), ("groups=1", lambda c: c["g"] == 1)),
        base={"g": 1, "a": 4, "b": 4, "k": 3, "bias": True},
        violations={"bias=True": {"bias": False}, "groups=1": {"g": 2, "a": 2, "b": 2}},
        describe=lambda c: f"Conv1d({c['a'] * c['g']}, {c['b'] * c['g']}, {c['k']}, groups={c['g']}, bias={c['bias']})",
    ),
    "BatchNorm1d": LayerFamily(
        build=lambda c: nn.BatchNorm1d(c["n"], affine=c["affine"]),
        variables=lambda c: {"n": c["n"]},
        conditions=(("affine=True", lambda c: c["affine"]),),
        base={"n": 8, "affine": True, "bias": True},
        violations={"affine=True": {"affine": False}},
        describe=lambda c: f"BatchNorm1d({c['n']}, affine={c['affine']})",
    ),
    "LayerNorm": LayerFamily(
        build=lambda c: nn.LayerNorm(c["n"], elementwise_affine=c["affine"], bias=c["bias"]),
        variables=lambda c: {"n": c["n"]},
        conditions=(("elementwise_affine=True", lambda c: c["affine"]), ("bias=True", lambda c: c["bias"])),
        base={"n": 8, "affine": True, "bias": True},
        violations={"elementwise_affine=True": {"affine": False}, "bias=True": {"bias": False}},
        describe=lambda c: f"LayerNorm({c['n']}, elementwise_affine={c['affine']}, bias={c['bias']})",
    ),
    "LSTM": LayerFamily(
        build=lambda c: nn.LSTM(
            c["i"], c["h"], num_layers=c["layers"], bidirectional=c["bidir"], bias=c["bias"], proj_size=_lstm_d(c)
        ),
        variables=lambda c: {"i": c["i"], "h": c["h"]},
        conditions=(
            ("bias=True", lambda c: c["bias"]),
            ("proj_size=0", lambda c: not c["proj"]),
            ("num_layers=1", lambda c: c["layers"] == 1),
            ("bidirectional=False", lambda c: not c["bidir"]),
        ),
        base={"i": 8, "h": 4, "bias": True, "proj": False, "layers": 1, "bidir": False},
        violations={
            "bias=True": {"bias": False},
            "proj_size=0": {"proj": True},
            "num_layers=1": {"layers": 2},
            "bidirectional=False": {"bidir": True},
        },
        describe=lambda c: (
            f"LSTM({c['i']}, {c['h']}, num_layers={c['layers']}, bidirectional={c['bidir']}, "
            f"bias={c['bias']}, proj_size={_lstm_d(c)})"
        ),
        scope="per layer and direction: a later layer of a bidirectional stack has input 2h",
    ),
    "MultiheadAttention": LayerFamily(
        build=lambda c: nn.MultiheadAttention(
            c["heads"] * c["hd"], c["heads"], bias=c["bias"], kdim=c["kdim"], vdim=c["kdim"], add_bias_kv=c["bias_kv"]
        ),
        variables=lambda c: {"d": c["heads"] * c["hd"]},
        conditions=(
            ("bias=True", lambda c: c["bias"]),
            ("kdim=vdim=d", lambda c: c["kdim"] in (None, c["heads"] * c["hd"])),
            ("add_bias_kv=False", lambda c: not c["bias_kv"]),
        ),
        base={"heads": 2, "hd": 4, "bias": True, "kdim": None, "bias_kv": False},
        violations={"bias=True": {"bias": False}, "kdim=vdim=d": {"kdim": 5}, "add_bias_kv=False": {"bias_kv": True}},
        describe=lambda c: (
            f"MultiheadAttention({c['heads'] * c['hd']}, {c['heads']}, bias={c['bias']}, "
            f"kdim=vdim={c['kdim'] or c['heads'] * c['hd']}, add_bias_kv={c['bias_kv']})"
        ),
    ),
}
"""The layer families a formula claim may name (``layer = "Conv1d"``), each with how to build and describe it
(not :data:`reference_models.families.FAMILIES`, the solver's model families)."""


@dataclass(frozen=True)
class FormulaVerdict:
    layer: str
    expression: str
    examples: int
    holds_in_general: bool
    conditions: tuple[str, ...]
    """The smallest set of conditions under which it held on every example (empty: in general)."""
    counterexamples: tuple[str, ...]
    """One per condition: a configuration violating it where the formula fails."""
    never_holds: bool = False
    scope: str = ""


@functools.lru_cache(maxsize=4096)
def numel_of(layer: str, config: tuple[tuple[str, Any], ...]) -> int:
    """``numel()`` of every parameter of ``layer`` built on meta with ``config`` (its items, in order): what a
    configuration gives never changes, and every formula claim on a layer draws the same configurations, so each is
    built once per process. Keyed by the layer's name: code that replaces a family in :data:`LAYER_FAMILIES` clears
    it (``numel_of.cache_clear()``)."""
    with torch.device("meta"):
        module = LAYER_FAMILIES[layer].build(dict(config))
    return sum(p.numel() for p in module.parameters())


def check_layer_formula(layer: str, expression: str, *, examples: int = 200) -> FormulaVerdict:
    if layer not in LAYER_FAMILIES:
        raise KeyError(f"no layer family {layer!r} for formula claims; known: {', '.join(LAYER_FAMILIES)}")
    family = LAYER_FAMILIES[layer]
    text = expression.replace("in ", "in_ ").replace("in×", "in_×").replace("in*", "in_*")
    outcomes: list[tuple[dict[str, Any], bool]] = []
    for config in configurations(layer, examples):
        actual = numel_of(layer, tuple(config.items()))
        outcomes.append((config, evaluate(text, family.variables(config)) == actual))
    if all(ok for _, ok in outcomes):
        return FormulaVerdict(layer, expression, len(outcomes), True, (), (), scope=family.scope)
    names = [name for name, _ in family.conditions]
    tests = dict(family.conditions)
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            within = [ok for config, ok in outcomes if all(tests[n](config) for n in subset)]
            if within and all(within):
                counter = tuple(_counterexample(layer, text, name) for name in subset)
                return FormulaVerdict(layer, expression, len(outcomes), False, subset, counter, scope=family.scope)
    return FormulaVerdict(
        layer,
        expression,
        len(outcomes),
        False,
        (),
        (_counterexample(layer, text, None),),
        never_holds=True,
        scope=family.scope,
    )


def _counterexample(layer: str, text: str, condition: str | None) -> str:
    """The canonical counterexample: the small base configuration with one condition violated."""
    family = LAYER_FAMILIES[layer]
    config = dict(family.base) if condition is None else {**family.base, **family.violations[condition]}
    actual = numel_of(layer, tuple(config.items()))
    formula = evaluate(text, family.variables(config))
    prefix = f"{condition} violated: " if condition else ""
    verb = "has" if formula != actual else "has (and the formula agrees)"
    return f"{prefix}{family.describe(config)} {verb} {actual:,} parameters, the formula gives {int(formula):,}"
