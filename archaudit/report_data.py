"""Everything ``archaudit report`` shows, computed once into a :class:`ModelReport` of plain values.

Renderers (``archaudit.render``) only format this; nothing here formats text for display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .records import FlopsAudit, ModelAudit
from .registry import REGISTRY, FormulaRegistry
from .trace import trace_device
from .workers import run_all, side_by_side

if TYPE_CHECKING:
    from .claims.records import ClaimResult, Document

SIZE_DTYPES = ("float32", "float16", "bfloat16", "int8")


@dataclass(frozen=True)
class Share:
    name: str
    detail: str
    params: int
    percent: float
    """Rounded to 0.1 so that a table's shares add to exactly 100.0 (largest remainder)."""


@dataclass(frozen=True)
class EfficiencyRow:
    model: str
    claimed_params_m: float
    claimed_rmse: float
    printed_score: float
    audited_params: int | None
    recomputed_score: float | None
    reference: str | None


@dataclass(frozen=True)
class Efficiency:
    formula: str | None
    rows: tuple[EfficiencyRow, ...]
    document: str


@dataclass(frozen=True)
class ModelReport:
    name: str
    description: str
    citation: str
    provenance: tuple[tuple[str, str, str], ...]
    notes: str
    inputs: tuple[str, ...]
    params: ModelAudit
    flops: FlopsAudit
    comparison: Any
    """A :class:`~archaudit.peers.ToolComparison`, or None when not run."""
    claims: tuple[Any, ...]
    """:class:`~archaudit.claims.ClaimsAudit` per claims file."""
    components: tuple[Share, ...]
    layer_types: tuple[Share, ...]
    efficiency: Efficiency | None
    related: tuple[tuple[str, str], ...] = field(default=())
    """(reference name, why): other reports this one cites."""
    reference: bool = True
    """Whether the model is a reference model (its provenance is reported) or the user's own."""
    findings: tuple[Finding, ...] = ()
    """What the audit found, root causes first (:func:`findings`)."""
    command: str = ""
    """The command that regenerates this report (``archaudit report NAME --input ...``)."""
    training: Any = None
    """A :class:`~archaudit.training.TrainingAudit` of one step on the report's input (None when not counted)."""
    memory: Any = None
    """A :class:`~archaudit.memory.MemoryAudit` on the report's input (None when not measured)."""
    estimates: Any = None
    """(dimensions, estimates) for a transformer (:meth:`archaudit.audit.Audit.estimates`), else None."""
    scaling: Any = None
    """A :class:`~archaudit.varied.VariedCosts`: the cost as polynomials in the sequence dimension, or None."""
    scaling_note: str = ""
    """Why there is no scaling (the model's cost is not a function of that dimension, or it has none)."""

    def to_markdown(self, depth: int | None = None) -> str:
        from .render.model import report_markdown

        return report_markdown(self, depth=depth)

    def to_json(self) -> str:
        from .regenerate import dump_json
        from .render.model import report_json

        return dump_json(report_json(self))

    def _repr_markdown_(self) -> str:
        return self.to_markdown(depth=2)

    def sizes_mb(self) -> tuple[tuple[str, float], ...]:
        from .claims.check import DTYPE_BYTES

        return tuple((dtype, self.params.total * DTYPE_BYTES[dtype] / 1e6) for dtype in SIZE_DTYPES)

    def claim_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for audit in self.claims:
            for verdict, n in audit.counts().items():
                counts[verdict] = counts.get(verdict, 0) + n
        return counts


