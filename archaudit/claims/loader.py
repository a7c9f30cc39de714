"""Reading a claims file (TOML). Every error names the file, the line and what is wrong."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ArchauditError
from .figures import FigureError, parse_figure
from .model import KINDS, Claim, Document

REQUIRED = {
    "component": ("component",), "percentage": ("component",), "sum": ("terms",),
    "arithmetic": ("expression",), "formula": ("layer", "expression"),
    "scaling": ("component", "hyperparameter", "from", "to"), "size": ("dtype",), "derived": ("expression",),
    "ranking": ("label", "among"), "score_formula": ("rows",), "score": ("params", "rmse"),
    "baseline": ("model",), "attribute": ("module",),
}
NO_FIGURE = ("formula", "ranking", "score_formula")


class ClaimsFileError(ArchauditError, ValueError):
    """A claims file is malformed; the message names the file, line and problem."""


def _line_of(text: str, claim_id: str, occurrence: int = 1) -> int:
    """The line of the ``occurrence``-th ``id = "..."`` (or ``id = '...'``) for ``claim_id``; 0 if absent."""
    pattern = rf"""^\s*id\s*=\s*(["']){re.escape(claim_id)}\1"""
    matches = list(re.finditer(pattern, text, flags=re.MULTILINE))
    if len(matches) < occurrence:
        return 0
    return text.count("\n", 0, matches[occurrence - 1].start()) + 1


def _fail(path: Path, line: int, message: str) -> ClaimsFileError:
    return ClaimsFileError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def load_claims(path: str | Path) -> Document:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClaimsFileError(f"{path}: no such claims file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClaimsFileError(f"{path}: cannot read it ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 0) or int((re.search(r"line (\d+)", str(exc)) or [0, 0])[1])
        raise _fail(path, line, f"not valid TOML: {str(exc).split(' (at')[0]}") from None

    document = data.get("document")
    if not isinstance(document, dict):
        raise _fail(path, 1, "missing [document] table (id, title, source, model)")
    for key in ("id", "title", "source", "model"):
        if not isinstance(document.get(key), str):
            raise _fail(path, 1, f"[document] needs a string {key!r}")
    components = data.get("components", {})
    if not isinstance(components, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in components.values()
    ):
        raise _fail(path, 0, "[components] must map names to lists of module paths")

    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise _fail(path, 0, "no [[claims]]")
    claims: list[Claim] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_claims, 1):
        claims.append(_claim(path, text, raw, index, seen, components))
    _validate_references(path, claims)
    return Document(
        id=document["id"], title=document["title"], source=document["source"], model=document["model"],
        components={k: tuple(v) for k, v in components.items()}, claims=tuple(claims), path=str(path),
        families=dict(document.get("families", {})),
    )


def _names(expression: str) -> set[str]:
    """The identifiers an expression uses (it is parsed, never run)."""
    import ast

    from .safe_eval import normalise

    try:
        tree = ast.parse(normalise(expression), mode="eval")
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def _validate_references(path: Path, claims: list[Claim]) -> None:
    """What can be checked without a model: every id an expression, term, ranking or score names exists, and
    every dtype and formula layer is known. (Hyperparameters are checked against the model's builder.)"""
    from .check import DTYPE_BYTES
    from .layer_formulas import FAMILIES

    ids = {c.id for c in claims}
    with_figure = {c.id for c in claims if c.figure is not None}
    def fail(claim: Claim, message: str) -> ClaimsFileError:
        return _fail(path, claim.line, f"claim {claim.id!r}: {message}")

    for claim in claims:
        # `implied` always names claims; `expression` does only for derived claims (a formula's names its variables)
        expressions = [claim.get(key) for key in ("implied", "expression") if isinstance(claim.get(key), str)
                       and (key == "implied" or claim.kind == "derived")]
        expressions += list(claim.get("candidates") or [])
        for expression in expressions:
            unknown = sorted(_names(expression) - with_figure)
            if unknown:
                raise fail(claim, f"{expression!r} names {', '.join(unknown)}, which is not the id of a claim with a figure")
        referenced = list(claim.get("terms") or []) + list(claim.get("among") or [])
        referenced += [claim.get(k) for k in ("label", "params", "rmse") if isinstance(claim.get(k), str)
                       and claim.kind in ("ranking", "score")]
        for row in claim.get("rows") or []:
            referenced += [v for v in row.values()] if isinstance(row, dict) else []
        for ref in referenced:
            if ref not in ids:
                raise fail(claim, f"refers to {ref!r}, which is not a claim id in this file")
        if claim.kind == "size" and claim.get("dtype") not in DTYPE_BYTES:
            raise fail(claim, f"unknown dtype {claim.get('dtype')!r}; one of {', '.join(DTYPE_BYTES)}")
        if claim.kind == "formula" and claim.get("layer") not in FAMILIES:
            raise fail(claim, f"no layer family {claim.get('layer')!r} for formula claims; one of {', '.join(FAMILIES)}")
        if claim.kind == "ranking" and claim.get("labels") is not None and \
                len(claim.get("labels")) != len(claim.get("among")):
            raise fail(claim, "labels and among differ in length")


def _claim(path: Path, text: str, raw: Any, index: int, seen: set[str], components: dict[str, Any]) -> Claim:
    if not isinstance(raw, dict):
        raise _fail(path, 0, f"claim #{index} is not a table")
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", claim_id):
        raise _fail(path, 0, f"claim #{index}: 'id' must be an identifier (letters, digits, _), got {claim_id!r}")
    line = _line_of(text, claim_id)
    if claim_id in seen:
        raise _fail(path, _line_of(text, claim_id, 2), f"claim id {claim_id!r} is used twice")
    seen.add(claim_id)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _fail(path, line, f"claim {claim_id!r}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    for key in ("where",) + (() if kind in NO_FIGURE else ("printed",)):
        if not isinstance(raw.get(key), str):
            raise _fail(path, line, f"claim {claim_id!r}: needs a string {key!r}")
    for key in REQUIRED.get(kind, ()):
        if key not in raw:
            raise _fail(path, line, f"claim {claim_id!r} ({kind}): needs {key!r}")
    for key in ("component",):
        name = raw.get(key)
        if name is not None and name not in components:
            raise _fail(path, line, f"claim {claim_id!r}: component {name!r} is not in [components]")
    figure = None
    printed = raw.get("printed")
    if isinstance(printed, str) and kind not in ("ranking",):
        try:
            figure = parse_figure(raw.get("value", printed))
        except FigureError as exc:
            raise _fail(path, line, f"claim {claim_id!r}: {exc}") from None
        if "tolerance" in raw:
            tolerance = raw["tolerance"]
            if not isinstance(tolerance, (int, float)) or tolerance < 0:
                raise _fail(path, line, f"claim {claim_id!r}: tolerance must be a non-negative number")
            figure = dataclasses.replace(figure, tolerance=float(tolerance))
    fields = {k: v for k, v in raw.items() if k not in ("id", "kind", "where", "printed", "value", "tolerance")}
    return Claim(id=claim_id, kind=kind, where=raw["where"], printed=printed or "", figure=figure, line=line,
                 fields=fields)
