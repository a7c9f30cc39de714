"""One training step (``archaudit flops --training``) and the closed-form estimates beside it, as Markdown and
plain dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..estimates import Estimate, TransformerDims
from ..estimates import as_json as estimates_as_json
from ..training import TrainingAudit
from ._fmt import cell, n, path, table


def training_json(training: TrainingAudit) -> dict[str, Any]:
    """The ``training`` block: ``forward``, ``backward`` and ``total`` MACs first, then the split, the optimizer's
    element-wise work and the modules."""
    out = training.as_json()
    return {
        "forward": out["forward"],
        "backward": out["backward"],
        "total": out["total"],
        "backward_input": training.backward_input,
        "backward_weight": training.backward_weight,
        "flops": training.flops,
        "optimizer": out["optimizer"],
        "optimizer_elementwise": out["optimizer_elementwise"],
        "uncounted": [r.name for r in training.uncounted],
        "estimated": [r.name for r in training.estimated],
        "modules": out["modules"],
    }


def estimates_json(found: tuple[TransformerDims, Sequence[Estimate]] | None) -> dict[str, Any] | None:
    return None if found is None else estimates_as_json(*found)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.2f}%"


def estimates_markdown(dims: TransformerDims, found: Sequence[Estimate]) -> str:
    """The estimates table (each beside the exact count, with its relative error), then each one's gaps."""
    head = (
        f"Dimensions ({cell(dims.source)}): {dims.n_layer} layers, d_model {dims.d_model}, {dims.n_heads} heads "
        f"({dims.n_kv_heads} key/value), d_ff {dims.d_ff}, vocabulary {n(dims.vocab)}, {dims.batch} x {dims.n_ctx} "
        f"tokens, lm_head {dims.lm_head.value}. FLOPs are 2 x MACs over all tokens of the input."
    )
    rows = [
        (
            e.name,
            cell(e.formula),
            e.covers.value,
            n(e.value),
            n(e.exact),
            _percent(e.relative_error),
            cell(e.source),
        )
        for e in found
    ]
    parts = [
        head,
        "",
        table(
            rows,
            ["estimate", "formula", "pass", "estimate (FLOPs)", "exact (FLOPs)", "error", "source"],
            ["left", "left", "left", "right", "right", "right", "left"],
        ),
        "",
        "Why each differs from the exact count (each cause's share of the exact count):",
        "",
    ]
    for e in found:
        reasons = [cell(g.text) for g in e.gaps] + [cell(note) for note in e.notes]
        if e.unexplained:
            reasons.append(f"unexplained: {n(e.unexplained)} FLOPs")
        parts.append(f"- **{e.name}**: " + ("; ".join(reasons) if reasons else "no gap: it is exact here") + ".")
    return "\n".join(parts) + "\n"


def training_markdown(
    training: TrainingAudit,
    found: tuple[TransformerDims, Sequence[Estimate]] | None = None,
    title: str | None = None,
) -> str:
    parts = [
        f"# Training step: {cell(title or training.model_type)}",
        "",
        f"Input: {cell(', '.join(training.inputs))}; optimizer {training.optimizer}. Backward MACs are the products "
        "autograd runs: gradients of activations where an input or a trainable weight upstream needs one, and of "
        "trainable weights (none for frozen ones). FLOPs = 2 x MACs; the optimizer's element-wise work is apart.",
        "",
    ]
    summary = [
        ("forward MACs", n(training.forward)),
        ("backward MACs, activation gradients", n(training.backward_input)),
        ("backward MACs, weight gradients", n(training.backward_weight)),
        ("training step MACs (forward + backward)", n(training.total)),
        ("training step FLOPs (2 x MACs)", n(training.flops)),
        ("backward / forward", f"{training.backward / training.forward:.3f}" if training.forward else "—"),
        (
            f"optimizer step, element-wise ops ({training.optimizer}: "
            f"{training.optimizer_ops_per_element} per trainable element)",
            n(training.optimizer_elementwise),
        ),
        ("modules with forward MACs but no backward rule", n(len(training.uncounted))),
    ]
    parts += [table(summary, ["quantity", "value"], ["left", "right"]), ""]
    rows = [
        (
            cell(path(r.name)),
            cell(r.type),
            n(r.forward),
            n(r.backward_input),
            n(r.backward_weight),
            n(r.total),
            r.exactness.value,
            cell(r.note),
        )
        for r in training.records
        if r.forward or r.backward
    ]
    parts += ["## Modules (own work per module path, summed over calls)", ""]
    parts += [
        table(
            rows,
            ["module", "type", "forward", "backward (activations)", "backward (weights)", "total", "exactness", "note"],
            ["left", "left", "right", "right", "right", "right", "left", "left"],
        ),
        "",
    ]
    if found is not None:
        parts += ["## The quoted estimates, audited", "", estimates_markdown(*found)]
    return "\n".join(parts).rstrip() + "\n"
