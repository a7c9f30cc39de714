"""Reading README.md for tests/test_readme.py: its fenced blocks and sections, the commands of its shell blocks and
of ``.ci/run``, a tiny parser for the YAML subset of its GitHub Actions snippet, and its figures of speed.

Nothing here runs anything; the tests decide what each block means.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"

# The Python API section (its heading starts with API_START; it ends before API_END): its blocks are run like any
# other, but its prose is left out of the figure checks (it quotes no benchmark).
API_START = "## Python API"
API_END = "### Layer formulas"


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the opening fence."""
    end: int
    """1-based line of the closing fence."""
    lang: str
    text: str
    section: str
    """The nearest heading above the block."""
    before: str
    """The prose between the previous block (or the section's heading) and this one."""

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


def fenced_blocks(text: str) -> list[Block]:
    """Every ``` fenced block, in order. An unclosed fence is an error (it would hide the rest of the file)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section = ""
    prose: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section, prose = line.lstrip("#").strip(), []
        elif line.startswith("```"):
            lang = line[3:].strip()
            start = i
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            if i == len(lines):
                raise ValueError(f"README.md:{start + 1}: a fence that is never closed")
            body = "\n".join(lines[start + 1 : i]) + "\n"
            blocks.append(Block(start + 1, i + 1, lang, body, section, "\n".join(prose)))
            prose = []
        else:
            prose.append(line)
        i += 1
    return blocks


def api_lines(text: str) -> range:
    """The 1-based line numbers of the Python API section (heading included, "### Layer formulas" excluded)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line == API_START or line.startswith(API_START + ":"))
    end = lines.index(API_END, start)
    return range(start + 1, end + 1)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the README outside fenced blocks and outside the Python API section; a fenced
    block's lines come back blank, so that paragraphs stay apart."""
    skip = set(api_lines(text))
    for block in fenced_blocks(text):
        skip.update(range(block.line, block.end + 1))
    return [(n, "" if n in skip else line) for n, line in enumerate(text.splitlines(), 1)]


def paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph of prose (blank-line separated); a paragraph that ends with ``:``
    introduces what follows it (a list, a table) and is joined with the next one."""
    found: list[tuple[int, list[str]]] = []
    current: list[str] = []
    first = 0
    for n, line in [*prose_lines(text), (0, "")]:
        if line.strip():
            if not current:
                first = n
            current.append(line)
        elif current:
            found.append((first, current))
            current = []
    joined: list[tuple[int, str]] = []
    for first, lines in found:
        if joined and joined[-1][1].rstrip().endswith(":") and not joined[-1][1].startswith("#"):
            joined[-1] = (joined[-1][0], joined[-1][1] + "\n" + "\n".join(lines))
        else:
            joined.append((first, "\n".join(lines)))
    return joined


# --- shell commands ---------------------------------------------------------------------------------------------


def split_commands(line: str) -> list[list[str]]:
    """The commands of one shell line: shlex words (a trailing ``# comment`` dropped), split at ``&&``."""
    words = shlex.split(line, comments=True)
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            commands.append([])
        elif word in {"|", "||", ";", "&", ">", "<"}:
            raise ValueError(f"{line!r}: only commands joined by && are understood, not {word!r}")
        else:
            commands[-1].append(word)
    return [c for c in commands if c]


def venvs(commands: list[list[str]]) -> set[str]:
    """The directories that ``python -m venv DIR`` creates among ``commands``."""
    return {c[3] for c in commands if len(c) == 4 and c[1:3] == ["-m", "venv"]}


def normalised(command: list[str], venv_dirs: set[str]) -> tuple[str, ...]:
    """A command as CI and the README both write it: a virtual environment's directory is ``<venv>``, its
    ``<venv>/bin/X`` is ``X`` (the same program as ``X`` once the environment is activated), and pip's ``-q`` is
    dropped (it changes only how much pip prints)."""
    out = []
    for word in command:
        for venv in venv_dirs:
            if word == venv:
                word = "<venv>"
            elif word.startswith(venv + "/bin/"):
                rest = word[len(venv) + len("/bin/") :]
                word = rest if rest != "activate" else "<venv>/bin/activate"
        out.append(word)
    if out[:2] == ["pip", "install"]:
        out = [w for w in out if w != "-q"]
    return tuple(out)


def ci_commands() -> set[tuple[str, ...]]:
    """Every command ``.ci/run`` runs, normalised (its shell builtins and set-up lines included)."""
    commands = []
    for line in CI_RUN.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands += split_commands(line)
    dirs = venvs(commands)
    return {normalised(c, dirs) for c in commands}


# --- the YAML of a GitHub Actions job ----------------------------------------------------------------------------


class Scalar(str):
    """A YAML scalar with the README line it stands on and the comment that follows it."""

    line: int
    comment: str


def _scalar(text: str, line: int, comment: str) -> Scalar:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    elif text[:1] in "\"'|>&*!%@`":
        raise ValueError(f"README.md:{line}: YAML {text!r} is beyond the subset this parser reads")
    value = Scalar(text)
    value.line, value.comment = line, comment
    return value


def _value(text: str, line: int, comment: str) -> object:
    text = text.strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError(f"README.md:{line}: a flow mapping that does not close on its line")
        inner = text[1:-1].strip()
        pairs = [p for p in (part.strip() for part in inner.split(",")) if p] if inner else []
        mapping = {}
        for pair in pairs:
            key, sep, value = pair.partition(": ")
            if not sep:
                raise ValueError(f"README.md:{line}: {pair!r} is not 'key: value'")
            mapping[key.strip()] = _scalar(value, line, comment)
        return mapping
    if text.startswith("["):
        raise ValueError(f"README.md:{line}: flow sequences are beyond the subset this parser reads")
    return _scalar(text, line, comment)


def strip_comment(text: str) -> tuple[str, str]:
    """A YAML or shell line without its comment (a ``#`` at the start or after a space, outside quotes), and the
    comment."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'" and (i == 0 or text[i - 1] in " :{,-"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip(), text[i + 1 :].strip()
    return text.rstrip(), ""


def parse_yaml(text: str, first_line: int) -> object:
    """The subset of YAML a workflow snippet uses: block mappings, block sequences of mappings, plain and quoted
    scalars, one-line flow mappings, comments. Anything else is refused (ValueError naming the README line), so
    the snippet can never say more than this parser checks."""
    rows: list[tuple[int, int, str, str]] = []  # (README line, indent, content, comment)
    for n, raw in enumerate(text.splitlines(), first_line):
        if "\t" in raw:
            raise ValueError(f"README.md:{n}: a tab in YAML")
        content, comment = strip_comment(raw)
        if content.strip():
            rows.append((n, len(content) - len(content.lstrip(" ")), content.strip(), comment))

    def block(i: int, indent: int) -> tuple[object, int]:
        if rows[i][2].startswith("- "):
            items = []
            while i < len(rows) and rows[i][1] == indent and rows[i][2].startswith("- "):
                n, _, content, comment = rows[i]
                # "- key: value" opens a mapping whose further keys sit at the indent of "key"
                rows[i] = (n, indent + 2, content[2:], comment)
                item, i = mapping(i, indent + 2)
                items.append(item)
            return items, i
        return mapping(i, indent)

    def mapping(i: int, indent: int) -> tuple[dict[str, object], int]:
        result: dict[str, object] = {}
        while i < len(rows) and rows[i][1] == indent and not rows[i][2].startswith("- "):
            n, _, content, comment = rows[i]
            key, sep, rest = content.partition(":")
            if not sep or (rest and not rest.startswith(" ")):
                raise ValueError(f"README.md:{n}: {content!r} is not 'key: value'")
            if key in result:
                raise ValueError(f"README.md:{n}: key {key!r} given twice")
            i += 1
            if rest.strip():
                result[key] = _value(rest, n, comment)
            elif i < len(rows) and rows[i][1] > indent:
                result[key], i = block(i, rows[i][1])
            elif i < len(rows) and rows[i][1] == indent and rows[i][2].startswith("- "):
                result[key], i = block(i, indent)  # a sequence may sit at its key's indent
            else:
                raise ValueError(f"README.md:{n}: key {key!r} has no value")
        return result, i

    if not rows:
        raise ValueError(f"README.md:{first_line}: empty YAML")
    parsed, i = block(0, rows[0][1])
    if i != len(rows):
        raise ValueError(f"README.md:{rows[i][0]}: unexpected indentation in YAML")
    return parsed


# --- figures -----------------------------------------------------------------------------------------------------

GENERATED = re.compile(r"`(reports/[\w.-]+\.md)`")

# A figure of speed or scale, as the README's sentences quoting a benchmark write one: a ratio with decimals or
# thousands separators ("0.76x", "243,985x"; a whole "16x" is a bound in the Limits table, not a measurement), a
# count in millions or billions ("35 million", "6.4-billion-parameter"), a time or a memory ("10.4 ms", "3.28 s",
# "1.1 MB"), a rate ("127 per second", "145 configurations/s").
FIGURE = re.compile(
    r"(?P<ratio>(?<![\w.,])(?:\d+\.\d+|\d{1,3}(?:,\d{3})+)x\b)"
    r"|(?P<scaled>(?<![\w.,])\d+(?:\.\d+)?)[- ](?P<scale>million|billion)\b"
    r"|(?P<amount>(?<![\w.,])\d+(?:\.\d+)?) (?P<unit>ms|s|MB)\b"
    r"|(?P<rate>(?<![\w.,])\d[\d,]*(?:\.\d+)?) (?:configurations )?(?:per second|configurations/s)\b"
)
COUNT = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?![\d])(?!\.\d)(?!,\d)")
_NUMBER = re.compile(r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?!\.\d)(?!,\d)|(?<![\w.,])\d{6,}(?!\.\d)")


def contains_token(haystack: str, token: str) -> bool:
    """``token`` in ``haystack`` not as part of a longer number or word ("1.1" is not in "11.1" nor in "1.15")."""
    return re.search(r"(?<![\w.,])" + re.escape(token) + r"(?![\w]|[.,]\d)", haystack) is not None


def table_rows(markdown: str) -> list[dict[str, str]]:
    """Each body row of each Markdown table in ``markdown``, as {column header: cell}, ``**`` stripped."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    previous = ""
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header, previous = None, ""
            continue
        if re.fullmatch(r"[\s|:-]+", line):
            header = _cells(previous)
        elif header is not None:
            rows.append(dict(zip(header, _cells(line), strict=False)))
        previous = line
    return rows


def _cells(line: str) -> list[str]:
    return [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]


def first_table_after(markdown: str, marker: str) -> list[dict[str, str]]:
    """The body rows of the first table after the first line that contains ``marker``."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if marker in line), None)
    if start is None:
        raise LookupError(f"no line contains {marker!r}")
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.strip().startswith("|"):
            table.append(line)
        elif table:
            break
    return table_rows("\n".join(table))


def table_cells(markdown: str) -> list[tuple[str, str]]:
    """(column header, cell) of every cell of every Markdown table in ``markdown``."""
    return [(header, cell) for row in table_rows(markdown) for header, cell in row.items()]


_UNIT_HEADER = {"s": re.compile(r"\bs\b|seconds"), "ms": re.compile(r"\bms\b"), "MB": re.compile(r"\bMB\b")}
_RATE_HEADER = re.compile(r"/s\b|per second")


def figure_in(figure: re.Match[str], generated: str) -> bool:
    """Whether the figure is one that the generated file holds: literally, as the cell of a table column in its
    unit, or (for a count in millions or billions) as a number it rounds."""
    if figure["ratio"]:
        return contains_token(generated, figure["ratio"])
    if figure["scaled"]:
        if contains_token(generated, f"{figure['scaled']} {figure['scale']}"):
            return True
        quoted = figure["scaled"]
        decimals = len(quoted.partition(".")[2])
        scale = 1e6 if figure["scale"] == "million" else 1e9
        return any(
            round(int(n.replace(",", "")) / scale, decimals) == float(quoted) for n in _NUMBER.findall(generated)
        )
    if figure["amount"]:
        amount, unit = figure["amount"], figure["unit"]
        return contains_token(generated, f"{amount} {unit}") or any(
            cell == amount and _UNIT_HEADER[unit].search(header) for header, cell in table_cells(generated)
        )
    rate = figure["rate"]
    return contains_token(generated, f"{rate} per second") or any(
        cell == rate and _RATE_HEADER.search(header) for header, cell in table_cells(generated)
    )
