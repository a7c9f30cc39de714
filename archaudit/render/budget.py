"""Budget results as text: the table a failing budget shows (in pytest and in ``archaudit check``), and the table
of a model against its baseline."""

from __future__ import annotations

from ..budgets.check import BYTES_PER_MB, BaselineGate, BudgetResult, Check
from ..budgets.file import BudgetsReport
from ..diff import Delta

MEMORY_NOTE = (
    "memory_mb: inference peak; train_memory_mb: a training step's peak (an upper-bound estimate)\n"
    "MB = 10^6 bytes, measured to the byte and compared in bytes"
)


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if not float(value).is_integer() else f"{int(value):,}"


def _written(value: float) -> str:
    """A limit as the user wrote it (``0.003``, not rounded to ``0.00``), with thousands separators."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _fmt(abs(value))


def _mb(nbytes: int) -> str:
    """Bytes as MB (10^6 bytes), exactly: ``3,024`` -> ``0.003024``."""
    whole, rest = divmod(nbytes, BYTES_PER_MB)
    return f"{whole:,}.{rest:06d}"


def _check_row(c: Check) -> tuple[str, str, str, str, str]:
    budget = f"<= {_written(c.high)}" if c.low is None else f"{_written(c.low)} .. {_written(c.high)}"
    relative = f" ({100 * c.margin / c.high:+.1f}%)" if c.high else ""
    if c.measured_bytes is None:
        measured, margin = _fmt(c.measured), _signed(c.margin)
    else:  # to the byte: a margin of one byte shows
        measured, margin = _mb(c.measured_bytes), ("+" if c.margin >= 0 else "-") + f"{abs(c.margin):,.6f}"
    label = f"{c.kind} ({c.setting})" if c.setting else c.kind
    return label, budget, measured, f"{margin}{relative}", "ok" if c.ok else "OVER" if c.over else "UNDER"


def budget_table(result: BudgetResult) -> str:
    """One row per limit (budget, measured, margin, state), and one for unsupported layers when there are any."""
    from tabulate import tabulate

    rows = [_check_row(c) for c in result.checks]
    if result.unsupported:
        rows.append(
            (
                "unsupported layers",
                "0" if not result.allow_unsupported else "allowed",
                str(len(result.unsupported)),
                ", ".join(result.unsupported[:5])
                + (" ..." if len(result.unsupported) > 5 else "")
                + ("" if result.allow_unsupported else " (allow_unsupported=true to accept)"),
                "ok" if result.allow_unsupported else "FAIL",
            )
        )
    table: str = tabulate(
        rows, headers=["limit", "budget", "measured", "margin", ""], tablefmt="simple", disable_numparse=True
    )
    if any(c.measured_bytes is not None for c in result.checks):
        table += f"\n{MEMORY_NOTE}"
    return table


def _growth_row(d: Delta, gate: BaselineGate) -> tuple[str, str, str, str, str, str]:
    limit = f"<= +{_written(gate.max_growth_pct)}%"
    if not d.known:
        before = "not in baseline" if d.before is None else _fmt(d.before)
        after = "not measured now" if d.after is None else _fmt(d.after)
        return d.name, before, after, "-", limit, "not compared"
    change = d.change or 0
    percent = "from 0" if d.percent is None else f"{d.percent:+,.2f}%"
    growth = f"{_signed(change)} ({percent})" if change else "0"
    return d.name, _fmt(d.before or 0), _fmt(d.after or 0), growth, limit, "OVER" if d.name in gate.grown else "ok"


def baseline_table(gate: BaselineGate) -> str:
    """One row per total either side holds: baseline, now, growth (absolute and %), the limit and the state; a
    total one side lacks is shown as not compared."""
    from tabulate import tabulate

    rows = [_growth_row(d, gate) for d in gate.rows]
    table: str = tabulate(
        rows,
        headers=["total", "baseline", "now", "growth", "limit", ""],
        tablefmt="simple",
        disable_numparse=True,
    )
    d = gate.diff
    inputs = f" (input {', '.join(d.before.inputs)})" if d.before.inputs else ""
    head = f"baseline {gate.source}{inputs}: each total may grow by at most {_written(gate.max_growth_pct)}%"
    paths = f"module paths since the baseline: {len(d.changed)} changed, {len(d.added)} added, {len(d.removed)} removed"
    return f"{head}\n{table}\n{paths}"


def budget_message(result: BudgetResult) -> str:
    inputs = f" (input {', '.join(result.inputs)})" if result.inputs else ""
    head = "within budget" if result.ok else "over budget"
    parts = [f"{result.name}{inputs}: {head}"]
    if result.checks or result.unsupported:
        parts.append(budget_table(result))
    if result.baseline is not None:
        parts.append(baseline_table(result.baseline))
    return "\n".join(parts)


def budgets_text(report: BudgetsReport) -> str:
    """What ``archaudit check`` prints: each model's table, each claims gate's line, and the verdict."""
    parts = [budget_message(m) for m in report.models]
    for gate in report.claims:
        state = "ok" if gate.ok else "FAILED"
        counts = ", ".join(f"{k} {v}" for k, v in gate.counts.items() if v)
        if isinstance(gate.expect, str):  # ALL_HOLD
            detail = "every claim must hold" + (f"; failing: {', '.join(gate.failed)}" if gate.failed else "")
        else:
            wanted = ", ".join(f"{k} {v}" for k, v in gate.expect.items())
            detail = f"expected {wanted}"
        parts.append(f"claims {gate.file}: {state} ({counts}; {detail})")
    verdict = "all within budget" if report.ok else "OVER BUDGET"
    return "\n\n".join(parts) + f"\n\n{verdict}\n"
