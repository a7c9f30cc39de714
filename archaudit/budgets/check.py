"""Budgets: hold a model to limits on parameters, MACs, FLOPs, size and memory, and to its own committed baseline,
in a test or in CI.

``assert_budget(model, params=..., macs=..., input=...)`` raises :class:`BudgetExceeded` (an
``AssertionError``, so pytest shows it as a failure) whose message is a table of every limit, the measured
value and the margin. Unsupported layers count against a budget unless ``allow_unsupported=True``: a budget
that cannot see part of the model is not met. Only a real unknown is unsupported: a module counted by the
parameters it holds itself (``direct``) or op by op from its trace (``ops``) never fails a budget.

``memory_mb`` and ``train_memory_mb`` hold :func:`archaudit.memory.audit_memory`'s inference peak and training-step
peak to limits in MB (10^6 bytes), compared in bytes, exactly: a peak one byte over the limit is over it, however
the MB figure rounds. ``baseline`` (a :class:`~archaudit.diff.Snapshot`, or the path of an ``archaudit flops
--format json``, ``params --format json`` or ``Audit.to_json()`` output) with ``max_growth_pct`` fails a model whose
parameters, trainable parameters or MACs total grew by more than that percentage over the baseline's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ArchauditError, InputSpecError
from ..inputs import KEYWORD_NAME, MAX_DIMENSION, InputSpec, parse_input
from ..optim import OPTIMIZERS, PRECISIONS
from ..tomlfile import finite, is_int, shown

if TYPE_CHECKING:
    from ..diff import Delta, ModelDiff, Snapshot
    from ..records import FlopsAudit, ModelAudit
    from ..registry import FormulaRegistry

Limit = float | int | tuple[float, float] | Sequence[float]
MEMORY_KINDS = ("memory_mb", "train_memory_mb")
"""The memory limits, in MB (10^6 bytes): the inference peak and the training step's peak of
:class:`archaudit.memory.MemoryAudit`; measured only when one of them is given (it costs two passes)."""
KINDS = ("params", "trainable", "macs", "flops", "size_mb", *MEMORY_KINDS)
UNITS = {
    "params": "parameters",
    "trainable": "parameters",
    "macs": "MACs",
    "flops": "FLOPs",
    "size_mb": "MB",
    "memory_mb": "MB",
    "train_memory_mb": "MB",
}
BYTES_PER_MB = 10**6
# OPTIMIZERS: the optimizer= of train_memory_mb (adam by default); PRECISIONS: the precision= of the memory limits
# (fp32 by default); both archaudit.optim's
DEFAULT_OPTIMIZER, DEFAULT_PRECISION = "adam", "fp32"
OPTIONS = ("optimizer", "precision", "baseline", "max_growth_pct")
"""The keywords of a budget that qualify its limits, beside ``input``: each needs its partner
(:func:`pairing_problem`)."""


class BudgetError(ArchauditError, ValueError):
    """A budget is malformed (a negative limit, min > max, MACs without an input ...)."""


def mb_in_bytes(mb: float) -> Fraction:
    """A limit in MB as bytes, exactly: the decimal the user wrote (``0.003`` is 3,000 bytes, not the float's
    3,000.0000000000000624...) times 10^6."""
    return (Fraction(repr(mb)) if isinstance(mb, float) else Fraction(mb)) * BYTES_PER_MB


@dataclass(frozen=True)
class Check:
    kind: str
    low: float | None
    high: float
    measured: float
    """In the limit's unit (MB for the size and memory limits)."""
    measured_bytes: int | None = None
    """For the memory limits: the bytes measured, which :attr:`ok` compares with the limits in bytes, exactly."""
    setting: str = ""
    """What the figure was measured under (``"adam, fp32"`` for ``train_memory_mb``), for the table."""

    @property
    def ok(self) -> bool:
        if self.measured_bytes is not None:
            low = None if self.low is None else mb_in_bytes(self.low)
            return (low is None or self.measured_bytes >= low) and self.measured_bytes <= mb_in_bytes(self.high)
        return (self.low is None or self.measured >= self.low) and self.measured <= self.high

    @property
    def over(self) -> bool:
        """Above the maximum (else, when not :attr:`ok`, under the minimum)."""
        if self.measured_bytes is not None:
            return self.measured_bytes > mb_in_bytes(self.high)
        return self.measured > self.high

    @property
    def margin(self) -> float:
        """Room left under the maximum (negative: over it), or below the minimum when under it."""
        if self.measured_bytes is not None:
            if self.low is not None and self.measured_bytes < mb_in_bytes(self.low):
                return float((self.measured_bytes - mb_in_bytes(self.low)) / BYTES_PER_MB)
            return float((mb_in_bytes(self.high) - self.measured_bytes) / BYTES_PER_MB)
        if self.low is not None and self.measured < self.low:
            return self.measured - self.low
        return self.high - self.measured


