"""Reading a claims file (TOML). Every error names the file, the line and what is wrong, on one line.

Each kind's keys are declared once (:data:`CLAIM_KEYS`), and so is each key's type (:data:`KEY_TYPES`): a value
of another type is refused as ``PATH:LINE: claim 'id' (kind): key = <value> must be <type>``, never coerced.
A file is read only when it is a regular file of at most :data:`MAX_FILE_BYTES`, nests at most
:data:`MAX_NESTING` deep and holds at most :data:`MAX_CLAIMS` claims; a figure derived from itself is refused.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import difflib
import math
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ArchauditError
from .figures import FigureError, parse_figure
from .model import KINDS, Claim, Document

KeyPath = tuple[str | int, ...]
"""Where a value sits in a TOML document: its table keys and array-of-tables indices, outermost first."""

MAX_FILE_BYTES = 1 << 20
"""The largest claims or budgets file read: 1 MiB (1,048,576 bytes; the largest shipped claims file is 15 KB).
A larger file, or anything but a regular file (a device such as /dev/zero, a pipe), is refused before it is read."""
MAX_CLAIMS = 10_000
"""The most claims one file may hold (the largest shipped file has 66)."""
MAX_NESTING = 16
"""The deepest arrays and tables may nest (a claims file needs 4: [[claims]], a claim, its rows, a row)."""
MAX_SHOWN = 60
"""How much of a value's repr a message shows."""


def clipped(text: str) -> str:
    """``text`` cut after :data:`MAX_SHOWN` characters (marked ``...``)."""
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def shown(value: Any) -> str:
    """A value as a message shows it: its repr, :func:`clipped`."""
    if isinstance(value, int) and value.bit_length() > MAX_SHOWN * 3.32:  # more digits than are shown (and
        digits = math.floor(value.bit_length() * math.log10(2)) + 1  # repr() refuses past 4,300); within one
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits:,} digits"
    try:
        return clipped(repr(value))
    except ValueError:  # such an integer inside a list or table
        return f"a {type(value).__name__} holding an integer too long to show"


