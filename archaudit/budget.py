"""Budgets: hold a model to limits on parameters, MACs, FLOPs and size, in a test or in CI.

``assert_budget(model, params=..., macs=..., input=...)`` raises :class:`BudgetExceeded` (an
``AssertionError``, so pytest shows it as a failure) whose message is a table of every limit, the measured
value and the margin. Unsupported layers count against a budget unless ``allow_unsupported=True``: a budget
that cannot see part of the model is not met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Union

import torch
from torch import nn

from .capture import InputSpec, parse_input
from .errors import ArchauditError

Limit = Union[float, int, tuple[float, float], Sequence[float]]
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

    def table(self) -> str:
        from tabulate import tabulate

        rows = []
        for c in self.checks:
            budget = f"<= {_fmt(c.high)}" if c.low is None else f"{_fmt(c.low)} .. {_fmt(c.high)}"
            relative = f" ({100 * c.margin / c.high:+.1f}%)" if c.high else ""
            rows.append((c.kind, budget, _fmt(c.measured), f"{_signed(c.margin)}{relative}", "ok" if c.ok else "OVER"
                         if c.measured > c.high else "UNDER"))
        if self.unsupported:
            rows.append(("unsupported layers", "0" if not self.allow_unsupported else "allowed",
                         str(len(self.unsupported)), ", ".join(self.unsupported[:5])
                         + (" ..." if len(self.unsupported) > 5 else ""),
                         "ok" if self.allow_unsupported else "FAIL"))
        return tabulate(rows, headers=["limit", "budget", "measured", "margin", ""], tablefmt="simple",
                        disable_numparse=True)

    def message(self) -> str:
        inputs = f" (input {', '.join(self.inputs)})" if self.inputs else ""
        head = "within budget" if self.ok else "over budget"
        return f"{self.name}{inputs}: {head}\n{self.table()}"


class BudgetExceeded(AssertionError):
    """A model is over (or under) one of its limits; ``str()`` is the table."""

    def __init__(self, result: BudgetResult) -> None:
        super().__init__(result.message())
        self.result = result


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if not float(value).is_integer() else f"{int(value):,}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _fmt(abs(value))


def _bounds(kind: str, limit: Any) -> tuple[float | None, float]:
    if isinstance(limit, bool) or limit is None:
        raise BudgetError(f"{kind}: a limit is a number or a (min, max) pair, got {limit!r}")
    if isinstance(limit, (int, float)):
        low, high = None, float(limit)
    elif isinstance(limit, (tuple, list)) and len(limit) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in limit):
        low, high = float(limit[0]), float(limit[1])
        if low > high:
            raise BudgetError(f"{kind}: minimum {_fmt(low)} is above maximum {_fmt(high)}")
    else:
        raise BudgetError(f"{kind}: a limit is a number or a (min, max) pair, got {limit!r}")
    if high < 0 or (low is not None and low < 0) or math.isnan(high):
        raise BudgetError(f"{kind}: limits must be non-negative, got {limit!r}")
    return low, high


def _inputs(value: Any) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) and not (
        value and all(isinstance(v, int) for v in value)) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(parse_input(item))
        elif isinstance(item, InputSpec) or isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (tuple, list)) and all(isinstance(d, int) for d in item):
            out.append(InputSpec(tuple(item)))
        else:
            raise BudgetError(f"input: expected a shape such as '1x30x17', a tuple of ints or a tensor, got {item!r}")
    return out


def check_budget(model: nn.Module, *, name: str | None = None, input: Any = None,
                 allow_unsupported: bool = False, **limits: Limit) -> BudgetResult:
    """Measure ``model`` against ``limits`` (see :func:`assert_budget`) without raising."""
    from .walker import audit_params

    unknown = set(limits) - set(KINDS)
    if unknown:
        raise BudgetError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")
    if not limits:
        raise BudgetError("no limit given: pass params=, trainable=, macs=, flops= or size_mb=")
    bounds = {kind: _bounds(kind, limit) for kind, limit in limits.items()}
    audit = audit_params(model)
    measured: dict[str, float] = {"params": audit.total, "trainable": audit.trainable,
                                  "size_mb": audit.param_bytes / 1e6}
    unsupported = [r.name or "(root)" for r in audit.unsupported]
    inputs = _inputs(input)
    labels: tuple[str, ...] = ()
    if "macs" in limits or "flops" in limits or inputs:
        if not inputs:
            raise BudgetError("macs/flops limits need input= (a shape such as '1x30x17')")
        from .flops import audit_macs

        flops = audit_macs(model, inputs)
        measured["macs"], measured["flops"] = flops.macs, flops.flops
        unsupported += [f"{r.name or '(root)'} (MACs)" for r in flops.unsupported]
        labels = flops.inputs
    checks = tuple(Check(kind, low, high, measured[kind]) for kind, (low, high) in bounds.items())
    return BudgetResult(name or type(model).__name__, labels, checks, tuple(unsupported), allow_unsupported)


def assert_budget(model: nn.Module, *, params: Limit | None = None, trainable: Limit | None = None,
                  macs: Limit | None = None, flops: Limit | None = None, size_mb: Limit | None = None,
                  input: Any = None, allow_unsupported: bool = False, name: str | None = None) -> BudgetResult:
    """Raise :class:`BudgetExceeded` when ``model`` is outside any limit.

    A limit is a maximum (``params=2_000_000``) or a ``(min, max)`` range (``macs=(300e6, 400e6)``).
    ``size_mb`` is the parameters' bytes as stored, in MB (10^6 bytes). ``macs`` and ``flops`` (2 x MACs) need
    ``input``: a shape string (``"1x30x17"``, ``"1x128:int64"``), a tuple of ints, a tensor, or a list of these.
    """
    __tracebackhide__ = True  # pytest shows the table, not this frame
    given = {k: v for k, v in dict(params=params, trainable=trainable, macs=macs, flops=flops,
                                   size_mb=size_mb).items() if v is not None}
    result = check_budget(model, name=name, input=input, allow_unsupported=allow_unsupported, **given)
    if not result.ok:
        raise BudgetExceeded(result)
    return result
