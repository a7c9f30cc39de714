"""Finding the formula behind an "efficiency score" column that a document prints without one.

Each candidate formula has one free constant. It is fitted on one row and must then reproduce every row within
the rounding of the printed scores; the first candidate that does is the formula the table implies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .figures import Figure


@dataclass(frozen=True)
class ScoreFormula:
    name: str
    text: str
    """The formula with its fitted constant, e.g. ``"(20 - RMSE) / Params(M)"``."""
    constant: float
    score: Callable[[float, float], float]
    """``score(params_millions, rmse)``."""


@dataclass(frozen=True)
class _Candidate:
    name: str
    template: str
    fit: Callable[[float, float, float], float]  # (params, rmse, score) -> constant
    score: Callable[[float, float, float], float]  # (constant, params, rmse) -> score


CANDIDATES = (
    _Candidate(
        "headroom per million parameters",
        "({c:g} - RMSE) / Params(M)",
        lambda p, r, s: s * p + r,
        lambda c, p, r: (c - r) / p,
    ),
    _Candidate(
        "inverse RMSE per million parameters",
        "{c:g} / (RMSE x Params(M))",
        lambda p, r, s: s * p * r,
        lambda c, p, r: c / (r * p),
    ),
    _Candidate(
        "inverse squared RMSE per million parameters",
        "{c:g} / (RMSE^2 x Params(M))",
        lambda p, r, s: s * p * r * r,
        lambda c, p, r: c / (r * r * p),
    ),
    _Candidate(
        "relative headroom per million parameters",
        "({c:g} - RMSE) / ({c:g} x Params(M))",
        lambda p, r, s: r / (1 - s * p) if s * p != 1 else float("nan"),
        lambda c, p, r: (c - r) / (c * p),
    ),
)


def _round_constant(value: float) -> float:
    """Documents use round constants: prefer the simplest nearby one."""
    for digits in (0, 1, 2, 3):
        rounded = round(value, digits)
        if abs(rounded - value) <= 0.05 * max(1.0, abs(value)) * 10**-digits:
            return rounded
    return value


def find_score_formula(rows: Sequence[tuple[float, float, Figure]]) -> ScoreFormula | None:
    """``rows``: (params in millions, RMSE, printed score). The first candidate reproducing every row."""
    if not rows:
        return None
    for candidate in CANDIDATES:
        for anchor in rows:
            constant = _round_constant(candidate.fit(anchor[0], anchor[1], anchor[2].value))
            if constant != constant:  # nan
                continue
            if all(score.admits(candidate.score(constant, p, r)) for p, r, score in rows):
                return ScoreFormula(
                    candidate.name,
                    candidate.template.format(c=constant),
                    constant,
                    functools.partial(candidate.score, constant),
                )
    return None
