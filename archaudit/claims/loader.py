"""Reading a claims file (TOML). Every error names the file, the line and what is wrong, on one line.

Each kind's keys are declared once (:data:`CLAIM_KEYS`), and so is each key's type (:data:`KEY_TYPES`): a value
of another type is refused as ``PATH:LINE: claim 'id' (kind): key = <value> must be <type>``, never coerced.
A file is read (:func:`archaudit.tomlfile.read_toml`) only when it is a regular file of at most ``MAX_FILE_BYTES``
and nests at most ``MAX_NESTING`` deep, and it holds at most :data:`MAX_CLAIMS` claims; a figure derived from
itself is refused.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ArchauditError
from ..tomlfile import (
    FINITE,
    NON_NEGATIVE,
    POSITIVE_INT,
    STRING,
    STRINGS,
    FieldType,
    KeyLines,
    KeyPath,
    clipped,
    nonempty_strings,
    read_toml,
    shown,
    toml_key,
    unknown_keys,
)
from .figures import FigureError, parse_figure
from .records import DTYPE_BYTES, KINDS, Claim, Document

MAX_CLAIMS = 10_000
"""The most claims one file may hold (the largest shipped file has 66)."""
EXPRESSION = FieldType(
    "a non-empty string (an arithmetic expression)", lambda v: isinstance(v, str) and bool(v.strip())
)
EXPRESSIONS = FieldType(
    "a non-empty list of expressions (non-empty strings)",
    lambda v: nonempty_strings(v) and all(EXPRESSION.accepts(item) for item in v),
)
FAMILY = FieldType(
    "a model family's name or a non-empty list of them",
    lambda v: nonempty_strings([v] if isinstance(v, str) else v) and all(v if isinstance(v, list) else [v]),
)
"""A family the solver searches (``"amnl"``), or several: the first, then wider ones for exact figures."""


@dataclasses.dataclass(frozen=True)
class KindKeys:
    """The keys a claim of one kind may carry: ``required`` must be there, ``optional`` may be; with
    :data:`COMMON_KEYS`, nothing else is accepted."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return COMMON_KEYS + self.required + self.optional


COMMON_KEYS = ("id", "kind", "where", "note")
"""Every kind: its id, its kind, where it stands in the document, and a note appended to the evidence."""
_FIGURE = ("value", "tolerance")  # the figure read from `value` instead of `printed`; its rounding
_PRINTED = ("printed",)

CLAIM_KEYS: dict[str, KindKeys] = {
    # the keys each kind's checker reads (check.CHECKERS), and only those: a key no check reads is a mistake
    "total": KindKeys(_PRINTED, (*_FIGURE, "implied", "family")),
    "trainable": KindKeys(_PRINTED, (*_FIGURE, "implied", "family")),
    "component": KindKeys((*_PRINTED, "component"), (*_FIGURE, "components", "implied", "family")),
    "percentage": KindKeys((*_PRINTED, "component"), (*_FIGURE, "components", "implied")),
    "sum": KindKeys((*_PRINTED, "terms"), (*_FIGURE, "candidates")),
    "arithmetic": KindKeys((*_PRINTED, "expression"), (*_FIGURE, "component", "components", "implied")),
    "formula": KindKeys(("layer", "expression"), _PRINTED),
    "scaling": KindKeys((*_PRINTED, "component", "hyperparameter", "from", "to"), (*_FIGURE, "implied")),
    "size": KindKeys((*_PRINTED, "dtype"), (*_FIGURE, "implied")),
    "derived": KindKeys((*_PRINTED, "expression"), (*_FIGURE, "candidates")),
    "ranking": KindKeys(("label", "among"), (*_PRINTED, "labels", "order", "position", "audited")),
    "between": KindKeys(("label",), (*_PRINTED, "below", "above", "audited")),
    "score_formula": KindKeys(("rows", "formulas"), _PRINTED),
    "score": KindKeys((*_PRINTED, "params", "rmse"), (*_FIGURE, "model", "implied")),
    "baseline": KindKeys((*_PRINTED, "model"), (*_FIGURE, "implied")),
    "reported": KindKeys(_PRINTED, (*_FIGURE, "published", "published_source", "reason", "implied")),
    "throughput": KindKeys(_PRINTED, (*_FIGURE, "implied")),
    "attribute": KindKeys((*_PRINTED, "module"), (*_FIGURE, "count_type", "attribute", "implied")),
    "macs": KindKeys(_PRINTED, (*_FIGURE, "input", "implied")),
    "flops": KindKeys(_PRINTED, (*_FIGURE, "input", "implied")),
    "frozen": KindKeys(_PRINTED, (*_FIGURE, "implied")),
    "shared": KindKeys(_PRINTED, (*_FIGURE, "implied")),
    "count": KindKeys((*_PRINTED, "count_type"), (*_FIGURE, "implied")),
    "leaf_only": KindKeys(_PRINTED, (*_FIGURE, "component", "implied")),
    "cross": KindKeys((*_PRINTED, "other"), _FIGURE),
}
"""The keys of each claim kind, declared once: the loader refuses any other key, and names these in the message."""