@dataclass(frozen=True)
class BaselineGate:
    """A model against its committed baseline: every total both sides hold may grow by at most
    ``max_growth_pct`` percent (:meth:`archaudit.diff.ModelDiff.grown_over`: exactly that much passes)."""

    source: str
    """The baseline file as given (or the snapshot's source)."""
    max_growth_pct: float
    diff: ModelDiff
    """Baseline (before) to the model as audited now (after)."""

    @property
    def rows(self) -> tuple[Delta, ...]:
        """The totals either side holds (parameters, trainable, and MACs when counted), in the diff's order; one
        that a side lacks (parameters, in a ``flops --format json`` baseline) is not compared."""
        return tuple(d for d in self.diff.totals if d.before is not None or d.after is not None)

    @property
    def compared(self) -> tuple[Delta, ...]:
        return tuple(d for d in self.diff.totals if d.known)

    @property
    def grown(self) -> tuple[str, ...]:
        """The totals that grew by more than ``max_growth_pct`` percent."""
        return tuple(d.name for d in self.diff.grown_over(self.max_growth_pct))

    @property
    def ok(self) -> bool:
        # a gate that compared nothing checked nothing: it never passes (check_budget refuses it before this)
        return bool(self.compared) and not self.grown


@dataclass(frozen=True)
class BudgetResult:
    name: str
    inputs: tuple[str, ...]
    checks: tuple[Check, ...]
    unsupported: tuple[str, ...]
    allow_unsupported: bool
    baseline: BaselineGate | None = None

    @property
    def ok(self) -> bool:
        return (
            all(c.ok for c in self.checks)
            and (self.baseline is None or self.baseline.ok)
            and (self.allow_unsupported or not self.unsupported)
        )


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


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise BudgetError(f"{key} = {shown(value)} must be one of {', '.join(choices)}")
    return value


GROWTH = "a finite percentage >= 0 (5 for 5%; 0: no growth at all)"


def growth_problem(value: Any) -> str | None:
    """What is wrong with a ``max_growth_pct`` (``"must be ..."``), or None: the budgets file's check of it."""
    number = finite(value)
    return None if number is not None and number >= 0 else f"must be {GROWTH}"


