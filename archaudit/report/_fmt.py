"""Small formatting helpers shared by the renderers."""

from __future__ import annotations

from typing import Iterable, Sequence


def n(value: int | None) -> str:
    """An integer with thousands separators; an em dash for None."""
    return "—" if value is None else f"{value:,}"


def table(rows: Iterable[Sequence[object]], headers: Sequence[str], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (tabulate), with optional column alignment."""
    from tabulate import tabulate

    rows = [list(r) for r in rows]
    if not rows:
        return "_none_"
    return tabulate(rows, headers=list(headers), tablefmt="pipe", disable_numparse=True,
                    colalign=tuple(align) if align else None)


def path(name: str) -> str:
    return name or "(root)"


def code(text: str | None) -> str:
    return "" if not text else f"`{text}`"
