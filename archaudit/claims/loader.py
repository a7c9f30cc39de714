"""Reading a claims file (TOML). Every error names the file, the line and what is wrong."""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import ArchauditError
from .figures import FigureError, parse_figure
from .model import KINDS, Claim, Document


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
    # the keys each kind's check reads (check.py), and only those: a key no check reads is a mistake
    "total": KindKeys(_PRINTED, _FIGURE + ("implied", "family")),
    "trainable": KindKeys(_PRINTED, _FIGURE + ("implied", "family")),
    "component": KindKeys(_PRINTED + ("component",), _FIGURE + ("components", "implied", "family")),
    "percentage": KindKeys(_PRINTED + ("component",), _FIGURE + ("components", "implied")),
    "sum": KindKeys(_PRINTED + ("terms",), _FIGURE + ("candidates",)),
    "arithmetic": KindKeys(_PRINTED + ("expression",), _FIGURE + ("component", "components", "implied")),
    "formula": KindKeys(("layer", "expression"), _PRINTED),
    "scaling": KindKeys(_PRINTED + ("component", "hyperparameter", "from", "to"), _FIGURE + ("implied",)),
    "size": KindKeys(_PRINTED + ("dtype",), _FIGURE + ("implied",)),
    "derived": KindKeys(_PRINTED + ("expression",), _FIGURE + ("candidates",)),
    "ranking": KindKeys(("label", "among"), _PRINTED + ("labels", "order")),
    "score_formula": KindKeys(("rows",), _PRINTED),
    "score": KindKeys(_PRINTED + ("params", "rmse"), _FIGURE + ("model", "implied")),
    "baseline": KindKeys(_PRINTED + ("model",), _FIGURE + ("implied",)),
    "reported": KindKeys(_PRINTED, _FIGURE + ("published", "published_source", "reason", "implied")),
    "throughput": KindKeys(_PRINTED, _FIGURE + ("implied",)),
    "attribute": KindKeys(_PRINTED + ("module",), _FIGURE + ("count_type", "attribute", "implied")),
}
"""The keys of each claim kind, declared once: the loader refuses any other key, and names these in the message."""

TOP_KEYS = ("document", "components", "claims")
DOCUMENT_REQUIRED = ("id", "title", "source", "model")
DOCUMENT_KEYS = DOCUMENT_REQUIRED + ("families",)
FAMILY_KINDS = tuple(kind for kind, spec in CLAIM_KEYS.items() if "family" in spec.optional)
"""The kinds whose counts are searched for in a model family: the keys of ``[document] families``."""
ROW_KEYS = ("params", "rmse", "score")
"""A score_formula row: the ids of its parameter count, its error and its printed score."""


