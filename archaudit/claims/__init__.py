"""Documentation claims: a claims file per document, every claim checked against the reference model and
against the document itself, each verdict with its evidence."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TargetError
from .figures import Figure, FigureError, parse_figure
from .loader import ClaimsFileError, load_claims
from .records import VERDICT_ORDER, Claim, ClaimResult, Document, Verdict
from .safe_eval import UnsafeExpression, evaluate

if TYPE_CHECKING:
    import torch

    from ..registry import FormulaRegistry


@dataclass(frozen=True)
class ClaimsAudit:
    document: Document
    results: tuple[ClaimResult, ...]
    checked_against: str = ""
    """The model the claims were checked against (the document's ``model``, or the TARGET given instead)."""

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


def resolve_model(document: Document, target: str | None = None) -> str:
    """The TARGET a document's claims are checked against: ``target`` when given, else its ``[document] model``,
    whose ``file.py:callable`` form is read relative to the claims file (as a budgets file's targets are)."""
    name = target or document.model
    if target is None and ":" in name:
        file_part, _, attribute = name.partition(":")
        if file_part.endswith(".py") and not Path(file_part).is_absolute():
            name = f"{Path(document.path).parent / file_part}:{attribute}"
    return name


def _fitted(document_id: str) -> frozenset[str]:
    """The claims of this document that some installed reference model was fitted to (its ``fitted_to``)."""
    from ..references import references

    return frozenset(
        claim
        for entry in references()
        for qualified in entry.fitted_to
        for document, _, claim in [qualified.partition(":")]
        if document == document_id
    )


def check_document(
    path: str | Path | Document,
    *,
    target: str | torch.nn.Module | None = None,
    inputs: Sequence[str] | None = None,
    default_inputs: Sequence[str] = (),
    throughput: dict[str, Any] | None = None,
    registry: FormulaRegistry | None = None,
    step: Callable[[str], None] | None = None,
) -> ClaimsAudit:
    """Load a claims file (or take one already loaded) and check every claim against the model it names, or
    against ``target`` (any TARGET: a reference-model name, ``package.module:callable`` or ``file.py:callable``),
    built on the meta device where it can be. ``inputs`` (``--input`` syntax) replace the document's ``input`` for
    its MAC and FLOP claims, and ``default_inputs`` stand in where the document gives none (a report's own input);
    ``registry`` counts with other layer rules than :data:`archaudit.REGISTRY`."""
    import torch

    from ..references import baseline_total, get_reference
    from ..targets import build_target, resolve_callable
    from ..walker import audit_params
    from .check import Context, check_claims

    document = path if isinstance(path, Document) else load_claims(path)
    if isinstance(target, torch.nn.Module):
        from ..trace import on_meta

        model, entry, name = on_meta(target), None, type(target).__name__

        def build(**hyperparameters: Any) -> torch.nn.Module:
            raise TargetError(f"{name} was given as a model, not a builder: it cannot be rebuilt at other values")

    elif ":" in (name := resolve_model(document, target)):
        try:
            built = build_target(name, device="auto")
        except TargetError as exc:
            raise TargetError(f"{document.path}: model {name}: {exc}") from None
        model, entry = built.model, None
        builder = resolve_callable(name)

        def build(**hyperparameters: Any) -> torch.nn.Module:  # a scaling claim builds it at other values
            made = builder(**hyperparameters)
            if not isinstance(made, torch.nn.Module):
                raise TargetError(f"{name} returned a {type(made).__name__}, not an nn.Module")
            return made

    else:
        try:
            entry = get_reference(name)
        except LookupError as exc:
            raise TargetError(f"{document.path}: [document] model: {exc}") from None
        if entry.builder is None or not entry.published_architecture:
            # listed so that documents comparing against it can say so (baseline claims), but nothing is built
            raise TargetError(
                f"{document.path}: [document] model = {name!r} has no public architecture, "
                "so no claim can be checked against it; name a reference model that has one "
                "(archaudit list), or check it against your model with --target"
            )
        with torch.device("meta"):
            model = entry.build()
        build = entry.build
    ctx = Context(
        document=document,
        audit=audit_params(model) if registry is None else audit_params(model, registry=registry),
        build=build,
        model=model,
        families=dict(entry.families) if entry is not None else {},
        baseline_totals=functools.cache(baseline_total),  # a document names a baseline in several claims: built once
        throughput=throughput,
        hyperparameters=dict(entry.hyperparameters) if entry is not None else {},
        inputs=tuple(inputs) if inputs else document.input or tuple(default_inputs),
        registry=registry,
        fitted=_fitted(document.id),
        target=name if target is not None else "",
    )
    return ClaimsAudit(document, check_claims(ctx, step), name)


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
    "resolve_model",
]
