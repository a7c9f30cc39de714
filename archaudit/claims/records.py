"""Claims and verdicts: frozen records of plain values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .figures import Figure


class Verdict(str, enum.Enum):
    HOLDS = "holds"
    MISMATCH = "mismatch"
    CONTRADICTS = "contradicts the document"
    NOT_REPRODUCIBLE = "not reproducible"
    NOT_CHECKABLE = "not checkable here"
    MISSING = "no such module"

    @property
    def fails(self) -> bool:
        return self in (Verdict.MISMATCH, Verdict.CONTRADICTS, Verdict.NOT_REPRODUCIBLE, Verdict.MISSING)


# Mismatches first, then the others, as the report orders them.
VERDICT_ORDER = (
    Verdict.MISSING,
    Verdict.CONTRADICTS,
    Verdict.NOT_REPRODUCIBLE,
    Verdict.MISMATCH,
    Verdict.NOT_CHECKABLE,
    Verdict.HOLDS,
)

KINDS = (
    "total",
    "trainable",
    "component",
    "percentage",
    "sum",
    "arithmetic",
    "formula",
    "scaling",
    "size",
    "derived",
    "ranking",
    "between",
    "score_formula",
    "score",
    "baseline",
    "reported",
    "throughput",
    "attribute",
    "macs",
    "flops",
    "frozen",
    "shared",
    "count",
    "leaf_only",
    "cross",
)
"""Every claim kind: each has its keys (:data:`~.loader.CLAIM_KEYS`) and its checker (:data:`~.check.CHECKERS`)."""

DTYPE_BYTES: dict[str, float] = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int8": 1,
    "float64": 8,
    # quantised widths, as model cards quote them: 8-bit floats, and 4-bit weights packed two to a byte
    "float8": 1,
    "int4": 0.5,
}
"""The dtypes a size claim may name, and each one's bytes per parameter (the loader refuses any other). A
quantised size is the weights alone: scales and zero points, which each scheme stores its own way, are not in it."""


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    where: str
    """Section / table / row of the document."""
    printed: str
    """The figure as printed ("~2.36M", "3,502,849", "67.4%")."""
    figure: Figure | None
    line: int
    """Line of the claims file where the claim starts (for error messages)."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Kind-specific fields (component, expression, of, hyperparameter ...)."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    source: str
    model: str
    components: dict[str, tuple[str, ...]]
    claims: tuple[Claim, ...]
    path: str
    families: dict[str, str] = field(default_factory=dict)
    """Claim kinds' solver families, e.g. ``{"total": "amnl"}``."""
    input: tuple[str, ...] = ()
    """The input the document's MAC and FLOP figures are for (``--input`` syntax, ``NAME=SHAPE`` by name)."""


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: Verdict
    actual: float | str | None
    evidence: str
    difference: float | None = None
    solver: Any = None
    """A :class:`~archaudit.claims.solver.SolverResult`, for counts the model does not reproduce."""
