"""Two audits of a model, or a model and its committed baseline, module by module.

A side is a :class:`Snapshot`: per module path its type and figures (parameters, trainable parameters, MACs and,
when the caller measured it, memory in bytes), the inputs its MACs were counted on, and where it came from. It is
taken from an audit (:func:`snapshot`) or read from a committed JSON output (:func:`load_baseline`). A figure a
side does not hold is ``None``, never 0: ``archaudit flops --format json`` holds MACs per module but no
parameters, so a baseline read from it has ``params=None`` everywhere, and a diff against it says that parameters
are not compared (:attr:`ModelDiff.incomparable`) rather than reporting a growth from nothing.

:func:`diff` matches modules by path: a path on one side only is ``added`` or ``removed``; a path on both whose
type or any figure known on both sides differs is ``changed`` (a type change says so); the rest are counted as
unchanged and not listed. Totals are sums of the module figures, each with its absolute and percentage change
(the percentage is None when the total before is 0). :meth:`ModelDiff.grown_over` lists the totals that grew by
more than a percentage, for ``--fail-over``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ArchauditError
from .records import FlopsAudit, ModelAudit
from .tomlfile import read_bounded_bytes

FIGURES = ("params", "trainable", "macs", "memory")
"""The figures of a module and of a model, in the order every output lists them."""

FIGURE_LABELS = {"params": "parameters", "trainable": "trainable", "macs": "MACs", "memory": "memory (bytes)"}

MAX_BASELINE_BYTES = 16 << 20
"""The largest baseline file read: 16 MiB (16,777,216 bytes; ``archaudit flops --format json`` writes about
470 bytes per module path, so some 35,000 paths). Anything larger, or anything but a regular file, is refused
before it is read."""


class DiffError(ArchauditError, ValueError):
    """A diff could not be made: a memory figure for a path the model lacks, a bad ``--fail-over`` percentage."""


class BaselineError(DiffError):
    """A baseline file could not be read: the message names the file and the key at fault, on one line."""


@dataclass(frozen=True)
class ModuleFigures:
    """One module path of one side; a figure the side does not hold is None."""

    path: str
    """Qualified path (``""`` for the root module)."""
    type: str
    params: int | None
    """Parameters counted at this path (each tensor once, at the first path that holds it)."""
    trainable: int | None
    macs: int | None
    """The module's own MACs, summed over its calls."""
    memory: int | None = None
    """Bytes, as the caller measured them (archaudit measures no memory itself)."""

    def figure(self, name: str) -> int | None:
        if name not in FIGURES:
            raise KeyError(f"no figure {name!r}; the figures are {', '.join(FIGURES)}")
        value: int | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class Snapshot:
    """One side of a diff: per-module figures, in model order, and what they were measured on."""

    model: str
    source: str
    """``"audit"`` for a snapshot of an audit, else the baseline file it was read from."""
    inputs: tuple[str, ...] | None
    """The input shapes the MACs were counted on (``("1x30x17",)``); None when no MACs were counted."""
    modules: tuple[ModuleFigures, ...]

    def total(self, name: str) -> int | None:
        """The sum of a figure over every module path; None when some path lacks it (a partial sum is no total)."""
        values = [m.figure(name) for m in self.modules]
        known = [v for v in values if v is not None]
        return sum(known) if len(known) == len(values) else None

    @property
    def totals(self) -> dict[str, int | None]:
        return {name: self.total(name) for name in FIGURES}

    def module(self, path: str) -> ModuleFigures:
        for m in self.modules:
            if m.path == path:
                return m
        raise KeyError(f"no module path {path!r} in this snapshot of {self.model}")


