"""A budgets file (TOML) naming models and their limits, and claims files, checked by ``archaudit check``.

::

    [[model]]
    target = "amnl"                     # a reference name, package.module:callable or path/file.py:callable
    input = "1x30x17"                   # or a list of shapes, "NAME=SHAPE" or {input_ids = "1x128:int64"}
    params = 12_400_000                 # a maximum ...
    macs = [360_000_000, 370_000_000]   # ... or a [min, max] range
    memory_mb = 60                      # inference peak, MB = 10^6 bytes (compared in bytes)
    train_memory_mb = 250               # a training step's peak (an upper-bound estimate), MB = 10^6 bytes
    optimizer = "adamw"                 # of train_memory_mb: sgd, momentum, adam (the default) or adamw
    precision = "bf16-mixed"            # of both memory limits: fp32 (the default), bf16-mixed or fp16-mixed
    baseline = "baselines/amnl.json"    # relative to this file: a committed `archaudit flops --format json`
    max_growth_pct = 5                  # ... which no total (parameters, trainable, MACs) may outgrow by > 5%
    allow_unsupported = false

    [[claims]]
    file = "reference_models/claims/amnl_001.toml"   # relative to this file
    expect = "all hold"                              # or pinned verdict counts: { holds = 22, mismatch = 14 }

Any other key or table is refused, with its line and the nearest known key; so is a value of the wrong type
(each key's type is declared once, in :data:`MODEL_TYPES`: ``allow_unsupported = "false"`` is no boolean,
``input = [0, 17]`` no shape), an entry with no limit, and an ``expect`` table that checks nothing (empty),
names no verdict, or holds anything but counts. The file is read only when it is a regular file of at most
:data:`~archaudit.tomlfile.MAX_FILE_BYTES`.

An option without what it applies to is refused at its line (``optimizer`` without ``train_memory_mb``,
``precision`` without a memory limit, ``max_growth_pct`` without ``baseline`` and the other way round), and so is a
baseline that cannot be read; both before any model is built. A baseline counts as a limit. It is compared with
the model's audit total by total (:func:`archaudit.diff.diff`): a total the baseline does not hold (parameters, in a
``flops --format json`` output) is shown as not in the baseline and not compared; a baseline that shares no total
with the audit, or whose inputs differ from the entry's ``input`` (MACs would not be like for like), is refused
(exit 2), never passed. Without ``input``, MACs are counted on the baseline's inputs.

Exit codes: 0 everything within budget, 1 anything over (or a claims file off its expectation), 2 a bad file
or target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..claims.records import Verdict
from ..errors import ArchauditError, FormulaMismatchError, TargetError
from ..optim import OPTIMIZERS, PRECISIONS
from ..tomlfile import STRING, FieldType, KeyLines, KeyPath, read_toml, shown, toml_key, unknown_keys
from .check import (
    GROWTH,
    INPUT,
    KINDS,
    LIMIT,
    MEMORY_KINDS,
    BudgetResult,
    check_budget,
    growth_problem,
    input_problem,
    limit_problem,
    pairing_problem,
)

if TYPE_CHECKING:
    from ..diff import Snapshot


@dataclass(frozen=True)
class _Checked(FieldType):
    """A type whose refusal says what is wrong in its own words (a range with min > max), from the check the
    budget API makes of the same value."""

    explain: Callable[[Any], str | None] = lambda value: None  # every instance passes its own

    def problem(self, value: Any) -> str | None:
        return self.explain(value)


TOP_KEYS = ("model", "claims")
MODEL_TYPES: dict[str, FieldType] = {
    "target": STRING,
    "name": STRING,
    "input": _Checked(INPUT, lambda v: input_problem(v) is None, input_problem),
    **{kind: _Checked(LIMIT, lambda v: limit_problem(v) is None, limit_problem) for kind in KINDS},
    "optimizer": FieldType(f"one of {', '.join(OPTIMIZERS)}", lambda v: isinstance(v, str) and v in OPTIMIZERS),
    "precision": FieldType(f"one of {', '.join(PRECISIONS)}", lambda v: isinstance(v, str) and v in PRECISIONS),
    "baseline": STRING,
    "max_growth_pct": _Checked(GROWTH, lambda v: growth_problem(v) is None, growth_problem),
    "allow_unsupported": FieldType("a boolean (true or false)", lambda v: isinstance(v, bool)),
}
"""The type of every ``[[model]]`` key, declared once; checked, never coerced."""
MODEL_KEYS = tuple(MODEL_TYPES)
CLAIMS_KEYS = ("file", "expect")
ALL_HOLD = "all hold"
VERDICTS = tuple(verdict.value for verdict in Verdict)
"""The names an ``expect`` table may count."""


class BudgetsFileError(ArchauditError, ValueError):
    """A budgets file is malformed; the message names the file, the line and the entry."""


@dataclass(frozen=True)
class ClaimsGate:
    file: str
    expect: str | dict[str, int]
    counts: dict[str, int]
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        if isinstance(self.expect, str):  # the parser admits only ALL_HOLD; any other string never passes
            return self.expect == ALL_HOLD and not self.failed
        # an empty table checks nothing, so it never passes (the parser refuses it too)
        return bool(self.expect) and all(self.counts.get(verdict, 0) == n for verdict, n in self.expect.items())


@dataclass(frozen=True)
class BudgetsReport:
    models: tuple[BudgetResult, ...]
    claims: tuple[ClaimsGate, ...]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models) and all(c.ok for c in self.claims)


class _File:
    """A budgets file being read: its path and the line of every key, for messages ``PATH:LINE: ...``."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = KeyLines(text)

    def error(self, at: KeyPath, message: str) -> BudgetsFileError:
        line = self.lines.line(*at)
        return BudgetsFileError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")

    def refuse_unknown(
        self, at: KeyPath, table: dict[str, Any], known: tuple[str, ...], label: str, noun: str = "key"
    ) -> None:
        found = unknown_keys(self.lines, at, table, known, noun)
        if found is not None:
            line, message = found
            raise BudgetsFileError(
                f"{self.path}:{line}: {label}: {message}" if label else f"{self.path}:{line}: {message}"
            )

    def entries(self, data: dict[str, Any], table: str) -> list[dict[str, Any]]:
        entries = data.get(table, [])
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise self.error((table,), f"{table} must be an array of tables: write each entry under [[{table}]]")
        return entries


