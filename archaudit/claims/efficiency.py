"""Finding the formula behind an "efficiency score" column that a document prints without one.

The candidates are the claims file's (``formulas`` of a ``score_formula`` claim): expressions in ``params``
(the row's parameter figure, as printed: millions when the column says "Params (M)"), ``rmse`` (its error) and
``c``, the one free constant. The library holds no candidate of its own: what a document's authors may have
meant is for whoever reads that document to propose. Each candidate's constant is fitted on one row and must
then reproduce every row within the rounding of the printed scores; the first candidate that does is the
formula the table implies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .figures import Figure
from .safe_eval import UnsafeExpression, evaluate, normalise

VARIABLES = ("params", "rmse", "c")
"""The names a score formula may use."""
MAX_ITERATIONS = 80
"""Secant steps when a candidate is not affine in ``c``: bounded, so a formula with no root cannot hang."""


@dataclass(frozen=True)
class ScoreFormula:
    expression: str
    """The candidate as the claims file gives it, e.g. ``"(c - rmse) / params"``."""
    constant: float

    @property
    def text(self) -> str:
        """The formula with its fitted constant, e.g. ``"(20 - rmse) / params"``, written into the expression as it
        is read (``"2c"`` is ``2*c``; a negative constant in parentheses)."""
        constant = f"{self.constant:g}" if self.constant >= 0 else f"({self.constant:g})"
        return re.sub(r"\bc\b", constant, normalise(self.expression))

    def score(self, params: float, rmse: float) -> float:
        value = _value(self.expression, params, rmse, self.constant)
        return float("nan") if value is None else value


def _value(expression: str, params: float, rmse: float, c: float) -> float | None:
    """The candidate's score, or None where it is undefined (a division by zero at this constant)."""
    try:
        return float(evaluate(expression, {"params": Fraction(params), "rmse": Fraction(rmse), "c": Fraction(c)}))
    except (UnsafeExpression, ArithmeticError):
        return None


def _fit(expression: str, params: float, rmse: float, score: float) -> float | None:
    """The constant ``c`` at which the candidate gives ``score`` on one row: exact where it is affine in ``c``
    (checked at three points), else by bounded secant steps; None when there is no such constant."""
    f1, f2, f3 = (_value(expression, params, rmse, c) for c in (1.0, 2.0, 3.0))
    if f1 is not None and f2 is not None and f3 is not None:
        slope = f2 - f1
        if slope != 0 and abs((f3 - f2) - slope) <= 1e-12 * max(1.0, abs(slope)):
            return 1.0 + (score - f1) / slope
    a, b = 1.0, 10.0
    fa, fb = _value(expression, params, rmse, a), _value(expression, params, rmse, b)
    for _ in range(MAX_ITERATIONS):
        if fa is None or fb is None or fa == fb:
            return None
        a, b = b, b - (fb - score) * (b - a) / (fb - fa)
        fa, fb = fb, _value(expression, params, rmse, b)
        if fb is not None and abs(fb - score) <= 1e-12 * max(1.0, abs(score)):
            return b
    return None


def _round_constant(value: float) -> float:
    """Documents use round constants: prefer the simplest nearby one."""
    for digits in (0, 1, 2, 3):
        rounded = round(value, digits)
        if abs(rounded - value) <= 0.05 * max(1.0, abs(value)) * 10**-digits:
            return rounded
    return value


def find_score_formula(candidates: Sequence[str], rows: Sequence[tuple[float, float, Figure]]) -> ScoreFormula | None:
    """``rows``: (params, RMSE, printed score). The first of ``candidates`` that, with its constant fitted on
    some row and rounded, reproduces every row's printed score."""
    for expression in candidates:
        for params, rmse, score in rows:
            fitted = _fit(expression, params, rmse, score.value)
            if fitted is None or fitted != fitted:  # nan
                continue
            formula = ScoreFormula(expression, _round_constant(fitted))
            if all(printed.admits(formula.score(p, r)) for p, r, printed in rows):
                return formula
    return None