def snapshot(
    params: ModelAudit,
    flops: FlopsAudit | None,
    memory: Mapping[str, int] | None = None,
    *,
    source: str = "audit",
) -> Snapshot:
    """A side from an audit: parameters from ``params``, MACs from ``flops`` (None without it) and bytes per module
    path from ``memory`` (a path it does not name has memory None; a path the model lacks is refused)."""
    by_name = {r.name: r for r in flops.records} if flops is not None else {}
    memory = dict(memory or {})
    paths = {r.name for r in params.records}
    for key, value in memory.items():
        if key not in paths:
            raise DiffError(f"memory for module path {key!r}: {params.model_type} has no such path")
        if not _count(value):
            raise DiffError(f"memory for module path {key!r}: expected a non-negative integer of bytes, got {value!r}")
    modules = []
    for r in params.records:
        fr = by_name.get(r.name)
        # with MACs counted, a path the trace has no record of did no work of its own (0); without, MACs are unknown
        macs = None if flops is None else (fr.macs if fr is not None else 0)
        modules.append(ModuleFigures(r.name, r.type, r.params, r.trainable, macs, memory.get(r.name)))
    return Snapshot(
        model=params.model_type,
        source=source,
        inputs=tuple(flops.inputs) if flops is not None else None,
        modules=tuple(modules),
    )


