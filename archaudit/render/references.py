"""``archaudit list``: the reference-model registry as Markdown or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._fmt import cell, table


def _shape(shape: tuple[int, ...] | None) -> str:
    return "—" if shape is None else "x".join(str(d) for d in shape)


def references_json(entries: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": e.name,
            "description": e.description,
            "citation": e.citation,
            "input_shape": list(e.input_shape) if e.input_shape else None,
            "published_architecture": e.published_architecture,
            "provenance": [
                {"hyperparameter": a.hyperparameter, "value": repr(a.value), "fixed_by": a.fixed_by}
                for a in e.provenance
            ],
        }
        for e in entries
    ]


def references_markdown(entries: Iterable[Any]) -> str:
    entries = list(entries)
    rows = [
        (
            cell(e.name),
            _shape(e.input_shape),
            cell(
                e.description
                if e.published_architecture
                else f"{e.description} (no public architecture: nothing is built)"
            ),
            cell(e.citation),
        )
        for e in entries
    ]
    return "# Reference models\n\n" + table(rows, ["name", "input", "what", "source"]) + "\n"