ROW_TYPES = {"params": STRING, "rmse": STRING, "score": STRING}
"""A score_formula row: the ids of its parameter count, its error and its printed score."""
ROW_KEYS = tuple(ROW_TYPES)

KEY_TYPES: dict[str, FieldType] = {
    # what each key's value must be, whatever the kind (a key means the same in every kind that takes it)
    "id": FieldType(
        "an identifier (letters, digits, _)",
        lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v) is not None,
    ),
    "kind": FieldType(f"one of {', '.join(KINDS)}", lambda v: isinstance(v, str) and v in KINDS),
    "where": STRING,
    "note": STRING,
    "printed": STRING,
    "value": STRING,
    "tolerance": NON_NEGATIVE,
    "implied": EXPRESSION,
    "family": FAMILY,  # an empty `implied` would check nothing
    "component": STRING,
    "components": STRINGS,  # names of [components] entries
    "terms": STRINGS,
    "candidates": EXPRESSIONS,
    "expression": EXPRESSION,  # claim ids; expressions
    "layer": STRING,
    "hyperparameter": STRING,
    "from": POSITIVE_INT,
    "to": POSITIVE_INT,
    "dtype": STRING,  # one of records.DTYPE_BYTES (checked with the references)
    "label": STRING,
    "among": STRINGS,
    "labels": STRINGS,
    "order": FieldType("'max' or 'min'", lambda v: isinstance(v, str) and v in ("max", "min")),
    "position": POSITIVE_INT,
    "audited": FieldType("true or false", lambda v: isinstance(v, bool)),
    "below": STRINGS,
    "above": STRINGS,
    "formulas": EXPRESSIONS,
    "rows": FieldType(
        f"a non-empty list of tables {{ {', '.join(f'{k} = ID' for k in ROW_KEYS)} }}",
        lambda v: isinstance(v, list) and bool(v) and all(isinstance(row, dict) for row in v),
    ),
    "params": STRING,
    "rmse": STRING,
    "model": STRING,
    "published": FINITE,
    "published_source": STRING,
    "reason": STRING,
    "module": STRING,
    "count_type": STRING,
    "attribute": STRING,
    "input": FieldType(
        "an input shape such as '1x3x224x224' ('NAME=SHAPE' for one passed by name), or a non-empty list of them",
        lambda v: nonempty_strings([v] if isinstance(v, str) else v),
    ),
    "other": FieldType(
        "another claims file and one of its claim ids, as 'FILE.toml:claim_id' (FILE relative to this file)",
        lambda v: isinstance(v, str) and re.fullmatch(r"[^:]{1,400}\.toml:[A-Za-z][A-Za-z0-9_]*", v) is not None,
    ),
}
"""The type of every key a claim may carry, declared once beside :data:`CLAIM_KEYS`; checked, never coerced."""

