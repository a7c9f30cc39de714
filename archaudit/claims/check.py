"""Giving every claim of a document its verdict, with evidence.

Two questions are asked of a claim wherever they apply: does the reference model bear it out (else
*mismatch*), and do the document's own figures bear it out (else *contradicts the document*, which takes
precedence: a document that disagrees with itself is wrong whatever the model). A count the model does not
reproduce goes to the solver, and becomes *not reproducible* when no configuration of the documented family
gives it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from ..errors import InputSpecError
from ..records import ModelAudit
from ..usercode import folded, one_line
from ..walker import audit_params
from .efficiency import ScoreFormula, find_score_formula
from .figures import Figure, FigureError
from .layer_formulas import check_layer_formula
from .loader import ClaimsFileError
from .records import DTYPE_BYTES as DTYPE_BYTES  # also importable from here, as report_data imports it
from .records import KINDS, Claim, ClaimResult, Document, Verdict
from .safe_eval import UnsafeExpression, evaluate
from .solver import Family, SolverResult, solve


class _UnknownFigure(LookupError):
    """A claim refers to a claim id that has no figure (reported as bad input, naming the referring claim)."""


@dataclass
class Context:
    document: Document
    audit: ModelAudit
    build: Callable[..., torch.nn.Module]
    """The reference model's builder (hyperparameters as keyword arguments)."""
    model: torch.nn.Module | None = None
    """The built reference model (for attribute claims)."""
    families: dict[str, Callable[[], Family]] = field(default_factory=dict)
    baseline_totals: Callable[[str], tuple[int | None, str]] | None = None
    throughput: dict[str, Any] | None = None
    """A measurement on the machine at hand: {"samples_per_s": float, "hardware": str}, if one was made."""
    score_formula: ScoreFormula | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """The reference model's documented configuration (what a scaling claim's values are bounded by)."""
    inputs: tuple[str, ...] = ()
    """The input MAC and FLOP claims are checked at, unless a claim names its own (``--input`` syntax)."""
    registry: Any = None
    """The layer rules to count MACs with (:data:`archaudit.REGISTRY` when None)."""
    fitted: frozenset[str] = frozenset()
    """Claim ids the reference model was fitted to: a verdict of holds for one says so (holds by construction)."""
    target: str = ""
    """The TARGET the claims are checked against when not the document's own ``model``."""
    _macs: dict[tuple[str, ...], Any] = field(default_factory=dict)
    _others: dict[Any, Document] = field(default_factory=dict)
    """Other claims files that cross claims name, each loaded once (by resolved path)."""
    _totals: dict[str, int] = field(default_factory=dict)
    """Parameter totals of the other documents' reference models, each built once."""

    @property
    def model_name(self) -> str:
        return self.target or self.document.model

    _figures: dict[str, Figure] = field(default_factory=dict)
    _solved: dict[tuple[str, str], tuple[Family, SolverResult]] = field(default_factory=dict)

    def figure(self, claim_id: str) -> Figure:
        if not self._figures:
            self._figures = {c.id: c.figure for c in self.document.claims if c.figure is not None}
        try:
            return self._figures[claim_id]
        except (KeyError, TypeError):
            raise _UnknownFigure(f"{claim_id!r} names no claim with a figure") from None

    def names(self) -> dict[str, float]:
        return {c.id: c.figure.value for c in self.document.claims if c.figure is not None}

    def macs(self, claim: Claim) -> Any:
        """The MAC audit of the model at the claim's input (else the document's), traced once per input."""
        from ..inputs import parse_inputs
        from ..macs import audit_macs
        from ..registry import REGISTRY

        given = claim.get("input")
        texts = tuple([given] if isinstance(given, str) else given or self.inputs)
        if not texts:
            raise ClaimsFileError(
                f"{self.document.path}:{claim.line}: claim {claim.id!r} ({claim.kind}): a MAC or FLOP figure is "
                "for an input: give input = '1x3x224x224' in [document] or in the claim (or --input)"
            )
        if texts not in self._macs:
            assert self.model is not None
            positional, named = parse_inputs(list(texts))
            self._macs[texts] = audit_macs(
                self.model, positional, keyword_inputs=named, registry=self.registry or REGISTRY
            )
        return self._macs[texts]


def _shown(ctx: Context, expression: str) -> str:
    """``expression`` with every claim id replaced by the figure as the document prints it."""
    printed = {c.id: c.printed for c in ctx.document.claims if c.printed}
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: printed.get(m.group(0), m.group(0)), expression)