class ClaimsFileError(ArchauditError, ValueError):
    """A claims file is malformed; the message names the file, line and problem."""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else a quoted string."""
    if _BARE_KEY.fullmatch(key):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unknown_message(unknown: Iterable[str], known: Sequence[str], noun: str = "key") -> str:
    """``unknown key(s) tolerence (did you mean tolerance?)``; when one has nothing close,
    ``...; known: a, b, c``. Shared by the claims and budgets files."""
    parts, far = [], False
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{toml_key(name)} (did you mean {toml_key(close[0])}?)" if close else toml_key(name))
        far = far or not close
    text = f"unknown {noun}(s) {', '.join(parts)}"
    return text + (f"; known: {', '.join(map(toml_key, known))}" if far else "")


class KeyLines:
    """The line of every key, table header and array element of a TOML text, found in one pass over it.

    A key is addressed by its path, as the parsed data nests it: ``("claims", 3, "tolerance")`` is the key of
    the fourth ``[[claims]]`` table, ``("claims", 0, "rows", 1, "score")`` a key of an inline table in an
    array. :meth:`line` falls back to the nearest enclosing path it knows. The text must be valid TOML
    (``tomllib`` has read it already); strings and comments are skipped, never read as keys.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        self._lines: dict[tuple, int] = {}
        self._arrays: dict[tuple, int] = {}  # array-of-tables path -> index of its latest element
        try:
            self._document()
        except IndexError:  # not TOML after all: what was found so far stands
            pass

    def line(self, *path: Any) -> int:
        """1-based line of ``path`` or of the nearest enclosing path found; 0 when none is."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return 0

    # -- scanning -----------------------------------------------------------------------------------------------

    def _record(self, path: tuple, at: int) -> None:
        line = bisect.bisect_left(self._newlines, at) + 1
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], line)

    def _blank(self, i: int, newlines: bool) -> int:
        """Past spaces and tabs (and, with ``newlines``, line ends and comments)."""
        text = self._text
        while i < len(text):
            char = text[i]
            if char in " \t":
                i += 1
            elif newlines and char in "\r\n":
                i += 1
            elif newlines and char == "#":
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
            else:
                break
        return i

    def _string(self, i: int) -> tuple[str, int]:
        """The raw text of the string starting at ``i`` (escapes left as written), and the index past it."""
        text = self._text
        quote = text[i]
        if text.startswith(quote * 3, i):
            end = text.find(quote * 3, i + 3)
            while quote == '"' and _escaped(text, end):
                end = text.find(quote * 3, end + 1)
            while text.startswith(quote, end + 3):  # up to two quotes of the content end the delimiter
                end += 1
            return text[i + 3:end], end + 3
        j = i + 1
        while text[j] != quote:
            j += 2 if quote == '"' and text[j] == "\\" else 1
        return text[i + 1:j], j + 1

    def _key(self, i: int) -> tuple[tuple[str, ...], int]:
        """A dotted key's parts and the index past it (and past the blanks after it)."""
        parts = []
        while True:
            i = self._blank(i, newlines=False)
            if self._text[i] in "\"'":
                raw, i = self._string(i)
                parts.append(_unescape(raw) if self._text[i - 1] == '"' else raw)
            else:
                match = _BARE_KEY.match(self._text, i)
                if match is None:
                    raise IndexError(i)
                parts.append(match.group())
                i = match.end()
            i = self._blank(i, newlines=False)
            if self._text[i] != ".":
                return tuple(parts), i
            i += 1

    def _value(self, i: int, path: tuple) -> int:
        """Past the value starting at ``i``, recording the keys of inline tables and the elements of arrays."""
        text = self._text
        char = text[i]
        if char in "\"'":
            return self._string(i)[1]
        if char == "{":
            i = self._blank(i + 1, newlines=False)
            while text[i] != "}":
                start = i
                parts, i = self._key(i)
                self._record(path + parts, start)
                i = self._value(self._blank(i + 1, newlines=False), path + parts)  # past "="
                i = self._blank(i, newlines=False)
                if text[i] == ",":
                    i = self._blank(i + 1, newlines=False)
            return i + 1
        if char == "[":
            i, index = self._blank(i + 1, newlines=True), 0
            while text[i] != "]":
                self._record(path + (index,), i)
                i = self._blank(self._value(i, path + (index,)), newlines=True)
                if text[i] == ",":
                    i = self._blank(i + 1, newlines=True)
                index += 1
            return i + 1
        match = _SCALAR_END.search(text, i)
        if match is not None and match.start() == i:  # no value here: not TOML
            raise IndexError(i)
        return match.start() if match else len(text)

    def _header(self, parts: tuple[str, ...], array: bool) -> tuple:
        """The path a ``[a.b]`` or ``[[a.b]]`` header opens: the elements of enclosing arrays of tables included."""
        path: tuple = ()
        for n, part in enumerate(parts, 1):
            path += (part,)
            if array and n == len(parts):
                self._arrays[path] = self._arrays.get(path, -1) + 1
                path += (self._arrays[path],)
            elif path in self._arrays:
                path += (self._arrays[path],)
        return path

    def _document(self) -> None:
        text = self._text
        table: tuple = ()
        i = self._blank(0, newlines=True)
        while i < len(text):
            start = i
            if text[i] == "[":
                array = text.startswith("[[", i)
                parts, i = self._key(i + (2 if array else 1))
                table = self._header(parts, array)
                self._record(table, start)
                i += 2 if array else 1
            else:
                parts, i = self._key(i)
                self._record(table + parts, start)
                i = self._value(self._blank(i + 1, newlines=False), table + parts)
            i = self._blank(i, newlines=True)


_SCALAR_END = re.compile(r"[,\]}\r\n#]")


def _escaped(text: str, at: int) -> bool:
    """Whether the character at ``at`` is escaped by an odd run of backslashes before it."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _unescape(raw: str) -> str:
    """A quoted key's name: its basic-string escapes decoded (by tomllib, the reader that read the file)."""
    if "\\" not in raw:
        return raw
    return next(iter(tomllib.loads(f'"{raw}" = 0')))


