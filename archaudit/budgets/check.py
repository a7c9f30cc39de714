"""Budgets: hold a model to limits on parameters, MACs, FLOPs and size, in a test or in CI.

``assert_budget(model, params=..., macs=..., input=...)`` raises :class:`BudgetExceeded` (an
``AssertionError``, so pytest shows it as a failure) whose message is a table of every limit, the measured
value and the margin. Unsupported layers count against a budget unless ``allow_unsupported=True``: a budget
that cannot see part of the model is not met. Only a real unknown is unsupported: a module counted by the
parameters it holds itself (``direct``) or op by op from its trace (``ops``) never fails a budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ArchauditError, InputSpecError
from ..inputs import KEYWORD_NAME, MAX_DIMENSION, InputSpec, parse_input
from ..tomlfile import finite, is_int, shown

if TYPE_CHECKING:
    from ..registry import FormulaRegistry

Limit = float | int | tuple[float, float] | Sequence[float]
KINDS = ("params", "trainable", "macs", "flops", "size_mb")
UNITS = {"params": "parameters", "trainable": "parameters", "macs": "MACs", "flops": "FLOPs", "size_mb": "MB"}


class BudgetError(ArchauditError, ValueError):
    """A budget is malformed (a negative limit, min > max, MACs without an input ...)."""


@dataclass(frozen=True)
class Check:
    kind: str
    low: float | None
    high: float
    measured: float

    @property
    def ok(self) -> bool:
        return (self.low is None or self.measured >= self.low) and self.measured <= self.high

    @property
    def margin(self) -> float:
        """Room left under the maximum (negative: over it), or below the minimum when under it."""
        if self.low is not None and self.measured < self.low:
            return self.measured - self.low
        return self.high - self.measured


@dataclass(frozen=True)
class BudgetResult:
    name: str
    inputs: tuple[str, ...]
    checks: tuple[Check, ...]
    unsupported: tuple[str, ...]
    allow_unsupported: bool

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and (self.allow_unsupported or not self.unsupported)


class BudgetExceeded(AssertionError):
    """A model is over (or under) one of its limits; ``str()`` is the table."""

    def __init__(self, result: BudgetResult) -> None:
        from ..render.budget import budget_message

        super().__init__(budget_message(result))
        self.result = result


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if not float(value).is_integer() else f"{int(value):,}"


LIMIT = "a number or a (min, max) pair, each finite and non-negative"
INPUT = (
    "a shape such as '1x30x17', a tuple of positive integers or a tensor, or a non-empty list of them, "
    "with inputs passed by name as 'NAME=SHAPE' ('input_ids=1x128:int64') or as a table of them by name"
)


def _limit(limit: Any) -> tuple[float | None, float] | str:
    """A limit's ``(min or None, max)``, or what is wrong with it (``"must be ..."``)."""

    pair = isinstance(limit, (tuple, list)) and len(limit) == 2
    found = [finite(v) for v in (limit if pair else [limit])]
    values = [v for v in found if v is not None and v >= 0]
    if len(values) != len(found):  # not a number, a bool, nan, inf, 10**400, negative
        return f"must be {LIMIT}"
    if pair and values[0] > values[1]:
        return (
            f"must be a (min, max) pair with min <= max: minimum {_fmt(values[0])} is above maximum {_fmt(values[1])}"
        )
    return (values[0], values[1]) if pair else (None, values[0])


def limit_problem(limit: Any) -> str | None:
    """What is wrong with a limit (``"must be ..."``), or None: the budgets file's check of its limits."""
    found = _limit(limit)
    return found if isinstance(found, str) else None


def _bounds(kind: str, limit: Any) -> tuple[float | None, float]:

    found = _limit(limit)
    if isinstance(found, str):
        raise BudgetError(f"{kind} = {shown(limit)} {found}")
    return found


def _shape(item: Any) -> InputSpec | str:
    """One shape of a tuple or list of dimensions, each a positive integer (not a bool), within parse_input's
    bounds; or what is wrong with it."""

    if not item:
        return "must have at least one dimension"
    for size in item:
        if not is_int(size) or size < 1:
            return f"must have every dimension a positive integer; {shown(size)} is not"
        if size > MAX_DIMENSION:  # before it is written out: str() refuses ints past 4,300 digits
            return f"is not a shape: a dimension is larger than {MAX_DIMENSION:,}"
    try:
        parse_input("x".join(str(size) for size in item))  # its bounds: dimensions, their sizes, elements
    except InputSpecError as exc:
        return f"is not a shape ({exc})"
    return InputSpec(tuple(item))


def _input(item: Any) -> InputSpec | torch.Tensor | str:
    if isinstance(item, str):
        try:
            return parse_input(item)
        except InputSpecError as exc:
            return f"is not a shape ({exc})"
    if isinstance(item, torch.Tensor):
        zero = next((size for size in item.shape if size == 0), None)
        return item if zero is None else "must have every dimension a positive integer; 0 is not"
    if isinstance(item, InputSpec):
        checked = _shape(item.shape)
        return item if isinstance(checked, InputSpec) else checked
    if isinstance(item, (tuple, list)):
        return _shape(item)
    return f"must be {INPUT}"


def _named_or_problem(value: Mapping[Any, Any]) -> dict[str, Any] | str:
    if not value:
        return f"must be {INPUT}"
    named: dict[str, Any] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not KEYWORD_NAME.match(name):
            return f"names {shown(name)}, which is not an input name (a Python identifier)"
        found = _input(item)
        if isinstance(found, str):
            return f"{name} {found}"
        named[name] = found
    return named