class Change(str, enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class Delta:
    """One figure before and after; ``change`` and ``percent`` are None when a side lacks the figure."""

    name: str
    before: int | None
    after: int | None

    @property
    def known(self) -> bool:
        return self.before is not None and self.after is not None

    @property
    def change(self) -> int | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    @property
    def percent(self) -> float | None:
        """The change as a percentage of ``before``; None when ``before`` is 0 or a side lacks the figure."""
        if self.before is None or self.after is None or self.before == 0:
            return None
        return (self.after - self.before) * 100 / self.before

    def grown_over(self, pct: Fraction) -> bool:
        """True when the figure grew by strictly more than ``pct`` percent of ``before`` (exact arithmetic: a
        growth of exactly ``pct`` is not over it). A growth from 0 is over every percentage."""
        if self.before is None or self.after is None or self.after <= self.before:
            return False
        return (self.after - self.before) * 100 > pct * self.before


@dataclass(frozen=True)
class ModuleDiff:
    """One module path that was added, removed or changed."""

    path: str
    change: Change
    type_before: str | None
    """None for an added path."""
    type_after: str | None
    """None for a removed path."""
    params: Delta
    trainable: Delta
    macs: Delta
    memory: Delta

    @property
    def type_changed(self) -> bool:
        return self.change is Change.CHANGED and self.type_before != self.type_after

    @property
    def type(self) -> str:
        """The type after (before, for a removed path); ``"Linear -> Conv1d"`` when it changed."""
        if self.type_changed:
            return f"{self.type_before} -> {self.type_after}"
        return self.type_after or self.type_before or ""

    @property
    def deltas(self) -> tuple[Delta, ...]:
        return (self.params, self.trainable, self.macs, self.memory)


def _module_diff(path: str, change: Change, before: ModuleFigures | None, after: ModuleFigures | None) -> ModuleDiff:
    def delta(name: str) -> Delta:
        return Delta(
            name,
            before.figure(name) if before is not None else None,
            after.figure(name) if after is not None else None,
        )

    return ModuleDiff(
        path=path,
        change=change,
        type_before=before.type if before is not None else None,
        type_after=after.type if after is not None else None,
        params=delta("params"),
        trainable=delta("trainable"),
        macs=delta("macs"),
        memory=delta("memory"),
    )


def _differs(before: ModuleFigures, after: ModuleFigures) -> bool:
    if before.type != after.type:
        return True
    return any(
        b is not None and a is not None and a != b
        for b, a in ((before.figure(name), after.figure(name)) for name in FIGURES)
    )


@dataclass(frozen=True)
class ModelDiff:
    """Two snapshots and what changed between them; totals are functions of the snapshots' module figures."""

    before: Snapshot
    after: Snapshot
    modules: tuple[ModuleDiff, ...]
    """Added paths (in the order of ``after``), removed paths (in the order of ``before``), changed paths (in the
    order of ``after``)."""

    @property
    def added(self) -> tuple[ModuleDiff, ...]:
        return tuple(m for m in self.modules if m.change is Change.ADDED)

    @property
    def removed(self) -> tuple[ModuleDiff, ...]:
        return tuple(m for m in self.modules if m.change is Change.REMOVED)

    @property
    def changed(self) -> tuple[ModuleDiff, ...]:
        return tuple(m for m in self.modules if m.change is Change.CHANGED)

    @property
    def unchanged(self) -> int:
        """Module paths on both sides with the same type and the same figures (where both sides hold them)."""
        after = {m.path for m in self.after.modules}
        both = sum(1 for m in self.before.modules if m.path in after)
        return both - len(self.changed)

    @property
    def totals(self) -> tuple[Delta, ...]:
        return tuple(self.total(name) for name in FIGURES)

    def total(self, name: str) -> Delta:
        return Delta(name, self.before.total(name), self.after.total(name))

    @property
    def incomparable(self) -> tuple[str, ...]:
        """Figures held by one side only (a baseline without parameters; memory measured on one side): neither
        their totals nor their module figures are compared."""
        return tuple(name for name in FIGURES if (self.before.total(name) is None) != (self.after.total(name) is None))

    @property
    def inputs_differ(self) -> bool:
        """The two sides' MACs were counted on different inputs: their MACs are then not like for like."""
        return (
            self.before.inputs is not None and self.after.inputs is not None and self.before.inputs != self.after.inputs
        )

    @property
    def notes(self) -> tuple[str, ...]:
        """What a reader must know before trusting the figures, one sentence each."""
        notes = []
        if self.inputs_differ:
            notes.append(
                f"the inputs differ ({', '.join(self.before.inputs or ())} before, "
                f"{', '.join(self.after.inputs or ())} after): MACs are not like for like"
            )
        for name in self.incomparable:
            side = "before" if self.before.total(name) is None else "after"
            source = self.before.source if side == "before" else self.after.source
            notes.append(f"{FIGURE_LABELS[name]} not compared: the {side} side ({source}) does not hold them")
        return tuple(notes)

    def grown_over(self, pct: float | int | str | Decimal | Fraction) -> list[Delta]:
        """The totals that grew by strictly more than ``pct`` percent (``--fail-over``): exactly ``pct`` passes,
        anything above fails; a total that grew from 0 fails at every percentage. Totals a side lacks are not
        compared (see :attr:`incomparable`). The percentage is read exactly (``0.3`` is 3/10, not the float)."""
        limit = _percentage(pct)
        return [d for d in self.totals if d.grown_over(limit)]

    def as_json(self) -> dict[str, Any]:
        """Plain data, keys and lists in a fixed order (figures in :data:`FIGURES` order, modules as listed)."""

        def side(s: Snapshot) -> dict[str, Any]:
            return {
                "model": s.model,
                "source": s.source,
                "inputs": list(s.inputs) if s.inputs is not None else None,
                "modules": len(s.modules),
            }

        def delta(d: Delta, *, percent: bool) -> dict[str, Any]:
            data: dict[str, Any] = {"before": d.before, "after": d.after, "change": d.change}
            if percent:
                data["percent"] = d.percent
            return data

        def module(m: ModuleDiff) -> dict[str, Any]:
            return {
                "path": m.path,
                "change": m.change.value,
                "type_before": m.type_before,
                "type_after": m.type_after,
                "type_changed": m.type_changed,
                **{d.name: delta(d, percent=False) for d in m.deltas},
            }

        return {
            "before": side(self.before),
            "after": side(self.after),
            "inputs_differ": self.inputs_differ,
            "incomparable": list(self.incomparable),
            "notes": list(self.notes),
            "totals": {d.name: delta(d, percent=True) for d in self.totals},
            "counts": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed": len(self.changed),
                "unchanged": self.unchanged,
            },
            "added": [module(m) for m in self.added],
            "removed": [module(m) for m in self.removed],
            "changed": [module(m) for m in self.changed],
        }


def diff(a: Snapshot, b: Snapshot) -> ModelDiff:
    """What changed from ``a`` (before) to ``b`` (after), module path by module path."""
    _unique(a)
    _unique(b)
    before = {m.path: m for m in a.modules}
    after = {m.path: m for m in b.modules}
    added = [_module_diff(m.path, Change.ADDED, None, m) for m in b.modules if m.path not in before]
    removed = [_module_diff(m.path, Change.REMOVED, m, None) for m in a.modules if m.path not in after]
    changed = [
        _module_diff(m.path, Change.CHANGED, before[m.path], m)
        for m in b.modules
        if m.path in before and _differs(before[m.path], m)
    ]
    return ModelDiff(a, b, (*added, *removed, *changed))