@dataclass(frozen=True)
class _ModelEntry:
    index: int
    """1-based, as the messages count entries."""
    entry: dict[str, Any]

    @property
    def at(self) -> KeyPath:
        return ("model", self.index - 1)

    @property
    def number(self) -> str:
        return f"[[model]] #{self.index}"

    @property
    def label(self) -> str:
        return f"{self.number} ({self.entry['target']})"

    @property
    def limits(self) -> dict[str, Any]:
        return {k: self.entry[k] for k in KINDS if k in self.entry}

    @property
    def checks_something(self) -> bool:
        """A limit, or a baseline (which the parser pairs with its max_growth_pct)."""
        return bool(self.limits) or "baseline" in self.entry


@dataclass(frozen=True)
class _ClaimsEntry:
    file: str
    expect: str | dict[str, int]
    at: KeyPath
    label: str


def _model_entry(source: _File, index: int, entry: dict[str, Any]) -> _ModelEntry:
    spec = _ModelEntry(index, entry)
    if not isinstance(entry.get("target"), str):
        source.refuse_unknown(spec.at, entry, MODEL_KEYS, spec.number)
        raise source.error(spec.at, f'{spec.number}: needs target = "NAME or module:callable"')
    source.refuse_unknown(spec.at, entry, MODEL_KEYS, spec.label)
    for key, value in entry.items():
        problem = MODEL_TYPES[key].problem(value)
        if problem is not None:
            raise source.error((*spec.at, key), f"{spec.label}: {key} = {shown(value)} {problem}")
    return spec


def _claims_entry(source: _File, index: int, entry: dict[str, Any]) -> _ClaimsEntry:
    at, label = ("claims", index - 1), f"[[claims]] #{index}"
    if not isinstance(entry.get("file"), str):
        source.refuse_unknown(at, entry, CLAIMS_KEYS, label)
        raise source.error(at, f'{label}: needs file = "path/to/claims.toml"')
    label = f"{label} ({entry['file']})"
    source.refuse_unknown(at, entry, CLAIMS_KEYS, label)
    return _ClaimsEntry(
        entry["file"], _expect(source, (*at, "expect"), label, entry.get("expect", ALL_HOLD)), at, label
    )