TOP_KEYS = ("document", "components", "claims")
DOCUMENT_REQUIRED = ("id", "title", "source", "model")
DOCUMENT_TYPES: dict[str, FieldType] = {
    **dict.fromkeys(DOCUMENT_REQUIRED, STRING),
    "families": FieldType(
        'a table of claim kinds and model families, e.g. { total = "amnl" }', lambda v: isinstance(v, dict)
    ),
    "input": FieldType(
        "an input shape such as '1x3x224x224' ('NAME=SHAPE' for one passed by name), or a non-empty list of them",
        lambda v: nonempty_strings([v] if isinstance(v, str) else v),
    ),
}
DOCUMENT_KEYS = tuple(DOCUMENT_TYPES)
FAMILY_KINDS = tuple(kind for kind, spec in CLAIM_KEYS.items() if "family" in spec.optional)
"""The kinds whose counts are searched for in a model family: the keys of ``[document] families``, each a
:data:`FAMILY`."""
COMPONENT_PATHS = FieldType('a non-empty list of module paths (strings, e.g. ["cnn", "lstm.0"])', nonempty_strings)
"""Each ``[components]`` entry: a name, and the module paths whose parameters it adds up."""


class ClaimsFileError(ArchauditError, ValueError):
    """A claims file is malformed; the message names the file, line and problem."""


def _fail(path: Path, line: int, message: str) -> ClaimsFileError:
    return ClaimsFileError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def _refuse_unknown(
    path: Path,
    lines: KeyLines,
    where: KeyPath,
    table: dict[str, Any],
    known: Sequence[str],
    label: str,
    noun: str = "key",
) -> None:
    found = unknown_keys(lines, where, table, known, noun)
    if found is not None:
        line, message = found
        raise _fail(path, line, f"{label}: {message}" if label else message)


def _refuse_types(
    path: Path, lines: KeyLines, where: KeyPath, table: dict[str, Any], types: dict[str, FieldType], label: str
) -> None:
    """Refuse the first key of ``table`` (at path ``where`` in the file) whose value is not of its type."""
    for key, value in table.items():
        problem = types[key].problem(value)
        if problem is not None:
            raise _fail(path, lines.line(*where, key), f"{label}: {toml_key(key)} = {shown(value)} {problem}")


def load_claims(path: str | Path) -> Document:
    path = Path(path)
    text, data = read_toml(path, "claims file", ClaimsFileError)

    lines = KeyLines(text)  # once per file: every message below finds its line here
    _refuse_unknown(path, lines, (), data, TOP_KEYS, "", noun="table")
    document = data.get("document")
    if not isinstance(document, dict):
        raise _fail(path, 1, "missing [document] table (id, title, source, model)")
    _refuse_unknown(path, lines, ("document",), document, DOCUMENT_KEYS, "[document]")
    for key in DOCUMENT_REQUIRED:
        if key not in document:
            raise _fail(path, lines.line("document"), f"[document] needs a string {key!r}")
    _refuse_types(path, lines, ("document",), document, DOCUMENT_TYPES, "[document]")
    families = document.get("families", {})
    _refuse_unknown(path, lines, ("document", "families"), families, FAMILY_KINDS, "[document] families")
    _refuse_types(
        path, lines, ("document", "families"), families, dict.fromkeys(families, FAMILY), "[document] families"
    )
    components = data.get("components", {})
    if not isinstance(components, dict):
        raise _fail(
            path,
            lines.line("components"),
            f"components = {shown(components)} must be a table [components] of names and lists of module paths",
        )
    _refuse_types(path, lines, ("components",), components, dict.fromkeys(components, COMPONENT_PATHS), "[components]")

    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise _fail(path, lines.line("claims"), "no [[claims]]")
    if len(raw_claims) > MAX_CLAIMS:
        raise _fail(
            path,
            lines.line("claims", MAX_CLAIMS),
            f"{len(raw_claims):,} claims; a claims file has at most {MAX_CLAIMS:,}",
        )
    claims: list[Claim] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_claims, 1):
        claims.append(_claim(path, lines, raw, index, seen, components))
    _validate_references(path, claims)
    return Document(
        id=document["id"],
        title=document["title"],
        source=document["source"],
        model=document["model"],
        components={k: tuple(v) for k, v in components.items()},
        claims=tuple(claims),
        path=str(path),
        families=dict(families),
        input=_input_texts(path, lines, ("document", "input"), document.get("input")),
    )