def shares(items: Sequence[tuple[str, str, int]], total: int) -> tuple[Share, ...]:
    """Percentages at 0.1 that add to exactly 100.0: floor each share, then hand the remaining tenths to the
    largest remainders (ties in order of appearance)."""
    if total <= 0:
        return tuple(Share(name, detail, n, 0.0) for name, detail, n in items)
    exact = [n * 1000 / total for _, _, n in items]
    floors = [int(x) for x in exact]
    missing = 1000 - sum(floors)
    order = sorted(range(len(items)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return tuple(Share(name, detail, n, floors[i] / 10) for i, (name, detail, n) in enumerate(items))


def component_shares(model: nn.Module, audit: ModelAudit) -> tuple[Share, ...]:
    items = []
    root = audit.record("")
    if root.params:
        items.append(("(root)", type(model).__name__ + " own parameters", root.params))
    for name, child in model.named_children():
        items.append((name, type(child).__name__, audit.component(name)))
    return shares(items, audit.total)


def layer_type_shares(audit: ModelAudit) -> tuple[Share, ...]:
    per: dict[str, list[int]] = {}
    for record in audit.records:
        if record.params:
            entry = per.setdefault(record.type, [0, 0])
            entry[0] += 1
            entry[1] += record.params
    items = sorted(
        ((t, f"{n} module{'s' if n != 1 else ''}", p) for t, (n, p) in per.items()), key=lambda item: -item[2]
    )
    return shares(items, audit.total)


def efficiency_from(claims: Sequence[Any]) -> Efficiency | None:
    """The documents' efficiency table, with the formula it implies recomputed on audited counts."""
    for audit in claims:
        table = next((r for r in audit.results if r.claim.kind == "score_formula"), None)
        if table is None:
            continue
        scores = {r.claim.id: r for r in audit.results if r.claim.kind == "score"}
        figures = {c.id: c.figure for c in audit.document.claims if c.figure is not None}
        formula = table.actual if isinstance(table.actual, str) else None
        rows = []
        for row in table.claim.get("rows"):
            score = scores.get(row["score"])
            model = score.claim.get("model") if score else None
            audited = None
            if model:
                from .references import baseline_total

                audited = baseline_total(model)[0]
            recomputed = score.actual if (score and audited is not None and isinstance(score.actual, float)) else None
            label = row["score"].removeprefix("eff_").removesuffix("_score")
            rows.append(
                EfficiencyRow(
                    label,
                    figures[row["params"]].value,
                    figures[row["rmse"]].value,
                    figures[row["score"]].value,
                    audited,
                    recomputed,
                    model,
                )
            )
        return Efficiency(formula, tuple(rows), audit.document.source)
    return None


def build_report(
    name: str | nn.Module,
    *,
    inputs: Sequence[Any] | None = None,
    keyword_inputs: Mapping[str, Any] | None = None,
    claims_files: Sequence[str | Path | Document] | None = None,
    compare: bool = True,
    throughput: dict[str, Any] | None = None,
    device: str = "auto",
    registry: FormulaRegistry = REGISTRY,
    claims_target: str | nn.Module | None = None,
    cost: bool = True,
) -> ModelReport:
    """Audit a reference model, a ``module:callable`` TARGET or an ``nn.Module`` completely; ``device`` says where
    to build a TARGET (see :func:`archaudit.targets.build_target`). The model is built once and traced once
    (:func:`archaudit.audit`); the peer tools get that model and a factory for a CPU copy. With ``cost``, one
    training step's MACs and memory are counted too, and for a reference model with a sequence dimension the cost
    as a polynomial in it."""
    from .audit import audit

    # inputs first, MACs below: a large model's memory passes may go to a worker beside its trace
    resolved = audit(
        name,
        *(inputs or ()),
        device=device,
        registry=registry,
        keyword_inputs=keyword_inputs,
        macs=False,
        with_inputs=True,
    )
    built = resolved.target
    entry = built.reference
    model = built.model
    if claims_files is None:
        claims_files = list(entry.claims) if entry is not None else []
    from .claims import check_document

    # claims files are checked against the model they name, or against claims_target (the CLI's --against-target;
    # a model given in memory, which no file can name)
    if claims_target is None and not isinstance(name, str):
        claims_target = name

    def ours(audited: Any, *, memory: bool = True) -> tuple[Any, ...]:
        """What archaudit itself measures beyond the trace, on ``audited`` (an audit with its MACs counted)."""
        claims = tuple(
            check_document(
                path,
                target=claims_target,
                default_inputs=audited.flops.inputs,
                throughput=throughput,
                registry=registry,
            )
            for path in claims_files
        )
        training = audited.training(registry=registry) if cost else None
        measured = audited.memory() if cost and memory else None
        return (claims, training, measured, *(_scaling(built) if cost else (None, "")))

    def traced_then_ours() -> tuple[Any, tuple[Any, ...]]:
        """The trace, then the rest but memory, here: what runs beside a large model's memory passes."""
        counted = resolved.with_macs()
        return counted, ours(counted, memory=False)

    # The peer tools' runs are independent of everything else here: FlopCounterMode on meta goes to a worker beside
    # the rest, which sees the model as it was before the rest ran (archaudit.workers), and the other tools run here
    # before the rest; without workers all of them run first, as before. Without the tools, a model whose passes
    # run on meta and fake tensors (a large one: archaudit.trace.trace_device) has its memory measured in a worker
    # beside the trace and the training audit, which cost about as much; a small one's CPU passes take less than
    # forking a worker.
    comparison = None
    if compare and side_by_side():
        audited = resolved.with_macs()
        tasks: list[Callable[[], Any]] = [
            lambda: (audited.run_tools("cpu"), ours(audited)),
            lambda: audited.run_tools("meta"),
        ]
        here, meta_half = run_all(tasks)
        cpu_half, (claims, training, memory, scaling, scaling_note) = here
        comparison = audited.line_up(meta_half.merged(cpu_half))
    elif (
        cost
        and not compare
        and side_by_side()
        and trace_device(model, [*resolved.inputs, *(t for _, t in resolved.keyword_inputs)]) == "meta"
    ):
        beside: list[Callable[[], Any]] = [traced_then_ours, resolved.memory]
        (audited, (claims, training, _, scaling, scaling_note)), memory = run_all(beside)
    else:
        audited = resolved.with_macs()
        comparison = audited.compare() if compare else None
        claims, training, memory, scaling, scaling_note = ours(audited)
    params, flops = audited.params, audited.flops
    assert flops is not None  # counted above
    given = f"the TARGET {name}" if isinstance(name, str) else "a model given in memory"
    shown = [str(i) for i in flops.inputs]
    command = f"archaudit report {built.name}" + "".join(f" --input {i}" for i in shown if entry is None)
    return ModelReport(
        name=built.name,
        description=entry.description if entry else f"{type(model).__name__}, from {given}",
        citation=entry.citation if entry else "",
        provenance=tuple((a.hyperparameter, repr(a.value), a.fixed_by) for a in entry.provenance) if entry else (),
        notes=entry.notes if entry else "",
        inputs=flops.inputs,
        params=params,
        flops=flops,
        comparison=comparison,
        claims=claims,
        components=component_shares(model, params),
        layer_types=layer_type_shares(params),
        efficiency=efficiency_from(claims),
        related=entry.related if entry else (),
        reference=entry is not None,
        command=command if isinstance(name, str) else "",
        findings=findings(params, flops, claims),
        training=training,
        memory=memory,
        estimates=audited.estimates(training) if training is not None else None,
        scaling=scaling,
        scaling_note=scaling_note,
    )


SEQUENCE = "T"
"""The name a report gives the sequence dimension it varies."""


def _scaling(built: Any) -> tuple[Any, str]:
    """The MACs and columns as polynomials in a reference model's sequence dimension (memory is left to
    ``archaudit flops --vary``, a pass per size), or None and why not."""
    from .errors import ArchauditError, ForwardError
    from .polynomial import parse_varied
    from .varied import vary

    entry = built.reference
    if entry is None or entry.sequence_dim is None or entry.input_shape is None:
        return None, ""
    dims = [str(d) for d in entry.input_shape]
    dims[entry.sequence_dim] = SEQUENCE
    varied = parse_varied(["x".join(dims)], SEQUENCE)
    try:
        return vary(built, varied), ""
    except ForwardError as exc:
        window = entry.input_shape[entry.sequence_dim]
        return None, f"the model runs only at its own window, {SEQUENCE} = {window} ({exc})"
    except ArchauditError as exc:
        return None, f"its cost is not a polynomial in the window {SEQUENCE} ({exc})"


@dataclass(frozen=True)
class Finding:
    """One thing the audit found, in a plain sentence with its figures, and the claims that follow from it (they
    read its figure, or print the same wrong figure again): one root cause, however often it is repeated."""

    headline: str
    root: str
    """The claim id (``document:claim``) at the root, or ``""`` for a finding about the model itself."""
    consequences: tuple[str, ...] = ()


def _figure_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def _headline(result: Any) -> str:
    claim, verdict = result.claim, result.verdict.value
    said = f"{claim.where}: the document says {claim.printed!r} ({claim.kind})"
    if verdict == "contradicts the document":
        return f"{said}, which its own figures contradict: {result.evidence}."
    if verdict == "no such module":
        return f"{said}, about a module the model does not have: {result.evidence}."
    gives = {"reported": "its published source gives", "baseline": "that model as published has"}
    actual = (
        f"; {gives.get(claim.kind, 'the model gives')} {_figure_text(result.actual)}"
        if result.actual is not None
        else ""
    )
    why = " No configuration of the documented family gives it." if verdict == "not reproducible" else ""
    return f"{said}{actual}.{why}"


def _root(parents: Mapping[str, str], cid: str) -> str:
    """The claim a failing claim follows from, following parents to the first that follows from none (a cycle
    stops where it closes)."""
    seen = {cid}
    while cid in parents and parents[cid] not in seen:
        cid = parents[cid]
        seen.add(cid)
    return cid


def findings(params: ModelAudit, flops: FlopsAudit | None, claims: Sequence[Any]) -> tuple[Finding, ...]:
    """What the audit found, root causes first: every failing claim that does not follow from another failing
    claim, with the failing claims that do (they read its figure, directly or through others, or print the same
    figure of the same kind again); then what the model itself hides (parameters in plain containers, work
    nothing counts)."""
    from .claims.loader import claim_references

    out: list[Finding] = []
    for audit in claims:
        failed = {r.claim.id: r for r in audit.results if r.verdict.fails}
        parents: dict[str, str] = {}
        first: dict[tuple[str, float], str] = {}  # (kind, figure) -> the first failing claim that prints it
        for cid, result in failed.items():
            refs = [ref for ref in sorted(claim_references(result.claim)) if ref in failed]
            figure = result.claim.figure
            key = (result.claim.kind, figure.value) if figure is not None else None
            if refs:
                parents[cid] = refs[0]
            elif key is not None and key in first:
                parents[cid] = first[key]
            if key is not None:
                first.setdefault(key, cid)

        groups: dict[str, list[str]] = {}
        for cid in failed:
            groups.setdefault(_root(parents, cid), []).append(cid)
        for top, members in groups.items():
            out.append(
                Finding(
                    headline=_headline(failed[top]),
                    root=f"{audit.document.id}:{top}",
                    consequences=tuple(f"{m} ({failed[m].verdict.value})" for m in members if m != top),
                )
            )
    if params.unregistered:
        hidden = sum(u.params for u in params.unregistered)
        out.append(
            Finding(
                f"{len(params.unregistered)} module(s) sit in plain Python containers ("
                + ", ".join(u.name for u in params.unregistered[:3])
                + (", ..." if len(params.unregistered) > 3 else "")
                + f"): {hidden:,} parameters that .parameters(), optimisers and state_dict() never see.",
                "",
            )
        )
    unsupported = [r.name or "(root)" for r in flops.unsupported] if flops is not None else []
    if unsupported:
        out.append(
            Finding(
                f"The work of {len(unsupported)} module(s) is counted by nothing: {', '.join(unsupported[:5])}.", ""
            )
        )
    return tuple(out)


def report(
    target: str | nn.Module,
    *inputs: Any,
    claims: Sequence[str | Path] | None = None,
    compare: bool = True,
    device: str = "auto",
    registry: FormulaRegistry = REGISTRY,
    keyword_inputs: Mapping[str, Any] | None = None,
    **more_keyword_inputs: Any,
) -> ModelReport:
    """The whole report on a model, as ``archaudit report`` renders it: ``target`` and its inputs as for
    :func:`archaudit.audit`, ``claims`` the claims files to check against it (a reference model's own by default),
    ``compare`` whether to run torchinfo, fvcore and FlopCounterMode beside it. ``.to_markdown(depth=...)`` and
    ``.to_json()`` render it; a notebook shows it folded to depth 2."""
    from .audit import merge_keyword_inputs

    return build_report(
        target,
        inputs=inputs,
        keyword_inputs=merge_keyword_inputs(keyword_inputs, more_keyword_inputs),
        claims_files=claims,
        compare=compare,
        device=device,
        registry=registry,
    )


@dataclass(frozen=True)
class BaselineRow:
    name: str
    description: str
    published: bool
    audited_params: int | None
    macs: int | None
    inputs: str
    claimed: str | None
    """What the documents print for its parameter count."""
    verdict: str | None
    evidence: str


def baselines(reports: Sequence[ModelReport]) -> tuple[BaselineRow, ...]:
    """Every installed reference model side by side: audited parameters and MACs (from its report, when its
    architecture is public) against what the documents print for it: a ``baseline`` claim naming it in any report's
    claims files (the first, in report order), or one of its own ``params_claims``."""
    from .references import references

    by_name = {report.name: report for report in reports}
    claimed: dict[str, ClaimResult] = {}
    for each in reports:
        for audit in each.claims:
            for result in audit.results:
                if result.claim.kind == "baseline":
                    claimed.setdefault(result.claim.get("model"), result)
    rows = []
    for entry in references():
        report = by_name.get(entry.name)
        own = [r for a in (report.claims if report else ()) for r in a.results if r.claim.id in entry.params_claims]
        found = claimed.get(entry.name) or (own[0] if own else None)
        rows.append(
            BaselineRow(
                entry.name,
                entry.description,
                entry.published_architecture,
                report.params.total if report else None,
                report.flops.macs if report else None,
                ", ".join(report.flops.inputs) if report else "",
                found.claim.printed if found else None,
                found.verdict.value if found else None,
                found.evidence if found else entry.notes,
            )
        )
    return tuple(rows)
