"""The ``archaudit diff`` output: Markdown and JSON. Every name from a model or a baseline file is escaped."""

from __future__ import annotations

from typing import Any

from ..diff import FIGURE_LABELS, FIGURES, Delta, ModelDiff, ModuleDiff, Snapshot
from ._fmt import cell, n, path, table


def signed(value: int | None) -> str:
    """``+1,024``, ``-512``, ``0``; an em dash for None."""
    if value is None:
        return "—"
    return f"{value:+,}" if value else "0"


def percent(value: float | None) -> str:
    """``+12.50%``; an em dash for None (a side lacks the figure, or it was 0 before)."""
    return "—" if value is None else f"{value:+.2f}%"


def _before_after(d: Delta) -> str:
    """One figure of a changed module: ``128 → 256 (+128)``, or the value once when it did not change."""
    if d.before is None and d.after is None:
        return ""
    if d.before == d.after:
        return n(d.after)
    return f"{n(d.before)} → {n(d.after)} ({signed(d.change)})"


def _side(s: Snapshot) -> str:
    inputs = ", ".join(s.inputs) if s.inputs is not None else "no MACs counted"
    return f"{cell(s.model)} ({cell(s.source)}; input {cell(inputs)}; {len(s.modules)} module paths)"


def _shown(d: ModelDiff) -> tuple[str, ...]:
    """The figures a side holds: memory only when some side measured it."""
    return tuple(f for f in FIGURES if d.before.total(f) is not None or d.after.total(f) is not None)


def _module_table(modules: tuple[ModuleDiff, ...], figures: tuple[str, ...], side: str) -> str:
    headers = ["module", "type", *(FIGURE_LABELS[f] for f in figures)]
    align = ["left", "left", *("right" for _ in figures)]

    def value(m: ModuleDiff, figure: str) -> str:
        delta = getattr(m, figure)
        if side == "before":
            return n(delta.before)
        if side == "after":
            return n(delta.after)
        return _before_after(delta)

    rows = [[cell(path(m.path)), cell(m.type), *(value(m, f) for f in figures)] for m in modules]
    return table(rows, headers, align)


def diff_markdown(d: ModelDiff, title: str | None = None) -> str:
    """Totals first, then the added, removed and changed module paths (unchanged ones are counted, not listed)."""
    figures = _shown(d)
    parts = [
        f"# Diff: {cell(title) if title else f'{cell(d.before.model)} → {cell(d.after.model)}'}",
        "",
        f"Before: {_side(d.before)}. After: {_side(d.after)}.",
        "",
    ]
    if d.notes:
        parts += [*(f"- **Note:** {cell(note)}." for note in d.notes), ""]
    totals = [
        (FIGURE_LABELS[t.name], n(t.before), n(t.after), signed(t.change), percent(t.percent))
        for t in d.totals
        if t.name in figures
    ]
    parts += [table(totals, ["total", "before", "after", "change", "%"], ["left", "right", "right", "right", "right"])]
    parts += [
        "",
        f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{d.unchanged} unchanged module paths.",
        "",
    ]
    for heading, modules, side in (
        ("Added", d.added, "after"),
        ("Removed", d.removed, "before"),
        ("Changed (before → after)", d.changed, "both"),
    ):
        parts += [f"## {heading}", "", _module_table(modules, figures, side), ""]
    return "\n".join(parts).rstrip() + "\n"


def diff_json(d: ModelDiff) -> dict[str, Any]:
    """The JSON form: :meth:`ModelDiff.as_json` (keys and lists in a fixed order)."""
    return d.as_json()


__all__ = ["diff_json", "diff_markdown", "percent", "signed"]