def _input_texts(path: Path, lines: KeyLines, where: KeyPath, value: Any) -> tuple[str, ...]:
    """An ``input`` key's shapes, each parsed now (its bounds), so that a bad one is named at its line."""
    from ..errors import InputSpecError
    from ..inputs import parse_inputs

    texts = tuple([value] if isinstance(value, str) else value or ())
    try:
        parse_inputs(list(texts))
    except InputSpecError as exc:
        raise _fail(path, lines.line(*where), f"{where[0]}: input: {exc}") from None
    return texts


def _names(expression: str) -> set[str]:
    """The identifiers an expression uses (it is parsed, never run)."""
    import ast

    from .safe_eval import normalise

    try:
        tree = ast.parse(normalise(expression), mode="eval")
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


_FIGURE_REFERENCES = {
    "sum": ("terms",),
    "ranking": ("among", "label"),
    "between": ("label", "below", "above"),
    "score": ("params", "rmse"),
}
"""Keys whose values are ids of claims whose figures the check reads (a score_formula's rows also are)."""
_DERIVED_FROM = {"derived": ("expression", "candidates"), "sum": ("terms", "candidates")}
"""The kinds whose figure is checked against others of the same document, and the keys naming those."""


def claim_references(claim: Claim) -> set[str]:
    """The ids of the claims whose figures this claim's check reads: its ``implied`` expression, a derived
    claim's expression and candidates, a sum's terms, a ranking's or score's claims."""
    names: set[str] = set()
    for key in ("implied", "expression"):
        if key in claim.fields and (key == "implied" or claim.kind == "derived"):
            names |= _names(claim.get(key))
    for expression in claim.get("candidates") or []:
        names |= _names(expression)
    for key in _FIGURE_REFERENCES.get(claim.kind, ()):
        value = claim.get(key)
        names |= set(value) if isinstance(value, list) else {value} if isinstance(value, str) else set()
    return names - {claim.id}


def _validate_references(path: Path, claims: list[Claim]) -> None:
    """What can be checked without a model: every id an expression, term, ranking or score names exists and has
    a figure, no figure is derived from itself, and every dtype and formula layer is known. (Hyperparameters
    are checked against the model's builder.)"""
    from .layer_formulas import LAYER_FAMILIES

    ids = {c.id for c in claims}
    with_figure = {c.id for c in claims if c.figure is not None}

    def fail(claim: Claim, message: str) -> ClaimsFileError:
        return _fail(path, claim.line, f"claim {claim.id!r} ({claim.kind}): {message}")

    for claim in claims:
        # `implied` always names claims; `expression` does only for derived claims (a formula's names its variables)
        expressions = [
            claim.get(key)
            for key in ("implied", "expression")
            if key in claim.fields and (key == "implied" or claim.kind == "derived")
        ]
        expressions += list(claim.get("candidates") or [])
        for expression in expressions:
            unknown = sorted(_names(expression) - with_figure)
            if unknown:
                raise fail(
                    claim,
                    f"{shown(expression)} names {clipped(', '.join(unknown))}, which is not the id "
                    "of a claim with a figure",
                )
        if claim.id in _names(claim.get("implied", "")):
            raise fail(
                claim,
                f"implied = {shown(claim.get('implied'))} names the claim itself: a figure checked "
                "against itself checks nothing",
            )
        referenced = [
            (key, ref)
            for key in _FIGURE_REFERENCES.get(claim.kind, ())
            for ref in (claim.get(key) if isinstance(claim.get(key), list) else [claim.get(key)])
            if ref is not None  # an optional key left out (a between claim's below or above)
        ]
        for number, row in enumerate(claim.get("rows") or [], 1):
            referenced += [(f"rows #{number} {key}", ref) for key, ref in row.items()]
        for key, ref in referenced:
            if ref not in ids:
                raise fail(claim, f"refers to {shown(ref)}, which is not a claim id in this file")
            if ref not in with_figure:
                raise fail(claim, f"{key} refers to {shown(ref)}, a claim with no figure")
        if claim.kind == "size" and claim.get("dtype") not in DTYPE_BYTES:
            raise fail(claim, f"unknown dtype {shown(claim.get('dtype'))}; one of {', '.join(DTYPE_BYTES)}")
        if claim.kind == "formula" and claim.get("layer") not in LAYER_FAMILIES:
            raise fail(
                claim,
                f"no layer family {shown(claim.get('layer'))} for formula claims; one of {', '.join(LAYER_FAMILIES)}",
            )
    cycle = _derivation_cycle(claims)
    if cycle:
        first = next(c for c in claims if c.id == cycle[0])
        raise fail(first, f"derived from itself: {' -> '.join(cycle)} (a figure checked against itself checks nothing)")


