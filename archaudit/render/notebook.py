"""An :class:`archaudit.Audit` as a notebook shows it: totals first, then the module table folded to a depth,
then the shared tensors, the directly held parameters and the unsupported work; as Markdown, HTML (every name
escaped), a pandas DataFrame, JSON and a matplotlib figure. Everything here formats what the audit computed."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from ._fmt import cell, n, path, table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from ..audit import Audit, ModuleRow
    from ..records import FlopsAudit, ModelAudit

_COLUMNS = ("module", "type", "parameters", "MACs", "status (parameters / MACs)", "output")


def _status(row: ModuleRow) -> str:
    return row.params_status + (f" / {row.macs_status}" if row.macs_status else "")


def _row_cells(row: ModuleRow) -> tuple[str, ...]:
    name = path(row.name) + (f" (+{row.folded} below)" if row.folded else "")
    return (name, row.type, n(row.params), n(row.macs), _status(row), row.output_shapes)


def shared_rows(params: ModelAudit) -> list[tuple[str, ...]]:
    """Per shared tensor: where it is counted, its elements, and every other place that holds it."""
    return [(s.names[0], n(s.params), ", ".join(s.names[1:])) for s in params.shared]


def direct_rows(params: ModelAudit) -> list[tuple[str, ...]]:
    """Per parameter held directly by a module (not by a layer with a formula): module, name, shape."""
    return [
        (path(r.name), name, "x".join(str(d) for d in shape) or "scalar")
        for r in params.direct
        for name, shape in r.direct
    ]


def unsupported_rows(params: ModelAudit, flops: FlopsAudit | None) -> list[tuple[str, ...]]:
    """Per unsupported module: what is not counted (parameters or MACs) and why (the ops nothing counts)."""
    rows: list[tuple[str, ...]] = [(path(r.name), "parameters", r.note or r.type) for r in params.unsupported]
    if flops is not None:
        rows += [
            (path(r.name), "MACs", ", ".join(f"{op} x{k}" for op, k in r.unsupported_ops)) for r in flops.unsupported
        ]
    return rows


SECTIONS = (
    ("Shared tensors (counted once, at the first place)", ("counted at", "elements", "also held by")),
    ("Parameters held directly", ("module", "parameter", "shape")),
    ("Unsupported", ("module", "for", "why")),
)


def sections(params: ModelAudit, flops: FlopsAudit | None) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """The sections that name what the totals hide (heading, headers, rows), each only where it has a row."""
    found = (shared_rows(params), direct_rows(params), unsupported_rows(params, flops))
    return [(heading, headers, rows) for (heading, headers), rows in zip(SECTIONS, found, strict=True) if rows]


def _title(audit: Audit) -> str:
    inputs = f" on {', '.join(audit.flops.inputs)}" if audit.flops is not None else ""
    return f"{audit.name}{inputs}"


def _depth_note(depth: int | None, rows: tuple[ModuleRow, ...]) -> str:
    folded = sum(r.folded for r in rows)
    if depth is None or not folded:
        return ""
    return f"{folded} module paths deeper than {depth} are summed into their parents (depth=None shows them all)."


def audit_markdown(audit: Audit, depth: int | None = None) -> str:
    rows = audit.rows(depth)
    parts = [f"### archaudit: {cell(_title(audit))}", ""]
    parts += [table(((k, n(v)) for k, v in audit.totals().items()), ["total", "value"], ["left", "right"]), ""]
    note = _depth_note(depth, rows)
    parts += [
        table(
            (tuple(cell(c) for c in _row_cells(r)) for r in rows),
            _COLUMNS,
            ["left", "left", "right", "right", "left", "left"],
        ),
        "",
    ]
    if note:
        parts += [note, ""]
    for heading, headers, found in sections(audit.params, audit.flops):
        parts += [f"**{heading}**", "", table((tuple(cell(c) for c in r) for r in found), headers), ""]
    return "\n".join(parts).rstrip() + "\n"


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:right">{html.escape(c)}</td>' if i in numeric else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def audit_html(audit: Audit, depth: int | None = None) -> str:
    rows = audit.rows(depth)
    parts = [f'<div class="archaudit"><h4>archaudit: {html.escape(_title(audit))}</h4>']
    parts.append(
        _html_table(["total", "value"], [(k, n(v)) for k, v in audit.totals().items()], numeric={1}).replace(
            "<table>", '<table class="archaudit-totals">', 1
        )
    )
    parts.append(_html_table(_COLUMNS, [_row_cells(r) for r in rows], numeric={2, 3}))
    note = _depth_note(depth, rows)
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for heading, headers, found in sections(audit.params, audit.flops):
        parts.append(f"<p><b>{html.escape(heading)}</b></p>" + _html_table(headers, found, numeric=set()))
    return "".join(parts) + "</div>"


def audit_frame(audit: Audit, depth: int | None = None) -> pd.DataFrame:
    import pandas as pd

    from ..audit import ModuleRow

    return pd.DataFrame([asdict(r) for r in audit.rows(depth)], columns=[f.name for f in fields(ModuleRow)])


def audit_json(audit: Audit) -> str:
    from .flops import flops_json
    from .params import params_json

    data: dict[str, Any] = {
        "model": audit.name,
        "totals": audit.totals(),
        "params": params_json(audit.params),
        "flops": flops_json(audit.flops) if audit.flops is not None else None,
    }
    return json.dumps(data, indent=2)


def audit_chart(audit: Audit) -> Figure:
    """Two bar charts side by side: parameters and MACs per top-level module (the root's own work as
    ``(root)``)."""
    from .charts import _count_formatter, _matplotlib

    plt = _matplotlib()
    if plt is None:
        raise ImportError("archaudit's charts need matplotlib: pip install 'archaudit[charts]'")
    rows = [r for r in audit.rows(depth=1) if r.name or r.params or r.macs]
    names = [path(r.name) for r in rows][::-1]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 0.35 * len(rows) + 1.2), sharey=True)
    for ax, values, label in (
        (axes[0], [r.params for r in rows][::-1], "parameters"),
        (axes[1], [r.macs for r in rows][::-1], "MACs (own work, with what is below)"),
    ):
        ax.barh(names, values, color="#4C72B0")
        ax.set_xlabel(label)
        ax.xaxis.set_major_formatter(_count_formatter())
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"archaudit: {_title(audit)}")
    figure: Figure = fig
    return figure
