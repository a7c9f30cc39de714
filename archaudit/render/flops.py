"""The ``archaudit flops`` output: Markdown and JSON."""

from __future__ import annotations

from typing import Any

from ..peers import TOOL_LABELS, TOOLS, ToolComparison
from ..records import COLUMNS, FlopsAudit
from ._fmt import n, path, shapes, table

CONVENTION = (
    "MACs (multiply-accumulates of weight and attention products) are the unit; FLOPs = 2 x MACs. "
    "Bias additions, normalised elements, activations and softmax elements are separate columns, "
    "never part of MACs."
)


def unsupported_ops_text(audit: FlopsAudit) -> str:
    """ "none", or each aten op that nothing counted, with how often it ran over the model."""
    return ", ".join(f"{op} ({k})" for op, k in audit.unsupported_ops.items()) or "none"


def built_text(audit: FlopsAudit) -> str:
    """Where the model was built, when not on meta, and where it was traced, when not on meta."""
    built = audit.build_note or (f"built on {audit.built_on}" if audit.built_on != "meta" else "")
    traced = "traced on a zero CPU copy" if audit.traced_on == "cpu" else ""
    return "; ".join(part for part in (built, traced) if part)


def _column_cell(record: Any, column: str) -> str:
    value = getattr(record.counts, column)
    return n(value) if value else ""


def flops_json(audit: FlopsAudit, comparison: ToolComparison | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": audit.model_type,
        "inputs": list(audit.inputs),
        "built_on": audit.built_on,
        "build_note": audit.build_note,
        "traced_on": audit.traced_on,
        "convention": CONVENTION,
        "macs": audit.macs,
        "flops": audit.flops,
        "columns": audit.counts.as_dict(),
        "modules": [
            {
                "name": r.name,
                "type": r.type,
                "calls": r.calls,
                "macs": r.macs,
                **{c: getattr(r.counts, c) for c in COLUMNS if c != "macs"},
                "status": r.status.value,
                "source": r.source,
                "input_shapes": [list(s) for s in r.input_shapes],
                "output_shapes": [list(s) for s in r.output_shapes],
                "note": r.note,
                "unsupported_ops": dict(r.unsupported_ops),
            }
            for r in audit.records
        ],
        "ops": [r.name for r in audit.by_ops],
        "unsupported": [r.name for r in audit.unsupported],
        "unsupported_ops": audit.unsupported_ops,
    }
    if comparison is not None:
        data["tools"] = {tool: comparison.totals[tool] for tool in ("archaudit", *TOOLS)}
        data["tool_errors"] = dict(comparison.errors)
        data["tool_notes"] = dict(comparison.notes)
        data["comparison"] = [
            {
                "name": row.name,
                "type": row.type,
                "archaudit": row.archaudit,
                "tools": dict(row.tools),
                "reasons": dict(row.reasons),
            }
            for row in comparison.rows
        ]
    return data


def comparison_markdown(comparison: ToolComparison) -> str:
    """The cross-tool table (MACs per top-level module) and the reasons table."""
    headers = ["module", "archaudit", *(TOOL_LABELS[t] for t in TOOLS)]
    rows = [[row.name, n(row.archaudit), *(n(row.tools[t]) for t in TOOLS)] for row in comparison.rows]
    rows.append(
        ["**total**", f"**{n(comparison.totals['archaudit'])}**", *(f"**{n(comparison.totals[t])}**" for t in TOOLS)]
    )
    parts = [table(rows, headers, ["left"] + ["right"] * (len(headers) - 1)), ""]
    reasons = [
        (row.name, TOOL_LABELS[t], row.reasons[t])
        for row in comparison.rows
        for t in TOOLS
        if row.reasons[t] and row.reasons[t] != "agrees"
    ]
    if reasons:
        parts += ["Why a tool differs:", "", table(reasons, ["module", "tool", "reason"]), ""]
    if comparison.notes:
        parts += [table(((TOOL_LABELS[t], e) for t, e in comparison.notes.items()), ["tool", "how it was run"]), ""]
    if comparison.errors:
        parts += [table(((TOOL_LABELS[t], e) for t, e in comparison.errors.items()), ["tool", "could not run"]), ""]
    return "\n".join(parts).rstrip() + "\n"


def flops_markdown(audit: FlopsAudit, comparison: ToolComparison | None = None, title: str | None = None) -> str:
    counts = audit.counts
    built = built_text(audit)
    parts = [
        f"# FLOPs: {title or audit.model_type}",
        "",
        f"Input: {', '.join(audit.inputs)}.{f' Model {built}.' if built else ''} {CONVENTION}",
        "",
    ]
    summary = [
        ("MACs", n(audit.macs)),
        ("FLOPs (2 x MACs)", n(audit.flops)),
        ("bias additions", n(counts.bias)),
        ("normalised elements", n(counts.norm)),
        ("activation elements", n(counts.activation)),
        ("softmax elements", n(counts.softmax)),
        ("modules counted op by op (no MAC rule)", n(len(audit.by_ops))),
        ("unsupported modules", n(len(audit.unsupported))),
        ("unsupported ops (runs)", unsupported_ops_text(audit)),
    ]
    parts += [table(summary, ["quantity", "value"], ["left", "right"]), ""]
    rows = [
        (
            path(r.name),
            r.type,
            r.calls,
            shapes(r.input_shapes),
            shapes(r.output_shapes),
            n(r.macs),
            *(_column_cell(r, c) for c in ("bias", "norm", "activation", "softmax")),
            r.status.value,
            r.note,
        )
        for r in audit.records
        if r.calls or r.macs
    ]
    parts += ["## Modules (own work per module path, summed over calls)", ""]
    parts += [
        table(
            rows,
            ["module", "type", "calls", "input", "output", "MACs", "bias", "norm", "act", "softmax", "status", "note"],
            ["left", "left", "right", "left", "left", "right", "right", "right", "right", "right", "left", "left"],
        ),
        "",
    ]
    if audit.unsupported:
        parts += ["## Unsupported (ops nothing counts; the rest of their work is counted)", ""]
        parts += [
            table(
                (
                    (path(r.name), r.type, n(r.macs), ", ".join(f"{op} ({k})" for op, k in r.unsupported_ops), r.note)
                    for r in audit.unsupported
                ),
                ["module", "type", "MACs counted", "unsupported ops (runs)", "note"],
                ["left", "left", "right", "left", "left"],
            ),
            "",
        ]
    if comparison is not None:
        parts += ["## Cross-tool comparison (MACs per top-level module)", "", comparison_markdown(comparison)]
    return "\n".join(parts).rstrip() + "\n"