def _fail(path: Path, line: int, message: str) -> ClaimsFileError:
    return ClaimsFileError(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def unknown_keys(lines: KeyLines, where: tuple, table: dict[str, Any], known: Sequence[str],
                 noun: str = "key") -> tuple[int, str] | None:
    """The keys of ``table`` (at path ``where`` in the file) that are not in ``known``, as one message and the
    line of the first of them; None when there are none. Shared by the claims and budgets files."""
    unknown = sorted((key for key in table if key not in known), key=lambda key: lines.line(*where, key))
    if not unknown:
        return None
    return lines.line(*where, unknown[0]), unknown_message(unknown, known, noun)


def _refuse_unknown(path: Path, lines: KeyLines, where: tuple, table: dict[str, Any], known: Sequence[str],
                    label: str, noun: str = "key") -> None:
    found = unknown_keys(lines, where, table, known, noun)
    if found is not None:
        line, message = found
        raise _fail(path, line, f"{label}: {message}" if label else message)


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

    lines = KeyLines(text)  # once per file: every message below finds its line here
    _refuse_unknown(path, lines, (), data, TOP_KEYS, "", noun="table")
    document = data.get("document")
    if not isinstance(document, dict):
        raise _fail(path, 1, "missing [document] table (id, title, source, model)")
    _refuse_unknown(path, lines, ("document",), document, DOCUMENT_KEYS, "[document]")
    for key in DOCUMENT_REQUIRED:
        if not isinstance(document.get(key), str):
            raise _fail(path, lines.line("document", key), f"[document] needs a string {key!r}")
    families = document.get("families", {})
    if not isinstance(families, dict):
        raise _fail(path, lines.line("document", "families"), "[document] families must be a table of claim kinds")
    _refuse_unknown(path, lines, ("document", "families"), families, FAMILY_KINDS, "[document] families")
    components = data.get("components", {})
    if not isinstance(components, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in components.values()
    ):
        raise _fail(path, lines.line("components"), "[components] must map names to lists of module paths")

    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise _fail(path, lines.line("claims"), "no [[claims]]")
    claims: list[Claim] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_claims, 1):
        claims.append(_claim(path, lines, raw, index, seen, components))
    _validate_references(path, claims)
    return Document(
        id=document["id"], title=document["title"], source=document["source"], model=document["model"],
        components={k: tuple(v) for k, v in components.items()}, claims=tuple(claims), path=str(path),
        families=dict(families),
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


def _claim(path: Path, lines: KeyLines, raw: Any, index: int, seen: set[str], components: dict[str, Any]) -> Claim:
    at = ("claims", index - 1)  # where this claim's keys stand in the file
    if not isinstance(raw, dict):
        raise _fail(path, lines.line(*at), f"claim #{index} is not a table")
    claim_id = raw.get("id")
    if not isinstance(claim_id, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", claim_id):
        raise _fail(path, lines.line(*at, "id"),
                    f"claim #{index}: 'id' must be an identifier (letters, digits, _), got {claim_id!r}")
    line = lines.line(*at, "id")
    if claim_id in seen:
        raise _fail(path, line, f"claim id {claim_id!r} is used twice")
    seen.add(claim_id)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _fail(path, line, f"claim {claim_id!r}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    spec = CLAIM_KEYS[kind]
    _refuse_unknown(path, lines, at, raw, spec.allowed, f"claim {claim_id!r} ({kind})")
    for key in ("where",) + tuple(k for k in spec.required if k in _PRINTED):
        if not isinstance(raw.get(key), str):
            raise _fail(path, line, f"claim {claim_id!r}: needs a string {key!r}")
    for key in spec.required:
        if key not in raw:
            raise _fail(path, line, f"claim {claim_id!r} ({kind}): needs {key!r}")
    for key in ("component",):
        name = raw.get(key)
        if name is not None and name not in components:
            raise _fail(path, line, f"claim {claim_id!r}: component {name!r} is not in [components]")
    if "rows" in spec.required:
        _check_rows(path, lines, at, raw["rows"], f"claim {claim_id!r} ({kind})")
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
                raise _fail(path, lines.line(*at, "tolerance"),
                            f"claim {claim_id!r}: tolerance must be a non-negative number")
            figure = dataclasses.replace(figure, tolerance=float(tolerance))
    fields = {k: v for k, v in raw.items() if k not in ("id", "kind", "where", "printed", "value", "tolerance")}
    return Claim(id=claim_id, kind=kind, where=raw["where"], printed=printed or "", figure=figure, line=line,
                 fields=fields)


def _check_rows(path: Path, lines: KeyLines, at: tuple, rows: Any, label: str) -> None:
    """A score table: a list of rows, each naming exactly its :data:`ROW_KEYS`."""
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise _fail(path, lines.line(*at, "rows"), f"{label}: rows must be a list of tables "
                                                   f"{{ {', '.join(f'{k} = ID' for k in ROW_KEYS)} }}")
    for number, row in enumerate(rows, 1):
        where = (*at, "rows", number - 1)
        _refuse_unknown(path, lines, where, row, ROW_KEYS, f"{label}: rows #{number}")
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise _fail(path, lines.line(*where), f"{label}: rows #{number} needs {', '.join(missing)}")