def _inputs_or_problem(value: Any) -> tuple[list[Any], dict[str, Any]] | str:
    """``(positional, by name)``, or what is wrong with the value."""
    if isinstance(value, Mapping):
        found_named = _named_or_problem(value)
        return found_named if isinstance(found_named, str) else ([], found_named)
    if (
        isinstance(value, (tuple, list))
        and value
        and not any(isinstance(v, (tuple, list, str, InputSpec, torch.Tensor)) for v in value)
    ):
        items: list[Any] = [value]  # a flat sequence is one shape: (1, 30, 17)
    elif isinstance(value, (tuple, list)):
        items = list(value)
        if not items:
            return f"must be {INPUT}"
    else:
        items = [value]
    out = []
    by_name: dict[str, Any] = {}
    for item in items:
        if isinstance(item, str) and "=" in item:
            name, _, shape = item.partition("=")
            found_named = _named_or_problem({name.strip(): shape})
            if isinstance(found_named, str):
                return found_named
            if set(found_named) & set(by_name):
                return f"gives {name.strip()} twice"
            by_name |= found_named
            continue
        if by_name:
            return f"has the positional {shown(item)} after an input passed by name"
        found = _input(item)
        if isinstance(found, str):
            return found
        out.append(found)
    return out, by_name


def input_problem(value: Any) -> str | None:
    """What is wrong with an ``input=`` (``"must be ..."``), or None: the budgets file's check of its inputs."""
    found = _inputs_or_problem(value)
    return found if isinstance(found, str) else None


def _inputs(value: Any) -> tuple[list[Any], dict[str, Any]]:
    """The inputs ``input=`` gives: a shape string (through :func:`~archaudit.inputs.parse_input` and its
    bounds), a tuple of positive integers, an :class:`InputSpec`, a tensor, or a non-empty list of these. A
    dimension of 0 (no MACs at all) or a bool is refused, never read as a size."""

    if value is None:
        return [], {}
    found = _inputs_or_problem(value)
    if isinstance(found, str):
        raise BudgetError(f"input = {shown(value)} {found}")
    return found


def check_budget(
    model: nn.Module,
    *,
    name: str | None = None,
    input: Any = None,
    allow_unsupported: bool = False,
    registry: FormulaRegistry | None = None,
    **limits: Limit,
) -> BudgetResult:
    """Measure ``model`` against ``limits`` (see :func:`assert_budget`) without raising; ``registry`` counts with
    other layer rules than :data:`archaudit.REGISTRY` (a copy extended for one model)."""
    from ..registry import REGISTRY
    from ..walker import audit_params

    registry = REGISTRY if registry is None else registry

    if not isinstance(allow_unsupported, bool):
        raise BudgetError(f"allow_unsupported = {shown(allow_unsupported)} must be a boolean (true or false)")
    if name is not None and not isinstance(name, str):
        raise BudgetError(f"name = {shown(name)} must be a string")
    unknown = set(limits) - set(KINDS)
    if unknown:
        raise BudgetError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
    if not limits:
        raise BudgetError("no limit given: pass params=, trainable=, macs=, flops= or size_mb=")
    bounds = {kind: _bounds(kind, limit) for kind, limit in limits.items()}
    inputs, named = _inputs(input)  # refused before any work
    audit = audit_params(model, registry=registry)
    measured: dict[str, float] = {
        "params": audit.total,
        "trainable": audit.trainable,
        "size_mb": audit.param_bytes / 1e6,
    }
    unsupported = [r.name or "(root)" for r in audit.unsupported]
    labels: tuple[str, ...] = ()
    if "macs" in limits or "flops" in limits or inputs or named:
        if not inputs and not named:
            raise BudgetError("macs/flops limits need input= (a shape such as '1x30x17')")
        from ..macs import audit_macs

        flops = audit_macs(model, inputs, registry=registry, keyword_inputs=named)
        measured["macs"], measured["flops"] = flops.macs, flops.flops
        unsupported += [
            f"{r.name or '(root)'} (MACs: {', '.join(op for op, _ in r.unsupported_ops) or 'not counted'})"
            for r in flops.unsupported
        ]
        labels = flops.inputs
    checks = tuple(Check(kind, low, high, measured[kind]) for kind, (low, high) in bounds.items())
    return BudgetResult(name or type(model).__name__, labels, checks, tuple(unsupported), allow_unsupported)


def assert_budget(
    model: nn.Module,
    *,
    params: Limit | None = None,
    trainable: Limit | None = None,
    macs: Limit | None = None,
    flops: Limit | None = None,
    size_mb: Limit | None = None,
    input: Any = None,
    allow_unsupported: bool = False,
    name: str | None = None,
    registry: FormulaRegistry | None = None,
) -> BudgetResult:
    """Raise :class:`BudgetExceeded` when ``model`` is outside any limit.

    A limit is a maximum (``params=2_000_000``) or a ``(min, max)`` range (``macs=(300e6, 400e6)``), each a
    finite number >= 0 (nan, inf and bools are refused). ``size_mb`` is the parameters' bytes as stored, in MB
    (10^6 bytes). ``macs`` and ``flops`` (2 x MACs) need ``input``: a shape string (``"1x30x17"``,
    ``"1x128:int64"``), a tuple of positive ints, a tensor, or a non-empty list of these; a dimension of 0 or a
    bool is refused. ``allow_unsupported`` is a bool (``"false"`` is refused, not read as true). A malformed
    budget raises :class:`BudgetError` (a ``ValueError``), never :class:`BudgetExceeded`.
    """
    __tracebackhide__ = True  # pytest shows the table, not this frame
    given = {
        k: v
        for k, v in {"params": params, "trainable": trainable, "macs": macs, "flops": flops, "size_mb": size_mb}.items()
        if v is not None
    }
    result = check_budget(
        model, name=name, input=input, allow_unsupported=allow_unsupported, registry=registry, **given
    )
    if not result.ok:
        raise BudgetExceeded(result)
    return result
