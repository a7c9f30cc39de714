"""Charts for the reports: deterministic SVG (matplotlib), with text bars as the fallback where no chart can
be written (stdout, or matplotlib missing)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from ..polynomial import Polynomial
from ..report_data import EfficiencyRow, Share

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter


def text_bars(shares: Sequence[Share], width: int = 40) -> str:
    """A fixed-width bar per share, e.g. ``lstm        ██████████████████████████████  76.5%``."""
    label = max((len(s.name) for s in shares), default=0)
    lines = []
    for s in shares:
        bar = "█" * round(width * s.percent / 100)
        lines.append(f"{s.name.ljust(label)}  {bar.ljust(width)}  {s.percent:5.1f}%")
    return "\n".join(lines)


def _matplotlib() -> ModuleType | None:
    """``matplotlib.pyplot`` set up for deterministic SVG, or None where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    matplotlib.rcParams.update({"svg.hashsalt": "archaudit", "svg.fonttype": "none", "font.size": 9})
    return plt


def _count_formatter() -> FuncFormatter:
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= scale:
                return f"{value / scale:g}{suffix}"
        return f"{value:g}"

    return FuncFormatter(fmt)


def finish_svg(plt: ModuleType, fig: Figure, ax: Axes) -> str:
    """A drawn chart as deterministic SVG text (no date in its metadata), with the top and right spines hidden, and
    the figure closed: the last step of every chart in ``reports/``."""
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "archaudit"}, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def distribution_svg(shares: Sequence[Share], title: str) -> str | None:
    """One bar per share, labelled with its count and the table's own percentage (never recomputed here, so
    the chart and the table beside it cannot disagree)."""
    plt = _matplotlib()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.35 * len(shares) + 1.0))
    names = [s.name for s in shares][::-1]
    values = [s.params for s in shares][::-1]
    ax.barh(names, values, color="#4C72B0")
    for y, share in enumerate(shares[::-1]):
        ax.text(share.params, y, f" {share.params:,} ({share.percent:.1f}%)", va="center", fontsize=8)
    ax.set_xlabel("parameters (audited)")
    ax.xaxis.set_major_formatter(_count_formatter())
    ax.set_title(title)
    ax.set_xlim(0, max(values or [1]) * 1.45)
    return finish_svg(plt, fig, ax)


def efficiency_svg(rows: Sequence[EfficiencyRow], title: str) -> str | None:
    """Parameters against claimed RMSE: each model at its claimed count, and at its audited count where one
    exists, joined by an arrow."""
    plt = _matplotlib()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for row in rows:
        claimed = row.claimed_params_m * 1e6
        ax.scatter([claimed], [row.claimed_rmse], color="#C44E52", zorder=3)
        ax.annotate(row.model, (claimed, row.claimed_rmse), textcoords="offset points", xytext=(6, 4), fontsize=8)
        if row.audited_params:
            ax.scatter([row.audited_params], [row.claimed_rmse], color="#4C72B0", marker="s", zorder=3)
            ax.annotate(
                "",
                xy=(row.audited_params, row.claimed_rmse),
                xytext=(claimed, row.claimed_rmse),
                arrowprops={"arrowstyle": "->", "color": "#777777"},
            )
    ax.scatter([], [], color="#C44E52", label="parameters as the document claims")
    ax.scatter([], [], color="#4C72B0", marker="s", label="parameters as audited")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_count_formatter())
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("average RMSE as the document claims")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return finish_svg(plt, fig, ax)


def scaling_svg(polynomial: Polynomial, title: str, at: int | None = None) -> str | None:
    """Each term's share of a cost polynomial, stacked to 100%, against its variable (log scale) from 1 to past
    the last size where one term overtakes another: a dashed line where each does, a dotted one at the audited
    input's size."""
    plt = _matplotlib()
    if plt is None:
        return None
    from matplotlib.ticker import FixedLocator, NullLocator

    terms = polynomial.terms
    var = polynomial.variable
    crossings = [c.at for c in polynomial.crossovers() if c.at > 1]  # "T passes 1 at T=1" marks nothing
    top = 4 * max([*crossings, at or 1, 256])
    points = 64
    xs = [top ** (i / (points - 1)) for i in range(points)]  # 1 .. top, evenly on the log scale
    values = [[abs(float(t.coefficient)) * x**t.power for x in xs] for t in terms]
    totals = [sum(column) or 1.0 for column in zip(*values, strict=True)]
    shares = [[100 * v / total for v, total in zip(row, totals, strict=True)] for row in values]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = ["constant" if t.power == 0 else f"{var}^{t.power}" if t.power > 1 else var for t in terms]
    ax.stackplot(
        xs,
        shares,
        labels=[f"{label} term" for label in labels],
        colors=["#C44E52", "#4C72B0", "#55A868", "#DD8452", "#8172B3"][: len(terms)],
    )
    for crossing in crossings:
        ax.axvline(crossing, color="#222222", linestyle="--", linewidth=0.8)
        ax.annotate(f" {var}={crossing:,}", (crossing, 50), fontsize=8)
    if at is not None:
        ax.axvline(at, color="#222222", linestyle=":", linewidth=0.8)
        ax.annotate(f" audited {var}={at:,}", (at, 8), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1, top)
    # plain labels at the powers of ten (the log axis's own are mathtext, which costs most of the chart's time)
    ax.xaxis.set_major_locator(FixedLocator([10.0**k for k in range(len(str(top)))]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(_count_formatter())
    ax.set_ylim(0, 100)
    ax.set_xlabel(f"{var} (log scale)")
    ax.set_ylabel("share of the MACs (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return finish_svg(plt, fig, ax)
