"""Small formatting helpers shared by the renderers."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

_MARKDOWN_SIGNIFICANT = re.compile(r"([\\`*_\[\]|~])")


def n(value: int | None) -> str:
    """An integer with thousands separators; an em dash for None."""
    return "—" if value is None else f"{value:,}"


def table(rows: Iterable[Sequence[object]], headers: Sequence[str], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (tabulate), with optional column alignment."""
    from tabulate import tabulate

    rows = [list(r) for r in rows]
    if not rows:
        return "_none_"
    markdown: str = tabulate(
        rows, headers=list(headers), tablefmt="pipe", disable_numparse=True, colalign=tuple(align) if align else None
    )
    return markdown


def shapes(found: Iterable[Sequence[int]]) -> str:
    """Tensor shapes as the reports print them: ``1x30x17, 1x30x768``."""
    return ", ".join("x".join(str(d) for d in shape) for shape in found)


def path(name: str) -> str:
    return name or "(root)"


def code(text: str | None) -> str:
    return "" if not text else f"`{text}`"


def cell(text: object) -> str:
    """Text from outside archaudit (a claims file, a document, a model's names) made inert in Markdown: on one
    line, HTML escaped, and every character that would start emphasis, code, a link or a table cell escaped, so
    that nothing a file supplies can add a row, a verdict or markup to a report."""
    folded = " ".join(str(text).split())
    return _MARKDOWN_SIGNIFICANT.sub(r"\\\1", html.escape(folded, quote=False))


def code_text(text: object) -> str:
    """Outside text as an inline code span, for prose (not table cells): on one line, fenced by more backticks
    than it contains, so its content is shown literally whatever it holds."""
    folded = " ".join(str(text).split())
    runs = [len(r) for r in re.findall(r"`+", folded)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if folded.startswith("`") or folded.endswith("`") else ""
    return f"{fence}{pad}{folded}{pad}{fence}"