def pairing_problem(given: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first option in ``given`` (the keywords or keys of one budget, limits included) that lacks what it
    applies to, and why: ``optimizer`` without ``train_memory_mb``, ``precision`` without a memory limit,
    ``max_growth_pct`` without ``baseline`` and the other way round. None when every option has its partner."""
    if "optimizer" in given and "train_memory_mb" not in given:
        return (
            "optimizer",
            f"optimizer = {shown(given['optimizer'])} applies to train_memory_mb only, and none is given",
        )
    if "precision" in given and not any(kind in given for kind in MEMORY_KINDS):
        return "precision", (
            f"precision = {shown(given['precision'])} applies to memory_mb and train_memory_mb only, and neither "
            "is given"
        )
    if "max_growth_pct" in given and "baseline" not in given:
        return "max_growth_pct", (
            f"max_growth_pct = {shown(given['max_growth_pct'])} needs baseline (the JSON of the figures to grow from)"
        )
    if "baseline" in given and "max_growth_pct" not in given:
        return "baseline", "baseline needs max_growth_pct (the most a total may grow, in percent; 0: not at all)"
    return None


def _snapshot(baseline: Any) -> Snapshot:
    from ..diff import BaselineError, Snapshot, load_baseline

    if isinstance(baseline, Snapshot):
        return baseline
    if isinstance(baseline, (str, Path)):
        try:
            return load_baseline(baseline)
        except BaselineError as exc:
            raise BudgetError(f"baseline: {exc}") from None
    raise BudgetError(
        f"baseline = {shown(baseline)} must be the path of an `archaudit flops --format json` output (or of "
        "`params --format json`, Audit.to_json()) or an archaudit.diff.Snapshot"
    )


def _gate(
    base: Snapshot, params: ModelAudit, flops: FlopsAudit | None, max_growth_pct: float, input_given: bool
) -> BaselineGate:
    """The model as audited now against ``base``; refused when the inputs differ or nothing can be compared."""
    from ..diff import diff, snapshot

    found = diff(base, snapshot(params, flops))
    gate = BaselineGate(base.source, max_growth_pct, found)
    if found.inputs_differ:
        raise BudgetError(
            f"input {', '.join(found.after.inputs or ())} differs from the baseline's "
            f"{', '.join(base.inputs or ())} ({base.source}): MACs would not be like for like; give the "
            "baseline's input, or regenerate the baseline on this one"
        )
    if not gate.compared:
        held = [name for name, total in base.totals.items() if total is not None] or ["no total"]
        now = [name for name, total in found.after.totals.items() if total is not None]
        hint = "" if input_given else " (give input= to count MACs)"
        raise BudgetError(
            f"baseline {base.source} holds {', '.join(held)} and the model was audited for {', '.join(now)}: no "
            f"total to compare, so the baseline checks nothing{hint}"
        )
    return gate


def check_budget(
    model: nn.Module,
    *,
    name: str | None = None,
    input: Any = None,
    allow_unsupported: bool = False,
    registry: FormulaRegistry | None = None,
    optimizer: str | None = None,
    precision: str | None = None,
    baseline: str | Path | Snapshot | None = None,
    max_growth_pct: float | None = None,
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
    if not limits and baseline is None:
        raise BudgetError(
            f"no limit given: pass {', '.join(f'{kind}=' for kind in KINDS)} or baseline= with max_growth_pct="
        )
    bounds = {kind: _bounds(kind, limit) for kind, limit in limits.items()}
    memory = [kind for kind in MEMORY_KINDS if kind in limits]
    options = {"optimizer": optimizer, "precision": precision, "baseline": baseline, "max_growth_pct": max_growth_pct}
    for key, choices in (("optimizer", OPTIMIZERS), ("precision", PRECISIONS)):
        if options[key] is not None:
            _choice(key, options[key], choices)
    if max_growth_pct is not None and growth_problem(max_growth_pct) is not None:
        raise BudgetError(f"max_growth_pct = {shown(max_growth_pct)} {growth_problem(max_growth_pct)}")
    paired = pairing_problem({**limits, **{k: v for k, v in options.items() if v is not None}})
    if paired is not None:
        raise BudgetError(paired[1])
    base = None if baseline is None else _snapshot(baseline)
    input_given = input is not None
    if input is None and base is not None and base.inputs:  # the baseline's own inputs: MACs like for like
        input = list(base.inputs)
    inputs, named = _inputs(input)  # refused before any work
    if memory and not inputs and not named:
        raise BudgetError(f"{'/'.join(memory)} limits need input= (a shape such as '1x30x17')")
    audit = audit_params(model, registry=registry)
    measured: dict[str, float] = {
        "params": audit.total,
        "trainable": audit.trainable,
        "size_mb": audit.param_bytes / 1e6,
    }
    unsupported = [r.name or "(root)" for r in audit.unsupported]
    labels: tuple[str, ...] = ()
    flops = None
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
    gate = None
    if base is not None and max_growth_pct is not None:
        gate = _gate(base, audit, flops, max_growth_pct, input_given)
    peaks: dict[str, int] = {}
    if memory:  # the costly passes last: after every refusal
        from ..memory import audit_memory

        spent = audit_memory(
            model,
            inputs,
            keyword_inputs=named,
            optimizer=optimizer or DEFAULT_OPTIMIZER,
            precision=precision or DEFAULT_PRECISION,
            registry=registry,
        )
        peaks = {"memory_mb": spent.inference_peak, "train_memory_mb": spent.training_peak}
        measured |= {kind: peak / BYTES_PER_MB for kind, peak in peaks.items()}
    settings = {
        "memory_mb": precision or DEFAULT_PRECISION,
        "train_memory_mb": f"{optimizer or DEFAULT_OPTIMIZER}, {precision or DEFAULT_PRECISION}",
    }
    checks = tuple(
        Check(kind, low, high, measured[kind], peaks.get(kind), settings.get(kind, ""))
        for kind, (low, high) in bounds.items()
    )
    return BudgetResult(name or type(model).__name__, labels, checks, tuple(unsupported), allow_unsupported, gate)


def assert_budget(
    model: nn.Module,
    *,
    params: Limit | None = None,
    trainable: Limit | None = None,
    macs: Limit | None = None,
    flops: Limit | None = None,
    size_mb: Limit | None = None,
    memory_mb: Limit | None = None,
    train_memory_mb: Limit | None = None,
    input: Any = None,
    optimizer: str | None = None,
    precision: str | None = None,
    baseline: str | Path | Snapshot | None = None,
    max_growth_pct: float | None = None,
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

    ``memory_mb`` (inference peak) and ``train_memory_mb`` (a training step's peak, an upper-bound estimate) are
    :func:`archaudit.memory.audit_memory`'s figures in MB of 10^6 bytes, compared in bytes, exactly; they need
    ``input`` and are measured only when given. ``optimizer`` (``sgd``, ``momentum``, ``adam`` by default,
    ``adamw``) applies to ``train_memory_mb``; ``precision`` (``fp32`` by default, ``bf16-mixed``, ``fp16-mixed``)
    to both; either given without its limit is refused.

    ``baseline`` (the path of an ``archaudit flops --format json`` output, or ``params --format json``,
    ``Audit.to_json()``, or a :class:`~archaudit.diff.Snapshot`) with ``max_growth_pct`` (a percentage >= 0, read
    exactly; one needs the other) fails the model when a total both hold (parameters, trainable, MACs) grew by
    more than that percentage; exactly that much passes. Without ``input``, MACs are counted on the baseline's
    inputs; a different ``input`` is refused (MACs would not be like for like), and so is a baseline that shares
    no total with the model's audit (it would check nothing).
    """
    __tracebackhide__ = True  # pytest shows the table, not this frame
    given = {
        k: v
        for k, v in {
            "params": params,
            "trainable": trainable,
            "macs": macs,
            "flops": flops,
            "size_mb": size_mb,
            "memory_mb": memory_mb,
            "train_memory_mb": train_memory_mb,
        }.items()
        if v is not None
    }
    result = check_budget(
        model,
        name=name,
        input=input,
        allow_unsupported=allow_unsupported,
        registry=registry,
        optimizer=optimizer,
        precision=precision,
        baseline=baseline,
        max_growth_pct=max_growth_pct,
        **given,
    )
    if not result.ok:
        raise BudgetExceeded(result)
    return result