def _unique(s: Snapshot) -> None:
    seen: set[str] = set()
    for m in s.modules:
        if m.path in seen:
            raise DiffError(f"{s.source}: module path {m.path!r} appears twice in {s.model}")
        seen.add(m.path)


def _percentage(pct: float | int | str | Decimal | Fraction) -> Fraction:
    if isinstance(pct, bool):
        raise DiffError(f"--fail-over {pct!r}: expected a percentage such as 5 or 0.5")
    try:
        # a float by its shortest repr, so that 0.3 means 3/10 and not 0.299999...
        value = Fraction(repr(pct)) if isinstance(pct, float) else Fraction(pct)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):  # "5%", nan, inf
        raise DiffError(f"--fail-over {pct!r}: expected a finite percentage such as 5 or 0.5") from None
    if value < 0:
        raise DiffError(f"--fail-over {pct!r}: expected a percentage of 0 or more")
    return value


# --- baselines ----------------------------------------------------------------------------------------------------

_EXPECTED = (
    "a baseline is the JSON that `archaudit flops --format json` writes (or Audit.to_json(), which also holds "
    "parameters)"
)


def load_baseline(path: str | Path, *, max_bytes: int = MAX_BASELINE_BYTES) -> Snapshot:
    """A side read from a committed JSON file: the output of ``archaudit flops --format json`` (MACs per module,
    no parameters: ``params`` and ``trainable`` are None) or of :meth:`archaudit.Audit.to_json` (parameters and,
    when counted, MACs). Every mistake is a :class:`BaselineError` naming the file and the key at fault."""
    path = Path(path)
    data = _read_json(path, max_bytes)
    return _baseline(data, path)


