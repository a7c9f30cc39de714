"""Budget results as text: the table a failing budget shows (in pytest and in ``archaudit check``)."""

from __future__ import annotations

from ..budgets.check import BudgetResult
from ..budgets.file import BudgetsReport


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if not float(value).is_integer() else f"{int(value):,}"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _fmt(abs(value))


def budget_table(result: BudgetResult) -> str:
    """One row per limit (budget, measured, margin, state), and one for unsupported layers when there are any."""
    from tabulate import tabulate

    rows = []
    for c in result.checks:
        budget = f"<= {_fmt(c.high)}" if c.low is None else f"{_fmt(c.low)} .. {_fmt(c.high)}"
        relative = f" ({100 * c.margin / c.high:+.1f}%)" if c.high else ""
        rows.append(
            (
                c.kind,
                budget,
                _fmt(c.measured),
                f"{_signed(c.margin)}{relative}",
                "ok" if c.ok else "OVER" if c.measured > c.high else "UNDER",
            )
        )
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
    return table


def budget_message(result: BudgetResult) -> str:
    inputs = f" (input {', '.join(result.inputs)})" if result.inputs else ""
    head = "within budget" if result.ok else "over budget"
    return f"{result.name}{inputs}: {head}\n{budget_table(result)}"


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
