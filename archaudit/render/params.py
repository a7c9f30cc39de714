"""The ``archaudit params`` output: Markdown and JSON."""

from __future__ import annotations

from typing import Any

from ..records import ModelAudit
from ._fmt import code, n, path, table


def params_json(audit: ModelAudit) -> dict[str, Any]:
    """The JSON form: totals, one object per module path, shared tensors and unregistered modules."""
    return {
        "model": audit.model_type,
        "device": audit.device,
        "total": audit.total,
        "trainable": audit.trainable,
        "frozen": audit.frozen,
        "buffers": audit.buffers,
        "buffer_bytes": audit.buffer_bytes,
        "param_bytes": audit.param_bytes,
        "leaf_only_total": audit.leaf_only_total,
        "modules": [
            {
                "name": r.name,
                "type": r.type,
                "params": r.params,
                "own_params": r.own_params,
                "trainable": r.trainable,
                "frozen": r.frozen,
                "buffers": r.buffers,
                "buffer_bytes": r.buffer_bytes,
                "status": r.status.value,
                "family": r.family,
                "formula": r.formula,
                "formula_params": r.formula_params,
                "shared": list(r.shared),
                "direct": [{"name": local, "shape": list(shape)} for local, shape in r.direct],
                "note": r.note,
            }
            for r in audit.records
        ],
        "shared": [{"names": list(s.names), "params": s.params, "kind": s.kind} for s in audit.shared],
        "unregistered": [{"name": u.name, "type": u.type, "params": u.params} for u in audit.unregistered],
        "direct": [r.name for r in audit.direct],
        "unsupported": [r.name for r in audit.unsupported],
        "mismatches": [r.name for r in audit.mismatches],
    }


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"


def params_markdown(audit: ModelAudit, title: str | None = None) -> str:
    parts = [f"# Parameters: {title or audit.model_type}", ""]
    summary = [
        ("total parameters", n(audit.total)),
        ("trainable", n(audit.trainable)),
        ("frozen", n(audit.frozen)),
        ("shared (extra references, counted once)", n(audit.shared_params)),
        ("buffers (elements)", n(audit.buffers)),
        ("buffers (bytes)", n(audit.buffer_bytes)),
        ("parameter bytes (as stored)", n(audit.param_bytes)),
        ("modules with direct parameters (counted by numel())", n(len(audit.direct))),
        ("unsupported modules", n(len(audit.unsupported))),
        ("in plain containers (unregistered)", n(audit.unregistered_params)),
        ("what a leaf-only counter reports", n(audit.leaf_only_total)),
    ]
    parts += [table(summary, ["quantity", "value"], ["left", "right"]), ""]

    parts += ["## Modules", ""]
    rows = [
        (
            "  " * max(r.depth - 1, 0) + path(r.name),
            r.type,
            n(r.params),
            n(r.frozen) if r.frozen else "",
            n(r.buffers) if r.buffers else "",
            r.status.value,
            code(r.formula),
            r.note,
        )
        for r in audit.records
    ]
    parts += [
        table(
            rows,
            ["module", "type", "params", "frozen", "buffers", "status", "formula", "note"],
            ["left", "left", "right", "right", "right", "left", "left", "left"],
        ),
        "",
    ]

    if audit.mismatches:
        parts += ["## Formula disagreements (an archaudit bug: please report)", ""]
        parts += [
            table(
                ((path(r.name), r.type, n(r.formula_params), n(r.subtree_params)) for r in audit.mismatches),
                ["module", "type", "formula", "numel"],
            ),
            "",
        ]
    if audit.direct:
        parts += ["## Direct parameters (held by the module itself, counted exactly by numel())", ""]
        parts += [
            table(
                (
                    (
                        path(r.name),
                        r.type,
                        n(r.params),
                        ", ".join(f"{local} ({_dims(shape)})" for local, shape in r.direct),
                    )
                    for r in audit.direct
                ),
                ["module", "type", "params", "parameters"],
                ["left", "left", "right", "left"],
            ),
            "",
        ]
    if audit.unsupported:
        parts += ["## Unsupported (a formula applies and cannot be trusted here; counted by numel())", ""]
        parts += [
            table(
                ((path(r.name), r.type, n(r.params), r.note) for r in audit.unsupported),
                ["module", "type", "params", "why"],
                ["left", "left", "right", "left"],
            ),
            "",
        ]
    if audit.shared:
        parts += ["## Shared tensors (counted once, at the first name)", ""]
        parts += [
            table(
                ((", ".join(s.names), s.kind, n(s.params)) for s in audit.shared),
                ["held at", "kind", "elements"],
                ["left", "left", "right"],
            ),
            "",
        ]
    if audit.unregistered:
        parts += ["## Modules in plain Python containers (not registered: no .parameters(), no optimizer)", ""]
        parts += [
            table(
                ((u.name, u.type, n(u.params)) for u in audit.unregistered),
                ["where", "type", "params it would add"],
                ["left", "left", "right"],
            ),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"
