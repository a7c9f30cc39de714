"""Costs as polynomials in one input dimension (``archaudit flops --vary``), as Markdown and plain dicts."""

from __future__ import annotations

from typing import Any

from ..varied import LABELS, VariedCosts, summary
from ._fmt import cell, table


def varied_json(costs: VariedCosts) -> dict[str, Any]:
    """The ``polynomial`` block, under its key."""
    return {"polynomial": costs.as_json()}


def varied_markdown(costs: VariedCosts) -> str:
    var = costs.variable
    parts = [
        f"# Cost in {cell(var)}: {cell(costs.target)}",
        "",
        f"Input: {cell(costs.inputs)}. Each quantity is an exact polynomial in {cell(var)}, interpolated at some sizes "
        "and verified at others it was not fitted on; the dominant term, and the size from which each term passes "
        "the next, follow it.",
        "",
    ]
    rows = [(label, cell(line)) for label, line in summary(costs)]
    parts += [table(rows, ["quantity", f"as a polynomial in {cell(var)}"], ["left", "left"]), ""]
    if costs.refused:
        parts += ["Not polynomials (at most degree 4) in this dimension:", ""]
        parts += [f"- {LABELS[key]}: {cell(why)}" for key, why in costs.refused]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"