@dataclasses.dataclass(frozen=True)
class FieldType:
    """What the value of a key must be: ``accepts`` tells a value of the type (it never converts one), and
    ``expected`` completes the refusal ``key = <value> must be <expected>``."""

    expected: str
    accepts: Callable[[Any], bool]

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (``"must be a string"``), or None when nothing is."""
        return None if self.accepts(value) else f"must be {self.expected}"


def is_int(value: Any) -> bool:
    """An integer, and not a bool (TOML's ``true`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def finite(value: Any) -> float | None:
    """``value`` as a finite float; None when it is not a number (bools are not), is nan or infinite, or is an
    integer too large for a float (``10**400``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


STRING = FieldType("a string", _is_str)
POSITIVE_INT = FieldType("a positive integer", lambda v: is_int(v) and v >= 1)
NON_NEGATIVE = FieldType("a finite number >= 0", lambda v: finite(v) is not None and v >= 0)
FINITE = FieldType("a finite number", lambda v: finite(v) is not None)
STRINGS = FieldType("a non-empty list of strings", _strings)
EXPRESSION = FieldType(
    "a non-empty string (an arithmetic expression)", lambda v: isinstance(v, str) and bool(v.strip())
)
EXPRESSIONS = FieldType(
    "a non-empty list of expressions (non-empty strings)",
    lambda v: _strings(v) and all(EXPRESSION.accepts(item) for item in v),
)
FAMILY = FieldType(
    "a model family's name or a non-empty list of them",
    lambda v: _strings([v] if isinstance(v, str) else v) and all(v if isinstance(v, list) else [v]),
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
    # the keys each kind's check reads (check.py), and only those: a key no check reads is a mistake
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
    "ranking": KindKeys(("label", "among"), (*_PRINTED, "labels", "order")),
    "score_formula": KindKeys(("rows",), _PRINTED),
    "score": KindKeys((*_PRINTED, "params", "rmse"), (*_FIGURE, "model", "implied")),
    "baseline": KindKeys((*_PRINTED, "model"), (*_FIGURE, "implied")),
    "reported": KindKeys(_PRINTED, (*_FIGURE, "published", "published_source", "reason", "implied")),
    "throughput": KindKeys(_PRINTED, (*_FIGURE, "implied")),
    "attribute": KindKeys((*_PRINTED, "module"), (*_FIGURE, "count_type", "attribute", "implied")),
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
    "dtype": STRING,  # one of check.DTYPE_BYTES (checked with the references)
    "label": STRING,
    "among": STRINGS,
    "labels": STRINGS,
    "order": FieldType("'max' or 'min'", lambda v: isinstance(v, str) and v in ("max", "min")),
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
}
"""The type of every key a claim may carry, declared once beside :data:`CLAIM_KEYS`; checked, never coerced."""

TOP_KEYS = ("document", "components", "claims")
DOCUMENT_REQUIRED = ("id", "title", "source", "model")
DOCUMENT_TYPES: dict[str, FieldType] = {
    **dict.fromkeys(DOCUMENT_REQUIRED, STRING),
    "families": FieldType(
        'a table of claim kinds and model families, e.g. { total = "amnl" }', lambda v: isinstance(v, dict)
    ),
}
DOCUMENT_KEYS = tuple(DOCUMENT_TYPES)
FAMILY_KINDS = tuple(kind for kind, spec in CLAIM_KEYS.items() if "family" in spec.optional)
"""The kinds whose counts are searched for in a model family: the keys of ``[document] families``, each a
:data:`FAMILY`."""
COMPONENT_PATHS = FieldType('a non-empty list of module paths (strings, e.g. ["cnn", "lstm.0"])', _strings)
"""Each ``[components]`` entry: a name, and the module paths whose parameters it adds up."""


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
        self._lines: dict[KeyPath, int] = {}
        self._arrays: dict[KeyPath, int] = {}  # array-of-tables path -> index of its latest element
        with contextlib.suppress(IndexError):  # not TOML after all: what was found so far stands
            self._document()

    def line(self, *path: Any) -> int:
        """1-based line of ``path`` or of the nearest enclosing path found; 0 when none is."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return 0

    # -- scanning -----------------------------------------------------------------------------------------------

    def _record(self, path: KeyPath, at: int) -> None:
        line = bisect.bisect_left(self._newlines, at) + 1
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], line)

    def _blank(self, i: int, newlines: bool) -> int:
        """Past spaces and tabs (and, with ``newlines``, line ends and comments)."""
        text = self._text
        while i < len(text):
            char = text[i]
            if char in " \t" or (newlines and char in "\r\n"):
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
            return text[i + 3 : end], end + 3
        j = i + 1
        while text[j] != quote:
            j += 2 if quote == '"' and text[j] == "\\" else 1
        return text[i + 1 : j], j + 1

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

    def _value(self, i: int, path: KeyPath) -> int:
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
                self._record((*path, index), i)
                i = self._blank(self._value(i, (*path, index)), newlines=True)
                if text[i] == ",":
                    i = self._blank(i + 1, newlines=True)
                index += 1
            return i + 1
        match = _SCALAR_END.search(text, i)
        if match is not None and match.start() == i:  # no value here: not TOML
            raise IndexError(i)
        return match.start() if match else len(text)

    def _header(self, parts: tuple[str, ...], array: bool) -> KeyPath:
        """The path a ``[a.b]`` or ``[[a.b]]`` header opens: the elements of enclosing arrays of tables included."""
        path: KeyPath = ()
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
        table: KeyPath = ()
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