def _derivation_cycle(claims: list[Claim]) -> list[str]:
    """A cycle of claims each derived from the next (derived expressions and candidates, sum terms), as ids
    from the one that stands first in the file back to it; [] when there is none. Depth-first, without
    recursion."""
    order = {c.id: n for n, c in enumerate(claims)}
    edges: dict[str, list[str]] = {}
    for claim in claims:
        names: list[str] = []
        for key in _DERIVED_FROM.get(claim.kind, ()):
            value = claim.get(key)
            for text in value if isinstance(value, list) else [value] if value is not None else []:
                names += sorted(_names(text), key=lambda n: order.get(n, -1))  # a term is an id: its own name
        edges[claim.id] = [n for n in names if n in order]
    state: dict[str, int] = {}  # 1 on the path being walked, 2 done
    for root in order:
        if root in state:
            continue
        path, stack = [root], [iter(edges[root])]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                cycle = path[path.index(step) :]
                first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                cycle = cycle[first:] + cycle[:first]
                return [*cycle, cycle[0]]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(edges[step]))
    return []


def _claim(path: Path, lines: KeyLines, raw: Any, index: int, seen: set[str], components: dict[str, Any]) -> Claim:
    at = ("claims", index - 1)  # where this claim's keys stand in the file
    if not isinstance(raw, dict):
        raise _fail(path, lines.line(*at), f"claim #{index} is not a table")
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not KEY_TYPES["id"].accepts(claim_id):
        raise _fail(
            path,
            lines.line(*at, "id"),
            f"claim #{index}: 'id' must be an identifier (letters, digits, _), got {shown(claim_id)}",
        )
    line = lines.line(*at, "id")
    if claim_id in seen:
        raise _fail(path, line, f"claim id {claim_id!r} is used twice")
    seen.add(claim_id)
    kind = raw.get("kind")
    if not isinstance(kind, str) or not KEY_TYPES["kind"].accepts(kind):
        raise _fail(path, line, f"claim {claim_id!r}: unknown kind {shown(kind)}; one of {', '.join(KINDS)}")
    spec = CLAIM_KEYS[kind]
    label = f"claim {claim_id!r} ({kind})"
    _refuse_unknown(path, lines, at, raw, spec.allowed, label)
    _refuse_types(path, lines, at, raw, KEY_TYPES, label)
    for key in ("where", *tuple(k for k in spec.required if k in _PRINTED)):
        if key not in raw:
            raise _fail(path, line, f"claim {claim_id!r}: needs a string {key!r}")
    for key in spec.required:
        if key not in raw:
            raise _fail(path, line, f"{label}: needs {key!r}")
    _check_structure(path, lines, at, raw, label, components)
    figure = None
    printed = raw.get("printed")
    if printed is not None and kind not in ("ranking",):
        try:
            figure = parse_figure(raw["value"] if "value" in raw else printed)  # noqa: SIM401 - .get would type it Any | None
        except FigureError as exc:
            raise _fail(path, line, f"claim {claim_id!r}: {exc}") from None
        if "tolerance" in raw:
            figure = dataclasses.replace(figure, tolerance=float(raw["tolerance"]))
    fields = {k: v for k, v in raw.items() if k not in ("id", "kind", "where", "printed", "value", "tolerance")}
    return Claim(
        id=claim_id, kind=kind, where=raw["where"], printed=printed or "", figure=figure, line=line, fields=fields
    )