def _expect(source: _File, at: KeyPath, label: str, expect: Any) -> str | dict[str, int]:
    """``"all hold"``, or a table of verdict counts that names at least one verdict, each a count."""
    if expect == ALL_HOLD:
        return ALL_HOLD
    if not isinstance(expect, dict):
        raise source.error(at, f'{label}: expect is "all hold" or a table of verdict counts, got {expect!r}')
    if not expect:
        raise source.error(
            at,
            f"{label}: expect = {{}} checks nothing: pin verdict counts, e.g. "
            f'{{ holds = 3, mismatch = 0 }}, or write expect = "all hold"',
        )
    source.refuse_unknown(at, expect, VERDICTS, label, noun="verdict")
    for verdict, count in expect.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise source.error(
                (*at, verdict), f"{label}: expect.{toml_key(verdict)} must be a count (an integer >= 0), got {count!r}"
            )
    return dict(expect)


def _baseline(source: _File, spec: _ModelEntry) -> Snapshot:
    """The entry's baseline, read from its path relative to the budgets file; refused at its line."""
    from ..diff import BaselineError, load_baseline

    given = Path(spec.entry["baseline"])
    try:
        return load_baseline(given if given.is_absolute() else source.path.parent / given)
    except BaselineError as exc:
        raise source.error((*spec.at, "baseline"), f"{spec.label}: baseline = {shown(str(given))}: {exc}") from None


def run_budgets(path: str | Path) -> BudgetsReport:
    """Check every ``[[model]]`` and ``[[claims]]`` entry. The whole file is read and refused on any mistake
    before a model is built or a claims file checked."""
    from ..claims import check_document
    from ..targets import build_target

    path = Path(path)
    text, data = read_toml(path, "budgets file", BudgetsFileError)
    source = _File(path, text)
    source.refuse_unknown((), data, TOP_KEYS, "", noun="table")
    models = [_model_entry(source, n, entry) for n, entry in enumerate(source.entries(data, "model"), 1)]
    claims = [_claims_entry(source, n, entry) for n, entry in enumerate(source.entries(data, "claims"), 1)]
    if not models and not claims:
        raise BudgetsFileError(f"{path}: nothing to check: add [[model]] or [[claims]] entries")
    for spec in models:  # after every key of the file is known: a misspelt limit is named as that
        if not spec.checks_something:
            raise source.error(
                spec.at,
                f"{spec.label}: checks nothing: give at least one limit ({', '.join(KINDS)}) or a baseline with "
                "max_growth_pct",
            )
        paired = pairing_problem(spec.entry)
        if paired is not None:
            raise source.error((*spec.at, paired[0]), f"{spec.label}: {paired[1]}")
    baselines = {spec.index: _baseline(source, spec) for spec in models if "baseline" in spec.entry}
    results = []
    for spec in models:
        target = name = spec.entry["target"]
        if target.split(":")[0].endswith(".py") and not Path(target.split(":")[0]).is_absolute():
            target = str(path.parent / target)
        try:
            built = build_target(target, meta=True)
        except TargetError as exc:
            raise source.error((*spec.at, "target"), f"{spec.number}: {exc}") from None
        inputs = spec.entry.get("input")
        counted = ("macs", "flops", *MEMORY_KINDS)  # a baseline's MACs are counted on its own inputs
        if inputs is None and built.reference is not None and any(kind in spec.limits for kind in counted):
            inputs = list(built.reference.example_input(batch=1, device="cpu"))
        try:
            results.append(
                check_budget(
                    built.model,
                    name=spec.entry.get("name", name),
                    input=inputs,
                    allow_unsupported=spec.entry.get("allow_unsupported", False),
                    optimizer=spec.entry.get("optimizer"),
                    precision=spec.entry.get("precision"),
                    baseline=baselines.get(spec.index),
                    max_growth_pct=spec.entry.get("max_growth_pct"),
                    **spec.limits,
                )
            )
        except FormulaMismatchError:
            raise  # archaudit's own bug, not the file's
        except ArchauditError as exc:  # a bad limit or input, a forward pass that fails on the input
            raise source.error(spec.at, f"{spec.label}: {exc}") from None
    gates = []
    for gate in claims:
        try:
            audit = check_document(path.parent / gate.file)
        except FormulaMismatchError:
            raise
        except ArchauditError as exc:  # the claims file's own message, with its path and line, after this one's
            raise source.error((*gate.at, "file"), f"{gate.label}: {exc}") from None
        gates.append(ClaimsGate(gate.file, gate.expect, audit.counts(), tuple(r.claim.id for r in audit.failed)))
    return BudgetsReport(tuple(results), tuple(gates))
