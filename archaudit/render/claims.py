"""The ``archaudit claims`` output: verdict tables (mismatches first) and the solver's answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..claims import ClaimsAudit
from ..claims.records import VERDICT_ORDER, ClaimResult
from ..claims.solver import SolverResult
from ._fmt import cell, code_text, table


def _actual(result: ClaimResult) -> str:
    value = result.actual
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    unit = "%" if result.claim.figure is not None and result.claim.figure.unit == "percent" else ""
    return f"{float(value):.4g}{unit}"


def _ordered(audit: ClaimsAudit) -> list[ClaimResult]:
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    return sorted(audit.results, key=lambda r: rank[r.verdict])


_PROJECT = Path(__file__).resolve().parents[2]


def _portable(path: str) -> str:
    """A claims file inside the project as a project-relative path, so reports do not name the checkout."""
    try:
        return Path(path).resolve().relative_to(_PROJECT).as_posix()
    except ValueError:
        return path


def claims_json(audit: ClaimsAudit) -> dict[str, Any]:
    doc = audit.document
    return {
        "document": {
            "id": doc.id,
            "title": doc.title,
            "source": doc.source,
            "model": doc.model,
            "path": _portable(doc.path),
        },
        "checked_against": _model(audit),
        "counts": audit.counts(),
        "claims": [
            {
                "id": r.claim.id,
                "kind": r.claim.kind,
                "where": r.claim.where,
                "claimed": r.claim.printed or None,
                "actual": r.actual,
                "difference": r.difference,
                "verdict": r.verdict.value,
                "evidence": r.evidence,
                "solver": None
                if r.solver is None
                else {
                    "family": r.solver.family,
                    "configurations": r.solver.configurations,
                    "exact": r.solver.exact,
                    "argument": r.solver.argument,
                    "nearest": [
                        {"total": m.total, "config": {k: repr(v) for k, v in m.config.items()}}
                        for m in r.solver.nearest
                    ],
                },
            }
            for r in audit.results
        ],
    }


def _model(audit: ClaimsAudit) -> str:
    """The model checked: a reference name as is; a file TARGET's file project-relative, as claims files are."""
    model = audit.checked_against or audit.document.model
    file_part, colon, attribute = model.rpartition(":")
    return f"{_portable(file_part)}:{attribute}" if colon and file_part.endswith(".py") else model


def _against(audit: ClaimsAudit) -> str:
    model = _model(audit)
    return f"{'the model' if ':' in model else 'the reference model'} {code_text(model)}"


def claims_markdown(audit: ClaimsAudit, *, heading: str = "#") -> str:
    doc = audit.document
    parts = [
        f"{heading} Claims: {cell(doc.title)}",
        "",
        f"Document {code_text(doc.source)}, checked against {_against(audit)} and against its own figures. "
        "Mismatches first.",
        "",
    ]
    counts = [(verdict, str(n)) for verdict, n in audit.counts().items() if n]
    parts += [table(counts, ["verdict", "claims"], ["left", "right"]), ""]
    rows: list[tuple[str, ...]] = [
        (
            cell(r.claim.id),
            cell(r.claim.where),
            cell(r.claim.printed or ""),
            f"**{r.verdict.value}**",
            cell(_actual(r)),
            cell(r.evidence),
        )
        for r in _ordered(audit)
    ]
    parts += [table(rows, ["id", "where", "claimed", "verdict", "actual", "evidence"]), ""]
    solved: dict[tuple[str, str], tuple[str, SolverResult]] = {}
    for r in audit.results:
        if r.solver is not None:
            solved.setdefault((r.solver.family, r.solver.claim), (r.claim.id, r.solver))
    if solved:
        parts += [f"{heading}# Solver: counts the reference model does not reproduce", ""]
        rows = []
        for claim_id, s in solved.values():
            nearest = "; ".join(f"{m.total:,}" for m in s.nearest[:3])
            rows.append(
                (
                    cell(claim_id),
                    cell(s.claim),
                    cell(s.family),
                    f"{s.configurations:,}",
                    f"{s.exact:,}",
                    nearest,
                    cell(s.argument or "reproducible (see the matches)"),
                )
            )
        parts += [
            table(
                rows,
                [
                    "claim",
                    "figure",
                    "family searched",
                    "configurations",
                    "matching",
                    "nearest totals",
                    "why none matches",
                ],
            ),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"