def _check_structure(
    path: Path, lines: KeyLines, at: KeyPath, raw: dict[str, Any], label: str, components: dict[str, Any]
) -> None:
    """What a claim's keys must be together, once each is of its type: names that exist in [components], a
    score table's rows, a ranking's label among its rows, one attribute to read."""
    line = lines.line(*at, "id")
    name = raw.get("component")
    if name is not None and name not in components:
        raise _fail(path, line, f"{label}: component {shown(name)} is not in [components]")
    unknown = [name for name in raw.get("components", ()) if name not in components]
    if unknown:
        raise _fail(
            path,
            lines.line(*at, "components"),
            f"{label}: components = {shown(raw['components'])} names {shown(unknown[0])}, which is not in "
            f"[components] (known: {clipped(', '.join(components)) or 'none'})",
        )
    if "rows" in raw:
        _check_rows(path, lines, at, raw["rows"], label)
    kind = raw["kind"]
    for key in ("among", "below", "above"):  # a figure listed twice would be ranked or placed against itself
        values = raw.get(key) or []
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise _fail(path, lines.line(*at, key), f"{label}: {key} names {shown(repeated)} twice")
    if kind == "ranking":
        among = raw["among"]
        if raw["label"] not in among:
            raise _fail(
                path, line, f"{label}: label = {shown(raw['label'])} must be one of among ({clipped(', '.join(among))})"
            )
        if "labels" in raw and len(raw["labels"]) != len(among):
            raise _fail(path, line, f"{label}: labels and among differ in length")
        if raw.get("position", 1) > len(among):
            raise _fail(path, line, f"{label}: position = {raw['position']} is past the {len(among)} rows of among")
    if kind == "between":
        if not raw.get("below") and not raw.get("above"):
            raise _fail(path, line, f"{label}: needs below or above (the figures the label must lie between)")
        inside = [ref for ref in (*raw.get("below", ()), *raw.get("above", ())) if ref == raw["label"]]
        if inside:
            raise _fail(path, line, f"{label}: label = {shown(raw['label'])} is also among below/above")
    if kind == "score_formula":
        import ast

        from .efficiency import VARIABLES
        from .safe_eval import MAX_LENGTH, normalise

        for formula in raw["formulas"]:
            where = lines.line(*at, "formulas")
            if len(formula) > MAX_LENGTH:  # bounded before it is parsed
                raise _fail(path, where, f"{label}: a formula of {len(formula):,} characters: at most {MAX_LENGTH:,}")
            try:
                compile(normalise(formula), "<formula>", "eval", flags=ast.PyCF_ONLY_AST)
            except (SyntaxError, RecursionError, MemoryError):
                raise _fail(path, where, f"{label}: formula {shown(formula)} is not an expression") from None
            names = _names(formula)
            unknown = sorted(names - set(VARIABLES))
            if unknown or "c" not in names:
                raise _fail(
                    path,
                    lines.line(*at, "formulas"),
                    f"{label}: formula {shown(formula)} "
                    + (f"names {clipped(', '.join(unknown))}; " if unknown else "has no free constant c; ")
                    + f"a score formula is an expression in {', '.join(VARIABLES)} (c fitted to the rows)",
                )
    if kind == "attribute":
        given = [key for key in ("count_type", "attribute") if key in raw]
        if not given:
            raise _fail(
                path, line, f"{label}: needs count_type or attribute (what to count or read at {shown(raw['module'])})"
            )
        if len(given) == 2:
            raise _fail(path, line, f"{label}: gives both count_type and attribute: one is read, give one")
    if kind == "arithmetic" and "components" in raw and "component" not in raw:
        raise _fail(
            path,
            line,
            f"{label}: components is read only with component: without it the model's side "
            "of the claim is never checked; give component too",
        )


def _check_rows(path: Path, lines: KeyLines, at: KeyPath, rows: list[dict[str, Any]], label: str) -> None:
    """A score table (a non-empty list of tables, :data:`KEY_TYPES`): each row names exactly its :data:`ROW_KEYS`,
    each an id."""
    for number, row in enumerate(rows, 1):
        where = (*at, "rows", number - 1)
        _refuse_unknown(path, lines, where, row, ROW_KEYS, f"{label}: rows #{number}")
        _refuse_types(path, lines, where, row, ROW_TYPES, f"{label}: rows #{number}")
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise _fail(path, lines.line(*where), f"{label}: rows #{number} needs {', '.join(missing)}")