def unknown_keys(
    lines: KeyLines, where: KeyPath, table: dict[str, Any], known: Sequence[str], noun: str = "key"
) -> tuple[int, str] | None:
    """The keys of ``table`` (at path ``where`` in the file) that are not in ``known``, as one message and the
    line of the first of them; None when there are none. Shared by the claims and budgets files."""
    unknown = sorted((key for key in table if key not in known), key=lambda key: lines.line(*where, key))
    if not unknown:
        return None
    return lines.line(*where, unknown[0]), unknown_message(unknown, known, noun)


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


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def read_bounded(path: Path, noun: str, error: Callable[[str], ArchauditError]) -> str:
    """The text of ``path``, a regular file of at most :data:`MAX_FILE_BYTES`: anything else is refused with
    ``error`` before it is read (a link is followed, so a link to /dev/zero is a character device). Shared by the
    claims and budgets files; ``noun`` is what the file is ("claims file")."""
    mib = f"{MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES / 2**20:g} MiB)"
    bound = f"a {noun} is a regular file of at most {mib}"
    try:
        status = path.stat()  # never opened before it is known to be a file: opening a pipe waits for a writer
    except FileNotFoundError:
        raise error(f"{path}: no such {noun}") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: cannot read it ({exc})") from None
    if not stat.S_ISREG(status.st_mode):
        what = next((f" ({name})" for test, name in _FILE_KINDS if test(status.st_mode)), "")
        raise error(f"{path}: is not a regular file{what}; {bound}")
    too_big = f"a {noun} has at most {mib}"
    if status.st_size > MAX_FILE_BYTES:
        raise error(f"{path}: is {status.st_size:,} bytes; {too_big}")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)  # a file that grows after stat() is still read to the bound only
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read it ({exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path}: is more than {MAX_FILE_BYTES:,} bytes; {too_big}")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # line ends as Path.read_text reads them


def read_toml(path: Path, noun: str, error: Callable[[str], ArchauditError]) -> tuple[str, dict[str, Any]]:
    """A file's text (:func:`read_bounded`) and its data, nesting at most :data:`MAX_NESTING` deep; every mistake
    is ``error("PATH:LINE: ...")``. Shared by the claims and budgets files."""
    text = read_bounded(path, noun, error)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 0) or int((re.search(r"line (\d+)", str(exc)) or [0, 0])[1])
        message = f"not valid TOML: {str(exc).split(' (at')[0]}"
        raise error(f"{path}:{line}: {message}" if line else f"{path}: {message}") from None
    except ValueError as exc:  # an integer past Python's 4,300 digits: int() refuses it inside tomllib
        raise error(f"{path}: not valid TOML here: {str(exc).split(';')[0]}") from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        raise error(
            f"{path}: arrays or tables nested too deeply to read; a {noun} nests them at most {MAX_NESTING} levels deep"
        ) from None
    depth, where = _deepest(data)
    if depth > MAX_NESTING:
        line = KeyLines(text).line(*where)
        raise error(
            f"{path}:{line}: arrays and tables nest {depth} levels deep; at most {MAX_NESTING}"
            if line
            else f"{path}: arrays and tables nest {depth} levels deep; at most {MAX_NESTING}"
        )
    return text, data


def _deepest(data: dict[str, Any]) -> tuple[int, KeyPath]:
    """How deep arrays and tables nest in ``data`` (a top-level table or array is 1 deep), and the path of the
    first of the deepest; without recursion, whatever the depth."""
    deepest: tuple[int, KeyPath] = (0, ())
    stack: list[tuple[Any, KeyPath, int]] = [(data, (), 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > deepest[0]:
            deepest = (depth, where)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend(
            (child, (*where, key), depth + 1) for key, child in reversed(list(items)) if isinstance(child, (dict, list))
        )
    return deepest


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


_FIGURE_REFERENCES = {"sum": ("terms",), "ranking": ("among", "label"), "score": ("params", "rmse")}
"""Keys whose values are ids of claims whose figures the check reads (a score_formula's rows also are)."""
_DERIVED_FROM = {"derived": ("expression", "candidates"), "sum": ("terms", "candidates")}
"""The kinds whose figure is checked against others of the same document, and the keys naming those."""


def _validate_references(path: Path, claims: list[Claim]) -> None:
    """What can be checked without a model: every id an expression, term, ranking or score names exists and has
    a figure, no figure is derived from itself, and every dtype and formula layer is known. (Hyperparameters
    are checked against the model's builder.)"""
    from .check import DTYPE_BYTES
    from .layer_formulas import FAMILIES

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
        if claim.kind == "formula" and claim.get("layer") not in FAMILIES:
            raise fail(
                claim, f"no layer family {shown(claim.get('layer'))} for formula claims; one of {', '.join(FAMILIES)}"
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
    if kind == "ranking":
        among = raw["among"]
        if raw["label"] not in among:
            raise _fail(
                path, line, f"{label}: label = {shown(raw['label'])} must be one of among ({clipped(', '.join(among))})"
            )
        if "labels" in raw and len(raw["labels"]) != len(among):
            raise _fail(path, line, f"{label}: labels and among differ in length")
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
