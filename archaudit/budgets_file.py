"""A budgets file (TOML) naming models and their limits, and claims files, checked by ``archaudit check``.

::

    [[model]]
    target = "amnl"                     # a reference name, package.module:callable or path/file.py:callable
    input = "1x30x17"                   # or a list of shapes; needed for macs/flops
    params = 12_400_000                 # a maximum ...
    macs = [360_000_000, 370_000_000]   # ... or a [min, max] range
    allow_unsupported = false

    [[claims]]
    file = "reference_models/claims/amnl_001.toml"   # relative to this file
    expect = "all hold"                              # or pinned verdict counts: { holds = 22, mismatch = 14 }

Exit codes: 0 everything within budget, 1 anything over (or a claims file off its expectation), 2 a bad file
or target.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .budget import KINDS, BudgetError, BudgetResult, check_budget
from .errors import ArchauditError, TargetError


class BudgetsFileError(ArchauditError, ValueError):
    """A budgets file is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class ClaimsGate:
    file: str
    expect: str | dict[str, int]
    counts: dict[str, int]
    failed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        if self.expect == "all hold":
            return not self.failed
        return all(self.counts.get(verdict, 0) == n for verdict, n in self.expect.items())


@dataclass(frozen=True)
class BudgetsReport:
    models: tuple[BudgetResult, ...]
    claims: tuple[ClaimsGate, ...]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models) and all(c.ok for c in self.claims)

    def text(self) -> str:
        parts = [m.message() for m in self.models]
        for gate in self.claims:
            state = "ok" if gate.ok else "FAILED"
            counts = ", ".join(f"{k} {v}" for k, v in gate.counts.items() if v)
            if gate.expect == "all hold":
                detail = "every claim must hold" + (f"; failing: {', '.join(gate.failed)}" if gate.failed else "")
            else:
                wanted = ", ".join(f"{k} {v}" for k, v in gate.expect.items())
                detail = f"expected {wanted}"
            parts.append(f"claims {gate.file}: {state} ({counts}; {detail})")
        verdict = "all within budget" if self.ok else "OVER BUDGET"
        return "\n\n".join(parts) + f"\n\n{verdict}\n"


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BudgetsFileError(f"{path}: no such budgets file") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetsFileError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetsFileError(f"{path}: cannot read it ({exc})") from None


def run_budgets(path: str | Path) -> BudgetsReport:
    from .claims import check_document
    from .targets import build_target

    path = Path(path)
    data = _load(path)
    unknown = set(data) - {"model", "claims"}
    if unknown:
        raise BudgetsFileError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use [[model]] and [[claims]]")
    if not data.get("model") and not data.get("claims"):
        raise BudgetsFileError(f"{path}: nothing to check: add [[model]] or [[claims]] entries")
    results = []
    for index, entry in enumerate(data.get("model", []), 1):
        where = f"{path}: [[model]] #{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
            raise BudgetsFileError(f"{where}: needs target = \"NAME or module:callable\"")
        extra = set(entry) - set(KINDS) - {"target", "input", "allow_unsupported", "name"}
        if extra:
            raise BudgetsFileError(f"{where} ({entry['target']}): unknown key(s) {', '.join(sorted(extra))}")
        limits = {k: entry[k] for k in KINDS if k in entry}
        target = entry["target"]
        if target.split(":")[0].endswith(".py") and not Path(target.split(":")[0]).is_absolute():
            target = str(path.parent / target)
        try:
            built = build_target(target, meta=True)
        except TargetError as exc:
            raise BudgetsFileError(f"{where}: {exc}") from None
        inputs = entry.get("input")
        if inputs is None and built.reference is not None and ("macs" in limits or "flops" in limits):
            inputs = list(built.reference.example_input(batch=1, device="meta"))
        try:
            results.append(check_budget(built.model, name=entry.get("name", entry["target"]), input=inputs,
                                        allow_unsupported=bool(entry.get("allow_unsupported", False)), **limits))
        except BudgetError as exc:
            raise BudgetsFileError(f"{where} ({entry['target']}): {exc}") from None
    gates = []
    for index, entry in enumerate(data.get("claims", []), 1):
        where = f"{path}: [[claims]] #{index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BudgetsFileError(f"{where}: needs file = \"path/to/claims.toml\"")
        expect = entry.get("expect", "all hold")
        if not (expect == "all hold" or (isinstance(expect, dict) and all(
                isinstance(v, int) for v in expect.values()))):
            raise BudgetsFileError(f"{where}: expect is \"all hold\" or a table of verdict counts, got {expect!r}")
        audit = check_document(path.parent / entry["file"])
        gates.append(ClaimsGate(entry["file"], expect, audit.counts(), tuple(r.claim.id for r in audit.failed)))
    return BudgetsReport(tuple(results), tuple(gates))
