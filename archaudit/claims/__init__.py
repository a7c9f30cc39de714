"""Documentation claims: a claims file per document, every claim checked against the reference model and
against the document itself, each verdict with its evidence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .figures import Figure, FigureError, parse_figure
from .loader import ClaimsFileError, load_claims
from .records import VERDICT_ORDER, Claim, ClaimResult, Document, Verdict
from .safe_eval import UnsafeExpression, evaluate

if TYPE_CHECKING:
    from ..registry import FormulaRegistry


@dataclass(frozen=True)
class ClaimsAudit:
    document: Document
    results: tuple[ClaimResult, ...]

    @property
    def failed(self) -> tuple[ClaimResult, ...]:
        return tuple(r for r in self.results if r.verdict.fails)

    def counts(self) -> dict[str, int]:
        return {v.value: sum(r.verdict is v for r in self.results) for v in VERDICT_ORDER}

    def result(self, claim_id: str) -> ClaimResult:
        for r in self.results:
            if r.claim.id == claim_id:
                return r
        raise KeyError(f"no claim {claim_id!r} in {self.document.path}")


def check_document(
    path: str | Path, *, throughput: dict[str, Any] | None = None, registry: FormulaRegistry | None = None
) -> ClaimsAudit:
    """Load a claims file, build the reference model it names (an installed plugin's entry, see
    :mod:`archaudit.references`) on the meta device, and check every claim; ``registry`` counts with other layer
    rules than :data:`archaudit.REGISTRY`."""
    import torch

    from ..errors import TargetError
    from ..references import baseline_total, get_reference
    from ..walker import audit_params
    from .check import Context, check_claims

    document = load_claims(path)
    try:
        entry = get_reference(document.model)
    except LookupError as exc:
        raise TargetError(f"{document.path}: [document] model: {exc}") from None
    if entry.builder is None or not entry.published_architecture:
        # listed so that documents comparing against it can say so (baseline claims), but nothing is built
        raise TargetError(
            f"{document.path}: [document] model = {document.model!r} has no public architecture, "
            "so no claim can be checked against it; name a reference model that has one "
            "(archaudit list)"
        )
    with torch.device("meta"):
        model = entry.build()
    ctx = Context(
        document=document,
        audit=audit_params(model) if registry is None else audit_params(model, registry=registry),
        build=entry.build,
        model=model,
        families=dict(entry.families),
        baseline_totals=baseline_total,
        throughput=throughput,
        hyperparameters=dict(entry.hyperparameters),
    )
    return ClaimsAudit(document, check_claims(ctx))


__all__ = [
    "Claim",
    "ClaimResult",
    "ClaimsAudit",
    "ClaimsFileError",
    "Document",
    "Figure",
    "FigureError",
    "UnsafeExpression",
    "Verdict",
    "check_document",
    "evaluate",
    "load_claims",
    "parse_figure",
]
