"""Reading a TOML file that a user supplies (a claims file, a budgets file): bounded before it is read, every key
found at its line in one pass, every value checked against a declared type and never coerced, and every refusal
one line that shows the value clipped.

Shared by :mod:`archaudit.claims.loader` and :mod:`archaudit.budgets.file`, and by the checks of
:mod:`archaudit.budgets.check` on values given in Python.
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

from .errors import ArchauditError

KeyPath = tuple[str | int, ...]
"""Where a value sits in a TOML document: its table keys and array-of-tables indices, outermost first."""

MAX_FILE_BYTES = 1 << 20
"""The largest claims or budgets file read: 1 MiB (1,048,576 bytes; the largest shipped claims file is 15 KB).
A larger file, or anything but a regular file (a device such as /dev/zero, a pipe), is refused before it is read."""
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


def nonempty_strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


STRING = FieldType("a string", _is_str)
POSITIVE_INT = FieldType("a positive integer", lambda v: is_int(v) and v >= 1)
NON_NEGATIVE = FieldType("a finite number >= 0", lambda v: finite(v) is not None and v >= 0)
FINITE = FieldType("a finite number", lambda v: finite(v) is not None)
STRINGS = FieldType("a non-empty list of strings", nonempty_strings)
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


def unknown_keys(
    lines: KeyLines, where: KeyPath, table: dict[str, Any], known: Sequence[str], noun: str = "key"
) -> tuple[int, str] | None:
    """The keys of ``table`` (at path ``where`` in the file) that are not in ``known``, as one message and the
    line of the first of them; None when there are none. Shared by the claims and budgets files."""
    unknown = sorted((key for key in table if key not in known), key=lambda key: lines.line(*where, key))
    if not unknown:
        return None
    return lines.line(*where, unknown[0]), unknown_message(unknown, known, noun)


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def read_bounded_bytes(
    path: Path,
    *,
    max_bytes: int,
    error: Callable[[str], ArchauditError],
    missing: str,
    bound: str,
    too_big: str | None = None,
) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes``: anything else is refused with ``error``
    before it is read (a link is followed, so a link to /dev/zero is a character device), and a file that grows
    after it was measured is read to the bound only. ``missing`` names the file when there is none ("no such
    claims file"), ``bound`` says what it must be, ``too_big`` (default ``bound``) what its size may be."""
    too_big = too_big or bound
    try:
        status = path.stat()  # never opened before it is known to be a file: opening a pipe waits for a writer
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: cannot read it ({exc})") from None
    if not stat.S_ISREG(status.st_mode):
        what = next((f" ({name})" for test, name in _FILE_KINDS if test(status.st_mode)), "")
        raise error(f"{path}: is not a regular file{what}; {bound}")
    if status.st_size > max_bytes:
        raise error(f"{path}: is {status.st_size:,} bytes; {too_big}")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: is more than {max_bytes:,} bytes; {too_big}")
    return data


def read_bounded(path: Path, noun: str, error: Callable[[str], ArchauditError]) -> str:
    """The text of ``path``, a regular file of at most :data:`MAX_FILE_BYTES` (:func:`read_bounded_bytes`), as
    UTF-8. Shared by the claims and budgets files; ``noun`` is what the file is ("claims file")."""
    mib = f"{MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES / 2**20:g} MiB)"
    data = read_bounded_bytes(
        path,
        max_bytes=MAX_FILE_BYTES,
        error=error,
        missing=f"no such {noun}",
        bound=f"a {noun} is a regular file of at most {mib}",
        too_big=f"a {noun} has at most {mib}",
    )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read it ({exc})") from None
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
