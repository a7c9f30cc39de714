"""The baselines comparison: every reference model side by side against the documents' claims."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..report_data import BaselineRow
from ._fmt import cell, n, table


def baselines_markdown(rows: Sequence[BaselineRow]) -> str:
    out = [
        "# Baselines: every reference model against the documents' claims",
        "",
        "Audited parameters and MACs (the model's example input, batch 1) beside what the comparison table "
        "of seed document 000 prints for each model.",
        "",
    ]
    body = [
        (
            r.name,
            n(r.audited_params) if r.published else "no public architecture",
            n(r.macs) if r.macs is not None else "—",
            r.inputs or "—",
            cell(r.claimed) if r.claimed else "—",
            f"**{r.verdict}**" if r.verdict else "—",
        )
        for r in rows
    ]
    out += [
        table(
            body,
            ["model", "parameters (audited)", "MACs", "input", "documents claim", "verdict"],
            ["left", "right", "right", "left", "right", "left"],
        ),
        "",
    ]
    out += ["## Evidence", ""]
    out += [table(((r.name, cell(r.evidence)) for r in rows), ["model", "evidence"]), ""]
    out += ["## What each model is", ""]
    out += [table(((r.name, r.description) for r in rows), ["model", "description"]), ""]
    return "\n".join(out).rstrip() + "\n"


def baselines_json(rows: Sequence[BaselineRow]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": r.name,
                "description": r.description,
                "published_architecture": r.published,
                "audited_params": r.audited_params,
                "macs": r.macs,
                "inputs": r.inputs,
                "claimed": r.claimed,
                "verdict": r.verdict,
                "evidence": r.evidence,
            }
            for r in rows
        ]
    }