def _read_json(path: Path, max_bytes: int) -> Any:
    bound = f"{_EXPECTED}, a regular file of at most {max_bytes:,} bytes"
    raw = read_bounded_bytes(
        path, max_bytes=max_bytes, error=BaselineError, missing="no such baseline file", bound=bound
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: not UTF-8 text (byte {exc.start:,}); {_EXPECTED}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise BaselineError(f"{path}: not valid JSON here: nested too deeply") from None
    except ValueError as exc:  # an integer past Python's digit limit
        raise BaselineError(f"{path}: not valid JSON here: {str(exc).split(';')[0]}") from None


class _Reader:
    """Typed access to one JSON object, every mistake named by the file and the key path (``modules[3].macs``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> BaselineError:
        return BaselineError(f"{self.path}: {key}: {message}; {_EXPECTED}")

    def obj(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected an object, got {_kind(value)}")
        return value

    def get(self, data: dict[str, Any], key: str, where: str) -> Any:
        if key not in data:
            raise self.fail(_join(where, key), "missing")
        return data[key]

    def count(self, data: dict[str, Any], key: str, where: str) -> int:
        value = self.get(data, key, where)
        if not _count(value):
            raise self.fail(_join(where, key), f"expected a non-negative integer, got {_short(value)}")
        result: int = value
        return result

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = self.get(data, key, where)
        if not isinstance(value, str):
            raise self.fail(_join(where, key), f"expected a string, got {_short(value)}")
        return value

    def items(self, data: dict[str, Any], key: str, where: str) -> list[Any]:
        value = self.get(data, key, where)
        if not isinstance(value, list):
            raise self.fail(_join(where, key), f"expected a list, got {_kind(value)}")
        return value


def _baseline(data: Any, path: Path) -> Snapshot:
    read = _Reader(path)
    top = read.obj(data, "(top level)")
    if "params" in top and "flops" in top:  # Audit.to_json(): both sections, flops null when MACs were not counted
        params = _params_section(read, read.obj(top["params"], "params"), "params")
        flops = None if top["flops"] is None else _flops_section(read, read.obj(top["flops"], "flops"), "flops")
        return _merge(read, read.text(top, "model", ""), params, flops)
    if "macs" in top and "modules" in top:  # archaudit flops --format json
        flops = _flops_section(read, top, "")
        return _merge(read, flops.model, None, flops)
    if "total" in top and "modules" in top:  # archaudit params --format json
        params = _params_section(read, top, "")
        return _merge(read, params.model, params, None)
    missing = "macs" if "modules" in top else "modules"
    raise read.fail(missing, "missing: not an archaudit flops, params or audit JSON output")


@dataclass(frozen=True)
class _Section:
    """One section of a baseline file: its model name, inputs (None in a parameters section), and per module path
    the figures it holds (the others None)."""

    model: str
    inputs: tuple[str, ...] | None
    modules: dict[str, ModuleFigures]


def _modules(read: _Reader, data: dict[str, Any], where: str, figures: Mapping[str, str]) -> dict[str, ModuleFigures]:
    """``modules``: per path, the figures named (figure: the key it is read from)."""
    modules: dict[str, ModuleFigures] = {}
    for i, item in enumerate(read.items(data, "modules", where)):
        at = f"{_join(where, 'modules')}[{i}]"
        module = read.obj(item, at)
        name = read.text(module, "name", at)
        if name in modules:
            raise read.fail(f"{at}.name", f"path {name!r} appears twice")
        values = {figure: read.count(module, key, at) for figure, key in figures.items()}
        modules[name] = ModuleFigures(
            name,
            read.text(module, "type", at),
            **{figure: values.get(figure) for figure in ("params", "trainable", "macs")},
        )
    return modules


def _check_total(read: _Reader, data: dict[str, Any], key: str, where: str, summed: int) -> None:
    total = read.count(data, key, where)
    if total != summed:
        raise read.fail(_join(where, key), f"is {total:,} but the modules' figures sum to {summed:,}")


def _flops_section(read: _Reader, data: dict[str, Any], where: str) -> _Section:
    model = read.text(data, "model", where)
    inputs = read.items(data, "inputs", where)
    for i, shape in enumerate(inputs):
        if not isinstance(shape, str):
            raise read.fail(f"{_join(where, 'inputs')}[{i}]", f"expected a shape string, got {_short(shape)}")
    modules = _modules(read, data, where, {"macs": "macs"})
    _check_total(read, data, "macs", where, sum(m.macs or 0 for m in modules.values()))
    return _Section(model, tuple(inputs), modules)


def _params_section(read: _Reader, data: dict[str, Any], where: str) -> _Section:
    model = read.text(data, "model", where)
    modules = _modules(read, data, where, {"params": "params", "trainable": "trainable"})
    _check_total(read, data, "total", where, sum(m.params or 0 for m in modules.values()))
    _check_total(read, data, "trainable", where, sum(m.trainable or 0 for m in modules.values()))
    return _Section(model, None, modules)


def _merge(read: _Reader, model: str, params: _Section | None, flops: _Section | None) -> Snapshot:
    """One snapshot from a parameters section and/or a MACs section: the paths of either, in the order of the
    parameters section when there is one. With both, a path the MACs section lacks did no work of its own (0), as
    in :func:`snapshot`; a path the parameters section lacks has parameters None."""
    by_params = params.modules if params is not None else {}
    by_flops = flops.modules if flops is not None else {}
    modules = []
    for p in [*by_params, *(p for p in by_flops if p not in by_params)]:
        prow, frow = by_params.get(p), by_flops.get(p)
        if prow is not None and frow is not None and prow.type != frow.type:
            at = f"flops.modules[{list(by_flops).index(p)}].type"
            raise read.fail(at, f"is {frow.type!r} but params.modules says {prow.type!r} for path {p!r}")
        if prow is None:
            modules.append(frow)
        else:
            macs = None if flops is None else (frow.macs if frow is not None else 0)
            modules.append(replace(prow, macs=macs))
    inputs = flops.inputs if flops is not None else None
    return Snapshot(model, str(read.path), inputs, tuple(m for m in modules if m is not None))


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else _kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "FIGURES",
    "MAX_BASELINE_BYTES",
    "BaselineError",
    "Change",
    "Delta",
    "DiffError",
    "ModelDiff",
    "ModuleDiff",
    "ModuleFigures",
    "Snapshot",
    "diff",
    "load_baseline",
    "snapshot",
]
