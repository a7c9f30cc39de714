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


def _line_of(text: str, claim_id: str) -> int:
    match = re.search(rf'^\s*id\s*=\s*"{re.escape(claim_id)}"', text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 0


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
    return Document(
        id=document["id"], title=document["title"], source=document["source"], model=document["model"],
        components={k: tuple(v) for k, v in components.items()}, claims=tuple(claims), path=str(path),
        families=dict(document.get("families", {})),
    )


def _claim(path: Path, text: str, raw: Any, index: int, seen: set[str], components: dict[str, Any]) -> Claim:
    if not isinstance(raw, dict):
        raise _fail(path, 0, f"claim #{index} is not a table")
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", claim_id):
        raise _fail(path, 0, f"claim #{index}: 'id' must be an identifier (letters, digits, _), got {claim_id!r}")
    line = _line_of(text, claim_id)
    if claim_id in seen:
        raise _fail(path, line, f"claim id {claim_id!r} is used twice")
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