def _n(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    return f"{float(value):.4g}"


def _compare(claim: Claim, actual: float, evidence: str, **extra: Any) -> ClaimResult:
    figure = claim.figure
    assert figure is not None
    if figure.admits(actual):
        return ClaimResult(claim, Verdict.HOLDS, actual, evidence, **extra)
    return ClaimResult(claim, Verdict.MISMATCH, actual, evidence, difference=actual - figure.value, **extra)


def _self_check(ctx: Context, claim: Claim, result: ClaimResult) -> ClaimResult:
    """Apply the claim's ``implied`` expression: what the document's own figures make of it."""
    expression = claim.get("implied")
    if not expression or claim.figure is None:
        return result
    implied = float(evaluate(expression, ctx.names()))
    if _figure(claim).admits(implied):
        note = f"; the document's own figures agree ({_shown(ctx, expression)} = {_n(implied)})"
        return ClaimResult(
            claim, result.verdict, result.actual, result.evidence + note, result.difference, result.solver
        )
    return ClaimResult(
        claim,
        Verdict.CONTRADICTS,
        result.actual,
        f"the document's own figures give {_shown(ctx, expression)} = {_n(implied)}, not {claim.printed}; "
        + result.evidence,
        result.difference,
        result.solver,
    )


def _components(ctx: Context, claim: Claim) -> tuple[int | None, str]:
    names = claim.get("components") or [claim.get("component")]
    paths = [p for name in names for p in ctx.document.components[name]]
    parts = []
    for path in paths:
        try:
            parts.append((path, ctx.audit.component(path)))
        except KeyError:
            return None, f"module path {path!r} is not in {ctx.model_name}"
    total = sum(v for _, v in parts)
    return total, " + ".join(f"{p} ({v:,})" for p, v in parts) + f" = {total:,}"


def _solve(ctx: Context, family_name: str, figure: Figure) -> tuple[Family, SolverResult]:
    key = (family_name, figure.text)
    if key not in ctx._solved:
        ctx._solved[key] = (ctx.families[family_name](), solve(ctx.families[family_name](), figure))
    return ctx._solved[key]


MAX_SCALING_FACTOR = 16
"""A scaling claim builds the model at most at this multiple of the hyperparameter's documented value."""


def _scaling_value(ctx: Context, claim: Claim, where: str, name: str, key: str) -> int:
    """A scaling claim's ``from``/``to``: a positive integer, at most MAX_SCALING_FACTOR x the value the builder
    documents for it, so that no claims file can make the tool build an arbitrarily large model."""
    value = claim.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ClaimsFileError(f"{where}: {key} = {value!r} must be a positive integer")
    documented = ctx.hyperparameters.get(name)
    if isinstance(documented, bool) or not isinstance(documented, int) or documented < 1:
        raise ClaimsFileError(
            f"{where}: {ctx.model_name} documents no integer value for hyperparameter {name!r} to scale"
        )
    if value > MAX_SCALING_FACTOR * documented:
        raise ClaimsFileError(
            f"{where}: {key} = {value:,} is more than {MAX_SCALING_FACTOR}x the documented "
            f"{name} ({documented:,}); a scaling claim builds at most {MAX_SCALING_FACTOR}x"
        )
    return value


def _count(ctx: Context, claim: Claim, actual: int, evidence: str) -> ClaimResult:
    """A count: compared with the model; when it does not match, searched for in the documented family (and,
    for an exact figure, in the wider families the claims file names after it)."""
    result = _compare(claim, actual, evidence)
    names = claim.get("family") or ctx.document.families.get(claim.kind)
    names = [names] if isinstance(names, str) else list(names or [])
    unknown = [n for n in names if n not in ctx.families]
    if unknown:
        raise ClaimsFileError(
            f"{ctx.document.path}:{claim.line}: claim {claim.id!r}: no model family "
            f"{unknown[0]!r}; known: {', '.join(sorted(ctx.families))}"
        )
    if result.verdict is not Verdict.MISMATCH or not names:
        return result
    family, solved = _solve(ctx, names[0], _figure(claim))
    wider = ""
    if _figure(claim).tolerance == 0:
        for other in names[1:]:
            other_family, other_solved = _solve(ctx, other, _figure(claim))
            if other_solved.exact == 0:
                wider += (
                    f"; nor does any of the {other_solved.configurations:,} configurations of "
                    f"{other_family.name}: {other_solved.argument}"
                )
            else:
                wider += (
                    f"; {other_solved.exact:,} configurations of {other_family.name} would, e.g. "
                    f"{other_solved.nearest[0].describe(other_family)}"
                )
    if solved.exact == 0:
        return ClaimResult(
            claim,
            Verdict.NOT_REPRODUCIBLE,
            actual,
            f"{evidence}; no configuration of {family.name} ({solved.configurations:,} "
            f"searched) gives it: {solved.argument}{wider}",
            result.difference,
            solved,
        )
    example = solved.nearest[0]
    return ClaimResult(
        claim,
        Verdict.MISMATCH,
        actual,
        f"{evidence}; {solved.exact:,} of {solved.configurations:,} configurations of "
        f"{family.name} would give it, e.g. {example.describe(family)} ({example.total:,})",
        result.difference,
        solved,
    )


def _figure(claim: Claim) -> Figure:
    """The claim's figure: the loader gives one to every claim of a kind that is checked against a number."""
    if claim.figure is None:
        raise ClaimsFileError(f"claim {claim.id!r} ({claim.kind}) has no figure to check against")
    return claim.figure


Check = Callable[[Context, Claim], ClaimResult]
"""One claim kind's check: the verdict that the model (or the document's own figures) gives the claim."""


@dataclass(frozen=True)
class Checker:
    """A claim kind's check, and whether :func:`_check` then applies the claim's ``implied`` expression to it."""

    check: Check
    self_check: bool = True
    """False where the check itself is against the document's own figures (sum, derived), or applies ``implied``
    only on one of its branches (reported)."""


CHECKERS: dict[str, Checker] = {}
"""Each claim kind's checker, registered once by :func:`_checks` (the kinds are :data:`~.records.KINDS`)."""


def _checks(*kinds: str, self_check: bool = True) -> Callable[[Check], Check]:
    """Register the decorated function as the checker of ``kinds``: refused for a kind that is not in
    :data:`~.records.KINDS`, or that has a checker already."""

    def register(check: Check) -> Check:
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError(
                    f"archaudit.claims.check: {check.__name__} checks claim kind {kind!r}, "
                    f"which is not one of {', '.join(KINDS)}"
                )
            if kind in CHECKERS:
                raise ValueError(
                    f"archaudit.claims.check: claim kind {kind!r} has a checker already "
                    f"({CHECKERS[kind].check.__name__}); {check.__name__} is a second"
                )
            CHECKERS[kind] = Checker(check, self_check)
        return check

    return register


def _parameter_count(ctx: Context, claim: Claim, actual: int) -> ClaimResult:
    evidence = f"sum of numel() over every parameter of {ctx.model_name}, each tensor once: {actual:,}"
    return _count(ctx, claim, actual, evidence)


@_checks("total")
def _check_total(ctx: Context, claim: Claim) -> ClaimResult:
    return _parameter_count(ctx, claim, ctx.audit.total)


@_checks("trainable")
def _check_trainable(ctx: Context, claim: Claim) -> ClaimResult:
    return _parameter_count(ctx, claim, ctx.audit.trainable)


@_checks("component")
def _check_component(ctx: Context, claim: Claim) -> ClaimResult:
    actual, evidence = _components(ctx, claim)
    if actual is None:
        return ClaimResult(claim, Verdict.MISSING, None, evidence)
    return _count(ctx, claim, actual, evidence)


@_checks("percentage")
def _check_percentage(ctx: Context, claim: Claim) -> ClaimResult:
    part, evidence = _components(ctx, claim)
    if part is None:
        return ClaimResult(claim, Verdict.MISSING, None, evidence)
    share = 100 * part / ctx.audit.total
    return _compare(claim, share, f"{part:,} / {ctx.audit.total:,} = {share:.2f}% ({evidence})")


def _check_readings(ctx: Context, claim: Claim, value: float, candidates: list[str]) -> ClaimResult:
    """A derived figure with several readings of the document's figures: it holds when one of them gives it."""
    values = {c: float(evaluate(c, ctx.names())) for c in candidates}
    readings = "; ".join(f"{_shown(ctx, c)} = {_n(v)}" for c, v in values.items())
    matching = [v for v in values.values() if _figure(claim).admits(v)]
    if matching:
        return ClaimResult(claim, Verdict.HOLDS, matching[0], readings)
    return ClaimResult(
        claim, Verdict.CONTRADICTS, value, "no reading of the document's own figures gives it: " + readings
    )


@_checks("sum", "derived", self_check=False)
def _check_derived(ctx: Context, claim: Claim) -> ClaimResult:
    """A figure computed from others of the document (``expression``, or the sum of ``terms``)."""
    expression = claim.get("expression") or " + ".join(claim.get("terms"))
    value = float(evaluate(expression, ctx.names()))
    candidates = claim.get("candidates")
    if candidates:
        return _check_readings(ctx, claim, value, candidates)
    text = f"{_shown(ctx, expression)} = {_n(value)} from the document's own figures"
    if _figure(claim).admits(value):
        return ClaimResult(claim, Verdict.HOLDS, value, text)
    return ClaimResult(claim, Verdict.CONTRADICTS, value, text, value - _figure(claim).value)


@_checks("arithmetic")
def _check_arithmetic(ctx: Context, claim: Claim) -> ClaimResult:
    fraction = evaluate(claim.get("expression"))
    exact = fraction.denominator == 1 and _figure(claim).tolerance == 0
    text = f"{claim.get('expression')} = {_n(float(fraction))}"
    holds = fraction == Fraction(_figure(claim).value) if exact else _figure(claim).admits(float(fraction))
    if holds and claim.get("component"):
        actual, evidence = _components(ctx, claim)
        if actual is None:
            return ClaimResult(claim, Verdict.MISSING, None, evidence)
        return _compare(claim, actual, f"{text}; in the model: {evidence}")
    return ClaimResult(
        claim,
        Verdict.HOLDS if holds else Verdict.MISMATCH,
        float(fraction),
        text,
        None if holds else float(fraction) - _figure(claim).value,
    )


@_checks("formula")
def _check_formula(ctx: Context, claim: Claim) -> ClaimResult:
    verdict = check_layer_formula(claim.get("layer"), claim.get("expression"))
    scope = f" ({verdict.scope})" if verdict.scope else ""
    if verdict.holds_in_general:
        return ClaimResult(
            claim,
            Verdict.HOLDS,
            "holds in general",
            f"{verdict.layer}: {verdict.expression} == numel() on all {verdict.examples} drawn configurations{scope}",
        )
    if verdict.never_holds:
        return ClaimResult(
            claim, Verdict.MISMATCH, "does not hold", f"{verdict.layer}: {'; '.join(verdict.counterexamples)}"
        )
    conditions = ", ".join(verdict.conditions)
    return ClaimResult(
        claim,
        Verdict.HOLDS,
        f"holds only when {conditions}",
        f"{verdict.layer}: {verdict.expression} == numel() on every one of {verdict.examples} "
        f"drawn configurations with {conditions}; counterexamples: "
        f"{'; '.join(verdict.counterexamples)}{scope}",
    )


def _built_at(ctx: Context, where: str, name: str, start: int, end: int) -> tuple[ModelAudit, ModelAudit]:
    """The reference model's parameters with hyperparameter ``name`` at ``start`` and at ``end`` (on meta)."""
    try:
        with torch.device("meta"):
            return audit_params(ctx.build(**{name: start})), audit_params(ctx.build(**{name: end}))
    except TypeError as exc:  # the builder refused the keyword: a mistake in the claims file
        raise ClaimsFileError(
            f"{where}: {ctx.model_name} does not take hyperparameter {name!r} ({folded(exc, 200)})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the builder refused the value: any error it raises is reported
        raise ClaimsFileError(
            f"{where}: {ctx.model_name} cannot be built with {name} = {start} or {end}: {one_line(exc, 200)}"
        ) from None


@_checks("scaling")
def _check_scaling(ctx: Context, claim: Claim) -> ClaimResult:
    paths = ctx.document.components[claim.get("component")]
    missing = [p for p in paths if p not in dict(ctx.model.named_modules())] if ctx.model is not None else []
    if missing:
        return ClaimResult(claim, Verdict.MISSING, None, f"module path {missing[0]!r} is not in {ctx.model_name}")
    name = claim.get("hyperparameter")
    where = f"{ctx.document.path}:{claim.line}: claim {claim.id!r}"
    start, end = (_scaling_value(ctx, claim, where, name, key) for key in ("from", "to"))
    before, after = _built_at(ctx, where, name, start, end)
    a = sum(before.component(p) for p in paths)
    b = sum(after.component(p) for p in paths)
    if a == 0:
        raise ClaimsFileError(
            f"{where}: component {claim.get('component')!r} has no parameters at "
            f"{name} = {start}, so a scaling ratio is undefined"
        )
    ratio = b / a
    return _compare(
        claim,
        ratio,
        f"{claim.get('hyperparameter')} {claim.get('from')} -> {claim.get('to')}: "
        f"{claim.get('component')} {a:,} -> {b:,}, ratio {ratio:.3f}",
    )


@_checks("size")
def _check_size(ctx: Context, claim: Claim) -> ClaimResult:
    total = ctx.audit.total
    per = DTYPE_BYTES[claim.get("dtype")]
    size_mb = total * per / 1e6
    # the figure in its own unit ("1.5 GB", "800 KB"; MB otherwise): compared in that unit, its rounding kept
    unit, scale = {"gigabytes": ("GB", 1e3), "kilobytes": ("KB", 1e-3)}.get(_figure(claim).unit, ("MB", 1.0))
    return _compare(
        claim,
        size_mb / scale,
        f"{total:,} parameters x {per} B ({claim.get('dtype')}) = "
        f"{f'{size_mb:.2f}' if unit == 'MB' else f'{size_mb / scale:.3g}'} {unit} "
        f"({total * per / 2**20:.2f} MiB)",
    )


def _audited(ctx: Context, claim_id: str) -> tuple[float | None, str]:
    """The audited counterpart of a claim's figure, for claims that have one (a total, a trainable count, a
    component, a baseline's published total), with how it was found; (None, why) otherwise."""
    claim = next(c for c in ctx.document.claims if c.id == claim_id)
    if claim_id in ctx.fitted:  # a reference model built to match this figure would only repeat it
        return None, f"{claim_id} is a figure a reference model was fitted to"
    if claim.kind == "total":
        return ctx.audit.total, f"{ctx.model_name}'s total"
    if claim.kind == "trainable":
        return ctx.audit.trainable, f"{ctx.model_name}'s trainable total"
    if claim.kind == "component":
        return _components(ctx, claim)
    if claim.kind == "baseline" and ctx.baseline_totals is not None:
        return ctx.baseline_totals(claim.get("model"))
    return None, f"a {claim.kind} figure has no audited counterpart"


def _values(ctx: Context, ids: list[str], audited: bool) -> tuple[dict[str, float], list[str]]:
    """Each claim's figure, or with ``audited`` its audited counterpart where it has one; and the ids that have
    one."""
    values = {cid: ctx.figure(cid).value for cid in ids}
    found = []
    if audited:
        for cid in ids:
            value, _ = _audited(ctx, cid)
            if value is not None:
                values[cid] = float(value)
                found.append(cid)
    return values, found


def _rank(values: dict[str, float], label: str, position: int, order: str) -> tuple[bool, str]:
    """Whether ``label`` stands at ``position`` (1 = first) in ``values`` sorted by ``order``: ties keep the
    claims file's order, and a label tied with the row at that position stands there too."""
    ranked = sorted(values, key=lambda cid: (-values[cid] if order == "max" else values[cid], list(values).index(cid)))
    return values[label] == values[ranked[position - 1]], ranked[position - 1]


@_checks("ranking")
def _check_ranking(ctx: Context, claim: Claim) -> ClaimResult:
    among, label = list(claim.get("among")), claim.get("label")
    position, order = claim.get("position", 1), claim.get("order", "max")
    labels = claim.get("labels") or [next(c.where for c in ctx.document.claims if c.id == cid) for cid in among]
    names = dict(zip(among, labels, strict=False))
    place = "the first" if position == 1 else f"number {position}"
    what = f"{place} by {'largest' if order == 'max' else 'smallest'}"

    def listing(values: dict[str, float]) -> str:
        return "; ".join(f"{names[cid]}: {_n(v)}" for cid, v in values.items())

    printed, _ = _values(ctx, among, audited=False)
    holds, there = _rank(printed, label, position, order)
    if not holds:
        return ClaimResult(
            claim,
            Verdict.CONTRADICTS,
            names[there],
            f"in the document's own figures {names[label]} is not {what}, {names[there]} is: {listing(printed)}",
        )
    if not claim.get("audited"):
        return ClaimResult(claim, Verdict.HOLDS, names[label], f"{names[label]} is {what} of {listing(printed)}")
    audited, swapped = _values(ctx, among, audited=True)
    holds, there = _rank(audited, label, position, order)
    if not swapped:
        return ClaimResult(
            claim,
            Verdict.NOT_CHECKABLE,
            names[label],
            f"{names[label]} is {what} of the document's {listing(printed)}; none of these figures has an "
            "audited counterpart",
        )
    evidence = f"audited: {listing(audited)}" + (
        f" ({len(among) - len(swapped)} as printed, with no audited figure independent of the document)"
        if len(swapped) < len(among)
        else ""
    )
    if holds:
        return ClaimResult(claim, Verdict.HOLDS, names[label], f"{names[label]} is {what}; {evidence}")
    return ClaimResult(
        claim,
        Verdict.MISMATCH,
        names[there],
        f"it holds in the document's figures, but in the audited ones {names[there]} is {what}, "
        f"not {names[label]}; {evidence}",
    )


def _misplaced(
    values: dict[str, float], label: str, below: list[str], above: list[str], figures: Callable[[str], Figure]
) -> list[str]:
    """The figures ``label``'s value does not lie above (``below``) or under (``above``), each compared at the
    edge of its printed rounding or range: "~8M" is at least 7.5M, "~12-15M" at least 11.5M."""
    value, out = values[label], []
    for cid in below:
        edge = values[cid] if values[cid] != figures(cid).value else figures(cid).high
        if not value > edge:
            out.append(f"not above {figures(cid).text if values[cid] == figures(cid).value else _n(values[cid])}")
    for cid in above:
        edge = values[cid] if values[cid] != figures(cid).value else figures(cid).low
        if not value < edge:
            out.append(f"not below {figures(cid).text if values[cid] == figures(cid).value else _n(values[cid])}")
    return out


@_checks("between")
def _check_between(ctx: Context, claim: Claim) -> ClaimResult:
    """The label's figure lies above every ``below`` figure and under every ``above`` one ("a sweet spot
    between the smaller and the larger models", "smaller than transformer-based alternatives")."""
    label, below, above = claim.get("label"), list(claim.get("below") or []), list(claim.get("above") or [])
    ids = [label, *below, *above]

    def shown(values: dict[str, float]) -> str:
        return ", ".join(
            f"{cid} {ctx.figure(cid).text if values[cid] == ctx.figure(cid).value else _n(values[cid])}" for cid in ids
        )

    printed, _ = _values(ctx, ids, audited=False)
    wrong = _misplaced(printed, label, below, above, ctx.figure)
    if wrong:
        return ClaimResult(
            claim,
            Verdict.CONTRADICTS,
            printed[label],
            f"the document's own {ctx.figure(label).text} is {', '.join(wrong)} ({shown(printed)})",
        )
    if not claim.get("audited"):
        return ClaimResult(claim, Verdict.HOLDS, printed[label], f"{shown(printed)}: in order")
    audited, found = _values(ctx, ids, audited=True)
    if not found:
        return ClaimResult(
            claim,
            Verdict.NOT_CHECKABLE,
            printed[label],
            f"in order as printed ({shown(printed)}); none of these figures has an audited counterpart",
        )
    wrong = _misplaced(audited, label, below, above, ctx.figure)
    if not wrong:
        return ClaimResult(claim, Verdict.HOLDS, audited[label], f"in order as audited: {shown(audited)}")
    return ClaimResult(
        claim,
        Verdict.MISMATCH,
        audited[label],
        f"in order as printed, but the audited {_n(audited[label])} (for {ctx.figure(label).text}) is "
        f"{', '.join(wrong)}: {shown(audited)}",
    )


@_checks("score_formula")
def _check_score_formula(ctx: Context, claim: Claim) -> ClaimResult:
    """Finds the formula behind a table's scores, among the claims file's candidates, which the table's score
    claims are then checked with."""
    rows = [
        (ctx.figure(r["params"]).value, ctx.figure(r["rmse"]).value, ctx.figure(r["score"])) for r in claim.get("rows")
    ]
    formula = find_score_formula(claim.get("formulas"), rows)
    if formula is None:
        return ClaimResult(
            claim,
            Verdict.NOT_REPRODUCIBLE,
            None,
            f"none of the {len(claim.get('formulas'))} candidate formulas reproduces every printed score",
        )
    ctx.score_formula = formula
    return ClaimResult(
        claim,
        Verdict.HOLDS,
        formula.text,
        f"Score = {formula.text} reproduces every row: "
        + ", ".join(f"{_n(formula.score(p, r))} for {s.text}" for p, r, s in rows)
        + "; the document never states it",
    )


@_checks("score")
def _check_score(ctx: Context, claim: Claim) -> ClaimResult:
    formula = ctx.score_formula
    if formula is None:
        return ClaimResult(claim, Verdict.NOT_CHECKABLE, None, "no score formula was found for this table")
    params, rmse = ctx.figure(claim.get("params")).value, ctx.figure(claim.get("rmse")).value
    printed_inputs = formula.score(params, rmse)
    if not _figure(claim).admits(printed_inputs):
        return ClaimResult(
            claim,
            Verdict.CONTRADICTS,
            printed_inputs,
            f"{formula.text} with the printed inputs gives {_n(printed_inputs)}",
        )
    model = claim.get("model")
    audited = ctx.baseline_totals(model) if (model and ctx.baseline_totals) else (None, "")
    if audited[0] is None:
        return ClaimResult(
            claim,
            Verdict.HOLDS,
            printed_inputs,
            f"{formula.text} with the printed inputs gives {_n(printed_inputs)}; "
            + (audited[1] or "no audited parameter count to recompute it with"),
        )
    recomputed = formula.score(audited[0] / 1e6, rmse)
    return _compare(
        claim,
        recomputed,
        f"with the audited {audited[0]:,} parameters ({audited[1]}): {formula.text} = "
        f"{_n(recomputed)}; with the printed {params:g}M it is {_n(printed_inputs)}",
    )


@_checks("baseline")
def _check_baseline(ctx: Context, claim: Claim) -> ClaimResult:
    if ctx.baseline_totals is None:
        return ClaimResult(claim, Verdict.NOT_CHECKABLE, None, "no reference models available")
    total, how = ctx.baseline_totals(claim.get("model"))
    if total is None:
        return ClaimResult(claim, Verdict.NOT_CHECKABLE, None, how)
    return _compare(claim, total, how)


@_checks("reported", self_check=False)
def _check_reported(ctx: Context, claim: Claim) -> ClaimResult:
    """A published figure is compared as published; without one, only ``implied`` (if any) checks the claim."""
    published = claim.get("published")
    if published is None:
        reason = claim.get("reason", "a result of training and testing, which a structural audit cannot repeat")
        return _self_check(ctx, claim, ClaimResult(claim, Verdict.NOT_CHECKABLE, None, reason))
    return _compare(claim, float(published), f"published: {published} ({claim.get('published_source')})")


@_checks("attribute")
def _check_attribute(ctx: Context, claim: Claim) -> ClaimResult:
    modules = dict(ctx.model.named_modules()) if ctx.model is not None else {}
    path = claim.get("module")
    if path not in modules:
        return ClaimResult(claim, Verdict.MISSING, None, f"module path {path!r} is not in {ctx.model_name}")
    module = modules[path]
    if claim.get("count_type"):
        wanted = claim.get("count_type")
        actual = sum(type(m).__name__ == wanted for m in module.modules())
        return _compare(claim, actual, f"{actual} {wanted} module(s) under {path}")
    name = claim.get("attribute")
    attribute = getattr(module, name, None)
    if not isinstance(attribute, (int, float)) or isinstance(attribute, bool):
        return ClaimResult(claim, Verdict.MISSING, None, f"{path} ({type(module).__name__}) has no numeric {name!r}")
    return _compare(claim, attribute, f"{path}.{name} = {attribute}")


@_checks("throughput")
def _check_throughput(ctx: Context, claim: Claim) -> ClaimResult:
    if not ctx.throughput:
        return ClaimResult(
            claim,
            Verdict.NOT_CHECKABLE,
            None,
            "hardware-dependent: no measurement on this machine was given (measure one with `archaudit bench`)",
        )
    value = ctx.throughput["samples_per_s"]
    return _compare(
        claim,
        value,
        f"measured {value:,.0f} samples/s on {ctx.throughput['hardware']}; holds only for that hardware",
    )


def _conventions(flops: Any) -> list[tuple[str, int]]:
    """What a printed MAC or FLOP figure may be, by the conventions papers use: MACs, 2 x MACs (FLOPs), and
    each with the bias additions counted as MACs (what torchinfo and ptflops count)."""
    macs, bias = flops.macs, flops.counts.bias
    return [
        ("MACs", macs),
        ("FLOPs (2 x MACs)", 2 * macs),
        ("MACs with bias adds", macs + bias),
        ("FLOPs with bias adds (2 x (MACs + bias adds))", 2 * (macs + bias)),
    ]


def _check_work(ctx: Context, claim: Claim, own: str) -> ClaimResult:
    """A MAC or FLOP figure: holds when it is the kind's own convention (``own``) at the input; otherwise the
    evidence says which convention, if any, the printed figure matches, so that a factor of 2 or the bias adds
    are named rather than reported as a bare mismatch."""
    flops = ctx.macs(claim)
    figure = _figure(claim)
    conventions = _conventions(flops)
    actual = dict(conventions)[own]
    at = f"at input {', '.join(flops.inputs)}"
    listed = "; ".join(f"{name} {value:,}" for name, value in conventions)
    matches = [name for name, value in conventions if figure.admits(value)]
    if own in matches:
        return ClaimResult(claim, Verdict.HOLDS, actual, f"{own} {at}: {actual:,} ({listed})")
    if matches:
        return ClaimResult(
            claim,
            Verdict.MISMATCH,
            actual,
            f"the printed figure is {matches[0]} {at}, not {own}: {listed}",
            difference=actual - figure.value,
        )
    return ClaimResult(
        claim,
        Verdict.MISMATCH,
        actual,
        f"no convention gives it {at}: {listed}",
        difference=actual - figure.value,
    )


@_checks("macs")
def _check_macs(ctx: Context, claim: Claim) -> ClaimResult:
    return _check_work(ctx, claim, "MACs")


@_checks("flops")
def _check_flops(ctx: Context, claim: Claim) -> ClaimResult:
    return _check_work(ctx, claim, "FLOPs (2 x MACs)")


@_checks("frozen")
def _check_frozen(ctx: Context, claim: Claim) -> ClaimResult:
    frozen = ctx.audit.frozen
    return _compare(claim, frozen, f"parameters with requires_grad=False, each tensor once: {frozen:,}")


@_checks("shared")
def _check_shared(ctx: Context, claim: Claim) -> ClaimResult:
    shared = ctx.audit.shared
    elements = sum(s.params for s in shared)
    where = "; ".join(" = ".join(s.names) for s in shared) or "no tensor is held at two places"
    return _compare(
        claim, elements, f"elements of the tensors held at more than one place, each once: {elements:,} ({where})"
    )


@_checks("count")
def _check_module_count(ctx: Context, claim: Claim) -> ClaimResult:
    assert ctx.model is not None
    kind = claim.get("count_type")
    found = [name for name, module in ctx.model.named_modules() if type(module).__name__ == kind]
    shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
    return _compare(claim, len(found), f"modules of type {kind}: {len(found)}" + (f" ({shown})" if found else ""))


@_checks("leaf_only")
def _check_leaf_only(ctx: Context, claim: Claim) -> ClaimResult:
    """What a counter that sums leaf modules only reports, for the model or for one [components] entry."""
    component = claim.get("component")
    if component is None:
        records, total, of = list(ctx.audit.records), ctx.audit.total, "the total"
    else:
        paths = ctx.document.components[component]
        missing = [p for p in paths if p not in {r.name for r in ctx.audit.records}]
        if missing:
            return ClaimResult(claim, Verdict.MISSING, None, f"module path {missing[0]!r} is not in {ctx.model_name}")
        under = [r for r in ctx.audit.records if any(r.name == p or r.name.startswith(p + ".") for p in paths)]
        records, total, of = under, sum(r.params for r in under), f"{component} ({', '.join(paths)})"
    leaf = sum(r.params for r in records if r.leaf)
    held = [r.name for r in records if not r.leaf and r.params]
    return _compare(
        claim,
        leaf,
        f"what a counter that sums leaf modules only reports for {of}: {leaf:,}, missing {total - leaf:,} "
        f"held by modules with children{' (' + ', '.join(n or '(root)' for n in held[:3]) + ')' if held else ''}; "
        "counted properly, "
        f"{total:,}",
    )


@_checks("cross", self_check=False)
def _check_cross(ctx: Context, claim: Claim) -> ClaimResult:
    """A figure held to the same quantity in another document: the two contradict each other when the figures
    disagree beyond their rounding, or when they agree while the models the two documents describe differ beyond
    it (one figure printed for two architectures); for parameter counts, each document's model is counted."""
    from pathlib import Path

    from .loader import load_claims

    file, _, other_id = claim.get("other").rpartition(":")
    path = Path(ctx.document.path).parent / file
    where = f"{ctx.document.path}:{claim.line}: claim {claim.id!r} (cross)"
    if path.resolve() not in ctx._others:
        try:
            ctx._others[path.resolve()] = load_claims(path)
        except ClaimsFileError as exc:
            raise ClaimsFileError(f"{where}: other = {claim.get('other')!r}: {exc}") from None
    other_document = ctx._others[path.resolve()]
    other = next((c for c in other_document.claims if c.id == other_id), None)
    if other is None or other.figure is None:
        raise ClaimsFileError(f"{where}: {path} has no claim {other_id!r} with a figure")
    mine, theirs = _figure(claim), other.figure
    agree = mine.admits(theirs.value) or theirs.admits(mine.value)
    said = f"{other_document.id} prints {other.printed!r} ({other.where})"
    if not agree:
        return ClaimResult(
            claim, Verdict.CONTRADICTS, theirs.value, f"{said}; this document prints {claim.printed!r}", None
        )
    if other.kind in ("total", "trainable") and other_document.model != ctx.model_name:
        from ..references import get_reference

        try:
            entry = get_reference(other_document.model)
        except LookupError:
            entry = None
        if entry is not None and entry.builder is not None:
            if entry.name not in ctx._totals:
                with torch.device("meta"):
                    ctx._totals[entry.name] = audit_params(entry.build()).total
            other_total = ctx._totals[entry.name]
            mine_total = ctx.audit.total
            if abs(other_total - mine_total) > 2 * mine.tolerance:  # no one figure rounds to both
                return ClaimResult(
                    claim,
                    Verdict.CONTRADICTS,
                    theirs.value,
                    f"{said} for {other_document.model} ({other_total:,} parameters), and this document prints "
                    f"{claim.printed!r} for {ctx.model_name} ({mine_total:,}): one figure for two models that "
                    "differ",
                    None,
                )
    return ClaimResult(claim, Verdict.HOLDS, theirs.value, f"{said}, which agrees with {claim.printed!r}")


def _check(ctx: Context, claim: Claim) -> ClaimResult:
    """The claim's kind's checker, then what every kind shares: the claim's ``implied`` expression (where the
    checker does not apply it itself) and its note."""
    checker = CHECKERS.get(claim.kind)
    if checker is None:
        raise ValueError(f"unhandled claim kind {claim.kind!r}")
    result = checker.check(ctx, claim)
    if checker.self_check:
        result = _self_check(ctx, claim, result)
    if claim.id in ctx.fitted and result.verdict is Verdict.HOLDS:
        result = dataclasses.replace(
            result, evidence=f"holds by construction (the reference model was fitted to this figure): {result.evidence}"
        )
    if claim.get("note"):
        result = dataclasses.replace(result, evidence=f"{result.evidence}. {claim.get('note')}")
    return result


def check_claims(ctx: Context, step: Callable[[str], None] | None = None) -> tuple[ClaimResult, ...]:
    """Verdicts in the document's order (score formulas are found first: score claims use them); ``step`` is told
    each claim as its check begins (progress)."""
    ordered = sorted(ctx.document.claims, key=lambda c: c.kind != "score_formula")
    results: dict[str, ClaimResult] = {}
    for claim in ordered:
        if step is not None:
            step(f"{claim.id} ({claim.kind})")
        try:
            results[claim.id] = _check(ctx, claim)
        except ClaimsFileError:
            raise
        except (UnsafeExpression, FigureError, _UnknownFigure, InputSpecError) as exc:  # the claim's text: name it
            raise ClaimsFileError(
                f"{ctx.document.path}:{claim.line}: claim {claim.id!r} ({claim.kind}): {exc}"
            ) from None
    return tuple(results[c.id] for c in ctx.document.claims)
