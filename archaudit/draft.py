"""Drafting a claims file from a document: every figure it prints, where it stands, and a guessed kind.

``archaudit draft DOCUMENT`` reads a Markdown (``.md``, ``.markdown``) or plain-text document with markdown-it-py:
its headings give each figure's heading path, its tables the table, row and column a figure stands in, and
everything else the heading and the line. In a plain-text document (any other suffix) ``#`` opens no heading and
nothing is read as emphasis, HTML or a link: a heading is a short title-like line, and a table pasted without its
separators ("ComponentParametersPercentage", then "CNN Feature Extractor53,1841.5%") is read back into its
columns. Within a line or cell a small tokenizer finds the figures :func:`~archaudit.claims.figures.parse_figure`
reads ("3,502,849", "~2.36M", "402K", "67.4%", "14 MB", "0.73 GFLOPs", ">30K", "~12-15M", "3.3x") and the counts a
noun follows ("12 attention heads", "5-layer MLP", "Hidden size: 384").

Each figure's kind is a guess from the words around it, and each claim carries a ``# REVIEW:`` comment saying what
was guessed. With a TARGET the model's module paths and types (:func:`archaudit.audit_params`) are matched to the
document's row labels and nearby words by name ("BiLSTM Encoder" -> ``lstm``), giving ``[components]`` entries,
component and percentage claims, and attribute or count claims for its layer, head and width figures. A figure the
draft cannot give a loadable claim of its kind is drafted as ``reported`` (checked by nothing but what the
document's own figures imply), with a note. The draft loads as written, and with a model it runs to verdicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .claims.figures import Figure, FigureError, parse_figure
from .errors import ArchauditError
from .tomlfile import read_bounded_bytes

MAX_DOCUMENT_BYTES = 2 * 2**20
"""The largest document drafted: 2 MiB (a book chapter is a few hundred KB). Anything larger is refused unread."""
MAX_DRAFT_CLAIMS = 2_000
"""The most claims one draft holds: reading stops at the figure after these, and the draft's header says where."""
DRAFT_BYTES = 960 * 1024
"""What a draft's text is kept under, so that the claims loader (1 MiB at most) reads it."""
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
"""Read as Markdown; any other document is plain text."""
MAX_LABEL = 60
"""The most characters of a row label or heading a ``where`` shows."""


class DraftError(ArchauditError, ValueError):
    """A document cannot be drafted: not a regular file, too large, or not UTF-8 text (the path is named)."""


# ----------------------------------------------------------------------------------------------- reading


def read_document(path: str | Path) -> str:
    """The text of ``path``: a regular file of at most :data:`MAX_DOCUMENT_BYTES` holding UTF-8 text with no NUL
    byte. Anything else is refused with one line before (or instead of) being read."""
    path = Path(path)
    limit = f"a document is a UTF-8 text file of at most {MAX_DOCUMENT_BYTES:,} bytes"
    data = read_bounded_bytes(
        path, max_bytes=MAX_DOCUMENT_BYTES, error=DraftError, missing="no such document", bound=limit
    )
    nul = data.find(b"\0")
    if nul >= 0:
        raise DraftError(f"{path}: holds a NUL byte at offset {nul:,}: a binary file; {limit}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DraftError(f"{path}: is not UTF-8 text (byte {exc.start:,}); {limit}") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


# ------------------------------------------------------------------------------------------- the tokenizer

_MARK = (
    r"(?P<mark>~|≈|≥|≤|>=?|<=?|(?i:about|approximately|approx\.|around|roughly|nearly|over|under|more than|"
    r"less than|fewer than|up to|at least|at most)\s+)?"
)
_LOW = r"(?:(?P<low>\d+(?:\.\d+)?)\s?[-–]\s?~?)?"
_NUMBER = _LOW + r"(?P<num>\d{1,3}(?:,\d{3})+(?![\d,])|\d+(?:\.\d+)?|\.\d+)"
_GLUED_NUMBER = _LOW + r"(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)"
_SCALE = r"(?:\s?(?P<sword>thousand|million|billion|trillion)\b|(?P<scale>[kKMBGT])(?=[A-Z][a-z]|[^\w]|$))?"
_WORK = (
    r"(?:\s?(?P<wscale>[KMGT])?(?P<work>FLOPs|FLOPS|flops|FLOP|MACs|MACS|macs|MAdds|Mult-Adds|mult-adds)(?![A-Za-z]))?"
)
_UNIT = r"(?:\s?(?P<unit>%|MB|GB|KB)(?![A-Za-z])|\s(?P<percent>(?i:percent))\b|(?P<ratio>[x×])(?![\w(]|\s*\d))?"
_PLUS = r"(?P<plus>\+(?!\s*[\d(]))?"
_TAIL = _SCALE + _WORK + _UNIT + _PLUS
_TOKEN = re.compile(_MARK + r"(?<![\w.,/])" + _NUMBER + _TAIL)
_GLUED_TOKEN = re.compile(_MARK + _GLUED_NUMBER + _TAIL)
"""In a row of a table pasted without separators a figure may follow a letter or another figure."""

_MARKS = {
    "~": "~",
    "≈": "≈",
    ">": ">",
    ">=": ">",
    "≥": ">",
    "at least": ">",
    "<": "<",
    "<=": "<",
    "≤": "<",
    "at most": "<",
    "up to": "<",
    "about": "about ",
    "approximately": "approximately ",
    "approx.": "~",
    "around": "~",
    "roughly": "~",
    "nearly": "~",
    "over": "over ",
    "more than": "over ",
    "under": "less than ",
    "less than": "less than ",
    "fewer than": "less than ",
}
_WORKS = {"flops": "FLOPs", "flop": "FLOPs", "macs": "MACs", "madds": "MAdds", "mult-adds": "Mult-Adds"}


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    original: str
    printed: str
    figure: Figure
    scaled: bool
    comma: bool
    bare: bool
    """A plain number: no mark, scale, separator, unit, range or plus."""
    work: str = ""
    unit: str = ""
    ratio: bool = False


def _tokens(text: str, glued: bool = False) -> list[_Token]:
    """The figures of ``text``, left to right: each as printed and as :func:`parse_figure` reads it."""
    found: list[_Token] = []
    for match in (_GLUED_TOKEN if glued else _TOKEN).finditer(text):
        end = match.end()
        after = text[end : end + 1]
        glued_word = bool(match["scale"]) and bool(re.match(r"[A-Z][a-z]", text[end : end + 2]))
        if after.isalpha() and not glued_word:
            continue  # "2def", "4d", "3rd": part of a word
        if after.isdigit() and not glued:
            continue
        mark = (match["mark"] or "").strip().lower()
        mark = _MARKS.get(mark, "")
        number = match["num"]
        low = f"{match['low']}-" if match["low"] else ""
        scale = f" {match['sword']}" if match["sword"] else (match["scale"] or "")
        work = ""
        if match["work"]:
            work = f" {match['wscale'] or ''}{_WORKS.get(match['work'].lower(), match['work'])}"
        unit = ""
        if match["unit"]:
            unit = match["unit"] if match["unit"] == "%" else f" {match['unit']}"
        elif match["percent"]:
            unit = "%"
        elif match["ratio"]:
            unit = match["ratio"]
        printed = f"{mark}{low}{number}{scale}{work}{unit}{'+' if match['plus'] else ''}"
        try:
            figure = parse_figure(printed)
        except FigureError:
            continue
        kind = "flops" if "FLOP" in work else "macs" if work else ""
        found.append(
            _Token(
                start=match.start(),
                end=end,
                original=match.group(),
                printed=printed,
                figure=figure,
                scaled=bool(scale or match["wscale"]),
                comma="," in number,
                bare=not (mark or low or scale or work or unit or match["plus"]),
                work=kind,
                unit=figure.unit,
                ratio=bool(match["ratio"]),
            )
        )
    return found


_CHAIN = re.compile(r"(?<![\w.,])\d+(?:\s*(?:→|->|⟶)\s*\d+)+(?![\w.])")
_EXPRESSION_CELL = re.compile(r"[\d\s,.×x*+\-−/()²³^]+")
_RESULT_EQUALS = re.compile(r"(?<![\w.,])(\d[\d,.]*(?:\s*[×x*+\-−/]\s*\(?\d[\d,.]*\)?)+)\s*=\s*(?=\S)")
_SCALING_WORDS = {"halve": "0.5", "halves": "0.5", "halving": "0.5", "double": "2", "doubles": "2", "doubling": "2"}
_SCALING_WORDS |= {"triple": "3", "triples": "3", "quadruple": "4", "quadruples": "4"}
_SCALING = re.compile(
    r"\b(" + "|".join(_SCALING_WORDS) + r")(?![\w-])(?=\s+(?:[\w-]+\s+){0,2}?(?:param|size|flops|macs|memory))",
    re.IGNORECASE,
)

_PARAM_NOUN = re.compile(
    r"^\s*(?:[-–]\s*)?(?:(?:trainable|learnable|total|model|frozen|non-trainable|free)\s+)?"
    r"(?:parameters?|params?|weights|elements)\b",
    re.I,
)
_COUNT_NOUN = re.compile(
    r"^\s*(?:-\s*|\s+)(?P<words>(?:[A-Za-z][\w-]*\s+){0,2}?)(?P<noun>layers?|heads?|blocks?|stages?)\b", re.I
)
_HYPER_NOUN = re.compile(
    r"^\s+(?P<words>(?:[A-Za-z][\w-]*\s+){0,1}?)(?P<noun>units|neurons|channels|filters|dims?|dimensions)\b", re.I
)
_HYPER_LABEL = re.compile(
    r"(?P<label>[A-Za-z][A-Za-z _-]{0,30}?)\s*[:=]\s*$",
)
_HYPER_WORDS = {"size", "dim", "dimension", "channels", "width", "depth", "hidden", "heads", "layers", "kernel"}
_HYPER_WORDS |= {"stride", "units", "features", "embed", "embedding", "blocks", "experts", "vocab"}
_DATA_NOUN = re.compile(
    r"^\s*(?:samples|images|tokens|examples|steps|epochs|iterations|hours|seconds|ms|cycles|engines|sensors|"
    r"readings|rows|lines|words|pages|users|time steps|windows|classes)\b",
    re.I,
)
_THROUGHPUT = re.compile(
    r"^\s*(?:(?:samples|images|imgs?|sequences|tokens|inferences|predictions|frames|queries|requests)\s*)?"
    r"(?:/\s*(?:s|sec|second)\b|per\s+second\b)|^\s*(?:fps|qps|it/s)\b",
    re.I,
)
_RESULT_WORDS = re.compile(
    r"\b(?:rmse|mae|mse|mape|accuracy|acc|f1|auc|score|error|loss|precision|recall|bleu|rouge|perplexity|ppl|"
    r"map|top-?[15]|r2|r²|iou|dice)\b",
    re.I,
)
_TOTAL_LABEL = re.compile(r"(?i)(?:\b|^|(?<=[a-z]))(?:sub)?total(?:s)?\b|^(?:sub)?total")
_HEADER_SCALE = re.compile(r"\(\s*(?:in\s+)?(K|M|B|G|T|thousands?|millions?|billions?)\s*\)")
_HEADER_SCALES = {"thousand": "K", "thousands": "K", "million": "M", "millions": "M", "billion": "B"}
_HEADER_SCALES |= {"billions": "B"}
_DTYPES = (
    (re.compile(r"\b(?:bfloat16|bf16)\b", re.I), "bfloat16"),
    (re.compile(r"\b(?:float16|fp16|half)\b", re.I), "float16"),
    (re.compile(r"\b(?:int8|8-bit)\b", re.I), "int8"),
    (re.compile(r"\b(?:float64|fp64|double)\b", re.I), "float64"),
    (re.compile(r"\b(?:float32|fp32|full precision)\b", re.I), "float32"),
)


# ---------------------------------------------------------------------------------------- what was found


@dataclass
class _Table:
    header: tuple[str, ...]
    heading: str
    number: int


@dataclass
class Found:
    """One figure of the document: as printed, where it stands, and what the words around it make of it."""

    printed: str
    category: str
    """params, percent, work, size, throughput, ratio, result, count, hyper, width, scaling or other."""
    heading: str
    line: int
    text: str
    """The line or cell it stands in."""
    original: str
    start: int = 0
    table: _Table | None = None
    row: int = -1
    label: str = ""
    """Its row's label (in a table), else empty."""
    column: str = ""
    value: str | None = None
    """The figure read instead of ``printed`` (a column's scale, a size in MB, a word such as "halve")."""
    tolerance: float | None = None
    expression: str | None = None
    work: str = ""
    noun: str = ""
    in_heading: bool = False
    total_like: bool = False
    trainable: str = ""
    """"trainable" or "frozen" when the words before it say so."""

    @functools.cached_property
    def figure(self) -> Figure:
        figure = parse_figure(self.value if self.value is not None else self.printed)
        if self.tolerance is not None:
            figure = dataclasses.replace(figure, tolerance=self.tolerance)
        return figure

    @property
    def where(self) -> str:
        place = self.heading
        if self.table is not None:
            header = _clip(" | ".join(self.table.header), 2 * MAX_LABEL)
            inside = f"table '{header}', row '{_clip(self.label)}', column '{_clip(self.column)}'"
            place = f"{place}: {inside}" if place else inside
        elif self.in_heading:
            place = f"heading '{_clip(self.heading)}'"
        return f"{place}, line {self.line}" if place else f"line {self.line}"


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _before_words(text: str, start: int, count: int = 5) -> str:
    return " ".join(re.findall(r"[A-Za-z][\w-]*", text[max(0, start - 80) : start])[-count:]).lower()


def _trainable(text: str, start: int) -> str:
    before = _before_words(text, start, 4)
    if re.search(r"\b(?:frozen|non-trainable|untrainable)\b", before):
        return "frozen"
    return "trainable" if re.search(r"\btrainable\b", before) else ""


_TOTAL_LABEL = re.compile(
    r"(?:total\s+)?(?:number\s+of\s+)?(?:param(?:eter)?s?|parameter\s+count|#\s?params|weights)"
    r"(?:\s+\(total\))?|total(?:\s+parameters)?",
    re.IGNORECASE,
)
"""A row label that is the model's parameter count itself ("Parameters", "Total parameters", "# Params")."""


def _header_category(header: str) -> tuple[str, str]:
    """What a column's header says its figures are, and the scale it gives them ("Params (M)": params, M)."""
    scale_match = _HEADER_SCALE.search(header)
    scale = ""
    if scale_match:
        word = scale_match.group(1)
        scale = _HEADER_SCALES.get(word.lower(), word)
    lower = header.lower()
    if re.search(r"flops|macs|madds|mult-adds", lower):
        return ("work", "G" if "gflop" in lower or "gmac" in lower else scale)
    if "%" in header or re.search(r"\b(?:percentage|percent|share|fraction)\b", lower):
        return ("percent", "")
    if re.search(r"\b(?:throughput|speed|samples/s|latency)\b", lower):
        return ("throughput", scale)
    if _RESULT_WORDS.search(header):
        return ("result", "")
    if re.search(r"\b(?:size|memory|mb|gb)\b", lower):
        return ("size", "GB" if re.search(r"\bgb\b", lower) else "MB")
    if re.search(r"\b(?:param|params|parameters|parameter count|weights|#params)\b", lower):
        return ("params", scale)
    return ("", "")


class _Full(Exception):
    """A draft holds :data:`MAX_DRAFT_CLAIMS` figures already: reading the document stops."""


class _Scanner:
    """Walks a document's lines and cells, collecting every figure as a :class:`Found`."""

    def __init__(self) -> None:
        self.found: list[Found] = []
        self.heading = ""
        self.tables = 0
        self.stopped_at = 0
        """The line at which reading stopped, the draft being full (0 when the whole document was read)."""

    # -- prose ---------------------------------------------------------------------------------------

    def line(self, text: str, line: int, *, in_heading: bool = False) -> None:
        taken: list[tuple[int, int]] = []
        for chain in _CHAIN.finditer(text):
            last = re.findall(r"\d+", chain.group())[-1]
            taken.append(chain.span())
            if re.search(r"\bchannels?|widths?|dims?|features?\b", text[: chain.start()], re.I):
                self._add(last, "width", text, line, chain.start(), chain.group(), noun=text[: chain.start()])
        for equation in _RESULT_EQUALS.finditer(text):
            tokens = _tokens(text[equation.end() :])
            if not tokens or tokens[0].start != 0 or not _evaluates(equation.group(1)):
                continue
            token = tokens[0]
            taken.append((equation.start(), equation.end() + token.end))
            category = self._prose_category(text, dataclasses.replace(token, start=equation.end()))
            self._add(
                token.printed,
                category or "params",
                text,
                line,
                equation.end(),
                token.original,
                expression=equation.group(1).strip(),
                in_heading=in_heading,
            )
        for word in _SCALING.finditer(text):
            value = _SCALING_WORDS[word.group().lower()]
            self._add(
                word.group(), "scaling", text, line, word.start(), word.group(), value=value, in_heading=in_heading
            )
        for token in _tokens(text):
            if any(a <= token.start < b for a, b in taken):
                continue
            category = self._prose_category(text, token)
            if category is None:
                continue
            self._token(token, category, text, line, in_heading=in_heading)

    def _prose_category(self, text: str, token: _Token) -> str | None:
        after = text[token.end : token.end + 40]
        category = _figure_category(token, after)
        if category == "percent" and _RESULT_WORDS.search(_before_words(text, token.start, 4)):
            return "result"  # "an accuracy of 91.2%"
        if category is not None:
            return category
        if token.bare:
            noun = _COUNT_NOUN.match(after) or _HYPER_NOUN.match(after)
            if noun:
                return "count" if _COUNT_NOUN.match(after) else "hyper"
            if "." not in token.printed and _hyper_label(text[: token.start]):
                return "hyper"
            if _PARAM_NOUN.match(after):
                return "params"
            if "." in token.printed and _RESULT_WORDS.search(_before_words(text, token.start, 6)):
                return "result"
        return None

    # -- tables --------------------------------------------------------------------------------------

    def table(self, header: Sequence[str], rows: Sequence[tuple[int, Sequence[str]]], glued: bool = False) -> None:
        self.tables += 1
        table = _Table(tuple(_clip(h, MAX_LABEL) for h in header), self.heading, self.tables)
        for index, (line, cells) in enumerate(rows):
            if not cells:
                continue
            label = cells[0].strip()
            before = len(self.found)
            expression = None
            for column, cell in enumerate(cells[1:], 1):
                name = header[column] if column < len(header) else f"column {column + 1}"
                text = cell.strip()
                if _is_expression(text):
                    expression = expression or text
                    continue
                self._cell(text, line, table, index, label, name, glued)
            row = self.found[before:]
            if expression is not None:
                for found in row:
                    if found.category in ("params", "other") and found.expression is None:
                        found.expression = expression
                        break

    def _cell(self, text: str, line: int, table: _Table, row: int, label: str, column: str, glued: bool) -> None:
        header_category, header_scale = _header_category(column)
        if not header_category and label != text:  # a key-value table ("Property | Value"): the row says what it is
            header_category, header_scale = _header_category(label)
        where = {"table": table, "row": row, "label": label, "column": column}
        taken: list[tuple[int, int]] = []
        for chain in _CHAIN.finditer(text):
            last = re.findall(r"\d+", chain.group())[-1]
            taken.append(chain.span())
            self._add(last, "width", text, line, chain.start(), chain.group(), noun=f"{label} {text}", **where)
        tokens = [t for t in _tokens(text, glued) if not any(a <= t.start < b for a, b in taken)]
        for token in tokens:
            after = text[token.end : token.end + 40]
            residue = (text[: token.start] + " " + text[token.end :]).strip()
            whole = len(re.findall(r"[A-Za-z]\w*", re.sub(r"\([^)]*\)", "", residue))) <= 2 and len(tokens) == 1
            category = _figure_category(token, after)
            if category == "percent" and header_category == "result":
                category = "result"  # an accuracy of 91.2% is a result, not a share of the parameters
            if category == "params" and header_category == "work":  # "1.39M" in a FLOPs row or column
                category = "work"
                named = f"{label} {column}".lower()
                token = dataclasses.replace(
                    token, work="macs" if re.search(r"\bmacs?\b|madds|mult-adds", named) else "flops"
                )
            value = None
            if token.bare or (category is None and not token.work):
                noun = _COUNT_NOUN.match(after) or _HYPER_NOUN.match(after)
                if token.bare and noun:
                    category = "count" if _COUNT_NOUN.match(after) else "hyper"
                elif token.bare and "." not in token.printed and _hyper_label(text[: token.start]):
                    category = "hyper"
                elif header_category and (whole or not token.bare):
                    category = header_category
                    value = _scaled(token, header_category, header_scale)
                elif whole or (token.bare and _PARAM_NOUN.match(after)):
                    category = "params" if _PARAM_NOUN.match(after) else "other"
            if category is None:
                continue
            self._token(token, category, text, line, value=value, **where)

    # -- recording -----------------------------------------------------------------------------------

    def _token(self, token: _Token, category: str, text: str, line: int, **extra: Any) -> None:
        if category == "size" and token.unit in ("gigabytes", "kilobytes") and "value" not in extra:
            factor = 1000.0 if token.unit == "gigabytes" else 0.001
            figure = token.figure
            extra["value"] = f"{_number(figure.value * factor)} MB"
            extra["tolerance"] = figure.tolerance * factor
        if extra.get("value") is None:
            extra.pop("value", None)
        self._add(token.printed, category, text, line, token.start, token.original, work=token.work, **extra)

    def _add(self, printed: str, category: str, text: str, line: int, start: int, original: str, **extra: Any) -> None:
        if len(self.found) >= MAX_DRAFT_CLAIMS:
            self.stopped_at = line
            raise _Full
        found = Found(
            printed=printed,
            category=category,
            heading=self.heading,
            line=line,
            text=text,
            original=original,
            start=start,
            **extra,
        )
        try:
            found.figure  # noqa: B018 - every figure drafted is one the loader reads
        except FigureError:
            return
        if found.table is not None:
            found.total_like = bool(_TOTAL_LABEL.search(found.label))
            found.trainable = _trainable(found.label, len(found.label)) or _trainable(text, start)
        else:
            found.total_like = "total" in _before_words(text, start, 3).split()
            found.trainable = _trainable(text, start)
        if category in ("count", "hyper") and not found.noun:
            after = text[found.start + len(original) : found.start + len(original) + 40]
            noun = _COUNT_NOUN.match(after) or _HYPER_NOUN.match(after)
            hyper = _hyper_label(text[: found.start])
            found.noun = f"{noun['words']}{noun['noun']}".strip() if noun else hyper or ""
        self.found.append(found)


def _number(value: float) -> str:
    return f"{value:.6g}" if not float(value).is_integer() else f"{int(value)}"


def _figure_category(token: _Token, after: str) -> str | None:
    """The category a figure's own form gives it (its unit, its scale), or None for a plain number."""
    if token.work:
        return "work"
    if token.unit in ("megabytes", "gigabytes", "kilobytes"):
        return "size"
    if token.unit == "percent":
        return "percent"
    if token.ratio:
        return "ratio"
    if _THROUGHPUT.match(after):
        return "throughput" if not token.bare or token.comma else None
    if token.scaled or token.comma:
        if _DATA_NOUN.match(after):
            return None
        return "params"
    if _PARAM_NOUN.match(after) and not token.bare:
        return "params"
    return None


def _scaled(token: _Token, category: str, scale: str) -> str | None:
    """A figure read with its column's scale ("3.5" under "Params (M)" is 3.5M), or None when it needs none."""
    if category == "percent" and token.unit != "percent":
        return f"{token.printed}%"
    if not token.bare or not scale:
        return None
    if category == "params":
        return f"{token.printed}{scale}"
    if category == "work":
        return f"{token.printed} {scale}FLOPs"
    return None


def _hyper_label(before: str) -> str:
    """The label of "Hidden size: 384" (the text before the figure), when it names a hyperparameter."""
    match = _HYPER_LABEL.search(before)
    if not match:
        return ""
    label = match["label"].strip()
    words = set(re.findall(r"[a-z]+", label.lower()))
    return label if words & _HYPER_WORDS else ""


def _is_expression(text: str) -> bool:
    return (
        bool(_EXPRESSION_CELL.fullmatch(text))
        and len(re.findall(r"\d+", text)) >= 2
        and bool(re.search(r"[×*+/−]|\d\s*x\s*\d|\s-\s", text))
        and _evaluates(text)
    )


def _evaluates(text: str) -> bool:
    from .claims.safe_eval import evaluate

    try:
        evaluate(text)
    except (ArchauditError, ValueError, ArithmeticError, RecursionError):
        return False
    return True


# ------------------------------------------------------------------------------------------ the parser


def _inline_lines(token: Any) -> list[str]:
    """An inline token's text (emphasis markers, link targets and HTML left out), split at its line breaks."""
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts).split("\n")


def _markdown(plain: bool) -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    if plain:
        md.disable(["heading", "lheading", "html_block", "blockquote", "reference", "list"])
        md.disable(["emphasis", "escape", "entity", "link", "image", "autolink", "html_inline"])
    return md


_GLUE = re.compile(r"(?<=[a-z)])(?=[A-Z][a-z])")


def _glued_header(line: str) -> list[str] | None:
    """The columns of a table header pasted without separators ("ComponentParametersPercentage")."""
    text = line.strip()
    if not text or len(text) > 80 or re.search(r"[\d.:;,!?|#=]", text) or not text[0].isupper():
        return None
    columns = [c.strip() for c in _GLUE.split(text)]
    if len(columns) < 2 or len(columns) > 8 or any(len(c.split()) > 4 or not c for c in columns):
        return None
    return columns


def _row_like(line: str) -> bool:
    text = line.strip()
    return bool(text) and len(text) <= 120 and text[0].isalpha() and not text.endswith((".", ":", "?", "!"))


def _glued_row(text: str, columns: int) -> list[str]:
    """A row of a separator-less table as cells: its label (the text before its first figure outside
    parentheses), then its figures from the right, a calculation glued to its result split where it evaluates."""
    depth, cut = 0, len(text)
    tokens = _tokens(text, glued=True)
    for index, char in enumerate(text):
        depth += char == "("
        depth -= char == ")" and depth > 0
        if depth == 0 and any(t.start == index for t in tokens) and index > 0:
            cut = index
            break
    label, rest = text[:cut].strip(), text[cut:].strip()
    if not rest:
        return [label]
    split = _split_calculation(rest)
    if split is not None:
        cells = [split[0], split[1]]
    else:
        cells = [rest[t.start : t.end] + _tail(rest, t) for t in _tokens(rest, True)]
    cells = cells[-(columns - 1) :] if columns > 1 else cells
    return [label, *([""] * (columns - 1 - len(cells))), *cells]


def _tail(text: str, token: _Token) -> str:
    """Words that follow a figure in a separator-less cell ("samples/sec" of ">30K samples/sec")."""
    match = re.match(r"\s*[A-Za-z/][\w/-]*", text[token.end :])
    return match.group() if match else ""


def _split_calculation(rest: str) -> tuple[str, str] | None:
    """A calculation glued to its result, "256 × 128 + 12832,896", as ("256 × 128 + 128", "32,896"): the split of
    the glued digits where the calculation gives the figure that follows it."""
    from .claims.safe_eval import evaluate

    match = re.fullmatch(
        r"(?P<expr>(?:\d[\d,]*(?:\.\d+)?\s*[×x*+\-−/]\s*)+)(?P<glued>\d[\d,]*(?:\.\d+)?)(?P<rest>.*)", rest
    )
    if not match:
        return None
    glued = match["glued"]
    for cut in range(1, len(glued)):
        head, tail = glued[:cut], glued[cut:]
        if head.endswith(",") or not re.fullmatch(r"\d{1,3}(?:,\d{3})+|[1-9]\d*(?:\.\d+)?|0(?:\.\d+)?", tail):
            continue
        if "," in head and not re.fullmatch(r"\d{1,3}(?:,\d{3})+", head):
            continue
        try:
            value = evaluate(match["expr"] + head)
        except (ArchauditError, ValueError, ArithmeticError):
            continue
        if value == evaluate(tail):
            return (match["expr"] + head).strip(), tail + match["rest"]
    return None


_SMALL_WORDS = {"of", "with", "and", "the", "for", "to", "in", "on", "a", "by", "vs", "vs.", "per", "from", "-", "&"}


def _title_like(line: str) -> str:
    """A plain-text line that reads as a heading ("Model Architecture Overview"), else ''."""
    text = re.sub(r"^\d{1,3}(?=[A-Z][a-z])", "", line.strip())
    words = text.split()
    if not words or len(words) > 8 or len(text) > 70 or not text[0].isupper():
        return ""
    if text.endswith((".", ",", ":", ";", "!", "?")) or (len(words) == 1 and text.isupper()):
        return ""
    alphabetic = [w for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'’-]*", w) or w.lower() in _SMALL_WORDS]
    if len(alphabetic) * 3 < len(words) * 2:
        return ""
    capital = [w for w in alphabetic if w[0].isupper()]
    if len(capital) * 2 < len([w for w in alphabetic if w.lower() not in _SMALL_WORDS]):
        return ""
    return text


def _table_breaks(text: str) -> tuple[str, list[int]]:
    """``text`` with a blank line between a table line (one holding ``|``) and a line of prose next to it, and the
    original number of each line. GFM runs a table on to the next blank line, so that in a document that
    leaves none the prose after a table would be read as its rows, and the next table as more rows of the
    first (cut to its columns)."""
    lines = text.split("\n")
    out: list[str] = []
    numbers: list[int] = []
    for number, line in enumerate(lines, 1):
        if out and out[-1].strip() and line.strip() and ("|" in out[-1]) != ("|" in line):
            out.append("")
            numbers.append(number)
        out.append(line)
        numbers.append(number)
    return "\n".join(out), numbers


def scan(text: str, *, plain: bool) -> list[Found]:
    """Every figure of a document's ``text`` (the first :data:`MAX_DRAFT_CLAIMS`), read as Markdown
    (``plain=False``) or as plain text."""
    return _scan(text, plain).found


def _scan(text: str, plain: bool) -> _Scanner:
    scanner = _Scanner()
    with contextlib.suppress(_Full):
        _walk(scanner, text, plain)
    return scanner


def _walk(scanner: _Scanner, text: str, plain: bool) -> None:
    broken, numbers = _table_breaks(text)
    tokens = _markdown(plain).parse(broken)
    source = broken.split("\n")

    def line_of(index: int) -> int:
        return numbers[min(index, len(numbers) - 1)]

    headings: list[tuple[int, str]] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            inline = tokens[index + 1]
            title = " ".join(" ".join(_inline_lines(inline)).split())
            level = int(token.tag[1:])
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, _clip(title)))
            scanner.heading = " > ".join(t for _, t in headings)
            scanner.line(title, line_of(token.map[0]) if token.map else 0, in_heading=True)
            index += 3
            continue
        if token.type == "table_open":
            index = _table(scanner, tokens, index, source, line_of)
            continue
        if token.type == "inline" and token.map:
            lines = _inline_lines(token)
            _paragraph(scanner, lines, [line_of(token.map[0] + n) for n in range(len(lines))], plain)
        elif token.type in ("fence", "code_block") and token.map:
            first = token.map[0] + (1 if token.type == "fence" else 0)
            lines = token.content.split("\n")
            _paragraph(scanner, lines, [line_of(first + n) for n in range(len(lines))], plain, code=True)
        index += 1


_DELIMITER_ROW = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?")


def _table(
    scanner: _Scanner, tokens: Sequence[Any], index: int, source: Sequence[str], line_of: Callable[[int], int]
) -> int:
    """A table's header and rows, read from markdown-it's tokens (a row followed by another delimiter row,
    ``|---|---|``, starts a new table with that row as its header)."""
    rows: list[tuple[int, list[str]]] = []
    current: list[str] = []
    at = 0
    while index < len(tokens) and tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "tr_open":
            current = []
            at = token.map[0] if token.map else at
        elif token.type == "inline":
            current.append(" ".join(_inline_lines(token)))
        elif token.type == "tr_close":
            rows.append((at, current))
        index += 1
    header: list[str] = []
    body: list[tuple[int, list[str]]] = []

    def flush() -> None:
        if header or body:
            width = max([len(header), *(len(c) for _, c in body)])
            scanner.table(header or [f"column {n + 1}" for n in range(width)], body)
        body.clear()

    for number, (at, cells) in enumerate(rows):
        text = source[at] if at < len(source) else ""
        following = source[at + 1] if at + 1 < len(source) else ""
        if _DELIMITER_ROW.fullmatch(text.strip()):
            continue
        if number == 0 or _DELIMITER_ROW.fullmatch(following.strip()):
            flush()
            header = cells
            continue
        body.append((line_of(at), cells))
    flush()
    return index + 1


def _paragraph(scanner: _Scanner, lines: list[str], numbers: list[int], plain: bool, code: bool = False) -> None:
    """A block's lines (``numbers`` their lines in the document): in plain text, a table pasted without its
    separators is read back into its columns, and a title-like line is a heading."""
    number = 0
    while number < len(lines):
        text = lines[number]
        header = _glued_header(text) if plain else None
        if header is not None and number + 1 < len(lines) and _row_like(lines[number + 1]):
            rows: list[tuple[int, list[str]]] = []
            end = number + 1
            while end < len(lines) and _row_like(lines[end]) and _glued_header(lines[end]) is None:
                rows.append((numbers[end], _glued_row(lines[end].strip(), len(header))))
                end += 1
            scanner.table(header, rows, glued=True)
            number = end
            continue
        title = _title_like(text) if plain and not code else ""
        if title:
            scanner.heading = _clip(title)
            scanner.line(title, numbers[number], in_heading=True)
        else:
            scanner.line(text, numbers[number])
        number += 1


# --------------------------------------------------------------------------------------- the model side

_GENERIC = {
    "the", "a", "an", "of", "and", "or", "for", "with", "to", "in", "on", "by", "at", "per", "total", "totals",
    "subtotal", "sum", "all", "both", "each", "layer", "layers", "module", "modules", "block", "blocks",
    "feature", "features", "extractor", "encoder", "prediction", "classification", "regression", "network", "net",
    "model", "ours", "our", "parameters", "parameter", "params", "param", "count", "component", "components",
    "part", "explicit", "combined", "only", "main", "task", "tasks", "specific", "based", "other", "shared",
}  # fmt: skip
_STOP = _GENERIC | {
    "is", "are", "be", "as", "it", "its", "this", "that", "than", "less", "more", "most", "has", "have", "having",
    "uses", "use", "from", "into", "which", "where", "while", "but", "not", "does", "do", "same", "about",
    "approximately", "contribute", "contributes", "dominates", "dominant", "largest", "second", "efficient",
    "lightweight", "tiny", "despite", "because", "mechanism", "size", "compact", "output", "input",
}  # fmt: skip
_ABBREVIATIONS = {
    "attn": "attention", "bn": "batchnorm", "ln": "layernorm", "fc": "linear", "ffn": "feedforward",
    "ff": "feedforward", "mlp": "linear", "dense": "linear", "cls": "classifier", "enc": "encoder",
    "dec": "decoder", "emb": "embedding", "conv": "conv",
}  # fmt: skip
_CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}
_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")


def _name_tokens(name: str) -> list[str]:
    out: list[str] = []
    for part in re.split(r"[._\-\s]+", name):
        for piece in _CAMEL.findall(part) or [part]:
            word = piece.lower()
            if word and not word.isdigit():
                out.append(_ABBREVIATIONS.get(word, word))
    return out


def _type_tokens(type_name: str) -> list[str]:
    return [type_name.lower(), *(p.lower() for p in _CAMEL.findall(type_name))]


def _words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", text)]


@functools.lru_cache(maxsize=65536)
def _matches(word: str, token: str) -> bool:
    words = {word, _ABBREVIATIONS.get(word, word)}
    if len(word) > 3 and word.endswith("s"):
        words.add(word[:-1])
    for w in words:
        if w == token:
            return True
        if min(len(w), len(token)) >= 3 and (w.startswith(token) or token.startswith(w)):
            return True
        if (len(token) >= 4 and token in w) or (len(w) >= 4 and w in token):
            return True
    return False


@dataclass(frozen=True)
class _Module:
    path: str
    type: str
    depth: int
    params: int
    names: tuple[str, ...]
    types: tuple[str, ...]


class ModelSide:
    """A TARGET's module paths, types and attributes, and the name matching that maps a document's words to
    them."""

    def __init__(self, target: str) -> None:
        from .targets import build_target
        from .walker import audit_params

        built = build_target(target, device="auto")
        self.target = target
        self.model = built.model
        self.reference = built.reference
        self.audit = audit_params(built.model)
        self.total = self.audit.total
        self.objects = dict(built.model.named_modules())
        records = [r for r in self.audit.records if r.name]
        children_types: dict[str, set[str]] = {}
        for record in records:
            parent = record.name.rpartition(".")[0]
            if record.params or record.own_params or self.audit.component(record.name):
                children_types.setdefault(parent, set()).add(record.type)
        self.modules: list[_Module] = []
        self.vocabulary: set[str] = set()
        self._labels: dict[str, tuple[str, ...] | None] = {}
        for record in records:
            params = self.audit.component(record.name)
            types = _type_tokens(record.type)
            if record.type in _CONTAINERS:
                for child in sorted(children_types.get(record.name, ())):
                    types += _type_tokens(child)
            names = tuple(_name_tokens(record.name))
            self.vocabulary.update(names)
            self.modules.append(_Module(record.name, record.type, record.depth, params, names, tuple(types)))

    # -- matching --------------------------------------------------------------------------------------

    def label(self, label: str) -> tuple[str, ...] | None:
        if label not in self._labels:
            self._labels[label] = self._label(label)
        return self._labels[label]

    def _label(self, label: str) -> tuple[str, ...] | None:
        """The module paths a row label or heading names ("BiLSTM Encoder" -> lstm; "Total Heads" -> rul_head,
        health_head), or None when no module matches every word of it that is not generic."""
        paths: list[str] = []
        for part in re.split(r"\s*(?:\+|&|,|\band\b|/)\s*", label):
            words = _words(re.sub(r"\d+", " ", part))
            if not words:
                continue
            chosen = self._label_part(words)
            if chosen is None:
                return None
            paths += [p for p in chosen if p not in paths]
        return tuple(paths) if paths else None

    def _label_part(self, words: list[str]) -> list[str] | None:
        required = [w for w in words if w not in _GENERIC]
        optional = [w for w in words if w in _GENERIC]
        if not required:
            required = [w for w in optional if w not in ("total", "subtotal", "sum", "totals", "all", "both")]
            optional = []
        if not required:
            return None
        scored: list[tuple[float, _Module]] = []
        for module in self.modules:
            if module.params == 0:
                continue
            score = 0.0
            for word in required:
                if any(_matches(word, t) for t in module.names):
                    score += 2
                elif any(_matches(word, t) for t in module.types):
                    score += 1
                else:
                    break
            else:
                for word in optional:
                    if any(_matches(word, t) for t in module.names):
                        score += 0.5
                    elif any(_matches(word, t) for t in module.types):
                        score += 0.25
                covered = sum(any(_matches(w, t) for w in words) for t in module.names)
                score += covered / len(module.names) if module.names else 0
                scored.append((score - 0.01 * module.depth, module))
        best = self._best(scored, 1.0)
        return list(best) if best is not None else None

    def near(self, text: str, start: int) -> tuple[str, ...] | None:
        """The module paths the words nearest a figure in a sentence name ("BiLSTM dominates: 67% ..." ->
        lstm), weighed by how near each word is; only its own sentence is read."""
        left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
        right = next((m.start() for m in _SENTENCE_END.finditer(text, start)), len(text))
        before = [w for w in _words(text[left:start]) if self._telling(w)]
        after = [w for w in _words(text[start:right]) if self._telling(w)]
        placed = [(w, len(before) - i) for i, w in enumerate(before)] + [(w, i + 1) for i, w in enumerate(after)]
        placed = [(w, d) for w, d in placed if d <= 8]
        scored: list[tuple[float, _Module]] = []
        for module in self.modules:
            if module.params == 0 or not module.names:
                continue
            score = 0.0
            covered: set[str] = set()
            for word, distance in placed:
                named = [t for t in module.names if _matches(word, t)]
                if named:
                    score += 1 / (1 + distance)
                    covered.update(named)
                elif any(_matches(word, t) for t in module.types):
                    score += 0.5 / (1 + distance)
            if score:
                coverage = len(covered) / len(set(module.names))
                scored.append((score * (0.5 + 0.5 * coverage) - 0.001 * module.depth, module))
        return self._best(scored, 0.1, ratio=0.8)

    def _telling(self, word: str) -> bool:
        """Whether a word of a sentence may name a module: not a common word, unless a module is called so."""
        return len(word) >= 3 and (word not in _STOP or word in self.vocabulary)

    def _best(self, scored: list[tuple[float, _Module]], floor: float, ratio: float = 1.0) -> tuple[str, ...] | None:
        if not scored:
            return None
        best = max(s for s, _ in scored)
        if best < floor:
            return None
        margin = 1e-9 if ratio == 1.0 else best * (1 - ratio)
        chosen = [m.path for s, m in scored if s >= best - margin - (0.005 if ratio == 1.0 else 0)]
        chosen = [p for p in chosen if not any(p.startswith(q + ".") for q in chosen if q != p)]
        return tuple(chosen) if 0 < len(chosen) <= 4 else None

    # -- structure -------------------------------------------------------------------------------------

    def _under(self, path: str) -> list[tuple[str, Any]]:
        return [(n, m) for n, m in self.objects.items() if n == path or n.startswith(path + ".")]

    @staticmethod
    def _int_attributes(module: Any) -> list[tuple[str, int]]:
        return [
            (k, v)
            for k, v in vars(module).items()
            if not k.startswith("_") and isinstance(v, int) and not isinstance(v, bool)
        ]

    def structure(self, found: Found, paths: tuple[str, ...] | None) -> tuple[str, dict[str, Any], str] | None:
        """An attribute or count claim for a layer, head or width figure: (kind, fields, what was guessed)."""
        noun = _words(found.noun or "")
        words = noun + _words(found.label)
        if paths is not None and len(paths) == 1 and paths[0] in self.objects:
            path = paths[0]
            under = self._under(path)
            if found.category == "width":
                wanted = ["out_channels", "out_features", "hidden_size", "embed_dim", "num_features"]
                named = [a for a in wanted if any(_matches(w, t) for w in words for t in a.split("_")[1:])]
                for attribute in named + wanted:
                    holders = [n for n, m in under if isinstance(getattr(m, attribute, None), int)]
                    if holders:
                        return (
                            "attribute",
                            {"module": holders[-1], "attribute": attribute},
                            f"the last width of the chain as {holders[-1]}.{attribute}",
                        )
                return None
            for name, obj in under:
                for attribute, _ in self._int_attributes(obj):
                    if found.category == "count" and not attribute.startswith("num_"):
                        continue  # "3 layers" is a num_layers, never a width
                    tokens = [t for t in attribute.split("_") if t not in ("num", "n", "out", "in")]
                    if tokens and all(any(_matches(w, t) for w in noun) for t in tokens):
                        if attribute.startswith("in_") and hasattr(obj, "out_" + attribute[3:]):
                            attribute = "out_" + attribute[3:]
                        return (
                            "attribute",
                            {"module": name, "attribute": attribute},
                            f"{name}.{attribute} ({type(obj).__name__}) from the words '{_clip(found.noun, 40)}'",
                        )
            if found.category == "count":
                counted = self._count_type(words, under)
                if counted is not None:
                    return (
                        "attribute",
                        {"module": path, "count_type": counted},
                        f"the {counted} modules under {path}",
                    )
            return None
        if found.category != "count":
            return None
        counted = self._count_type(words, list(self.objects.items()), by_words_only=True)
        if counted is None:
            return None
        return "count", {"count_type": counted}, f"the model's {counted} modules, from the words '{found.noun}'"

    def _count_type(self, words: list[str], under: list[tuple[str, Any]], by_words_only: bool = False) -> str | None:
        leaves = [
            type(m).__name__
            for _, m in under
            if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
        ]
        for type_name in dict.fromkeys(type(m).__name__ for _, m in under):
            if type_name in _CONTAINERS:
                continue
            tokens = _type_tokens(type_name)
            if any(w == t or _ABBREVIATIONS.get(w) == t for w in words for t in tokens):
                return type_name
        if by_words_only or not leaves or not any(w.startswith("layer") for w in words):
            return None
        return max(dict.fromkeys(leaves), key=leaves.count)


# -------------------------------------------------------------------------------------------- drafting


@dataclass
class DraftClaim:
    id: str
    kind: str
    where: str
    printed: str
    fields: dict[str, Any] = field(default_factory=dict)
    review: str = ""
    source: Found | None = None


@dataclass
class Draft:
    """A drafted claims file: its text, and the claims and components it holds."""

    text: str
    claims: list[DraftClaim]
    components: dict[str, tuple[str, ...]]
    stopped_at: int = 0
    """The line of the document at which the draft, being full, stopped (0 when it holds every figure)."""


def _slug(text: str, limit: int = 24) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit].strip("_")
    return slug


_CATEGORY_WORDS = {
    "params": "params", "percent": "pct", "work": "work", "size": "size", "throughput": "speed", "ratio": "ratio",
    "result": "result", "count": "count", "hyper": "hyper", "width": "width", "scaling": "scaling", "other": "figure",
}  # fmt: skip


def _headline(found: list[Found]) -> tuple[Figure | None, int, str]:
    """The document's own parameter count: the one printed most often, a total row's counting twice (the
    figure, how many agree with it, and how it is printed most often)."""
    counts = [f for f in found if f.category == "params" and f.expression is None]
    best: tuple[float, Figure | None, list[Found]] = (0.0, None, [])
    for candidate in counts:
        figure = candidate.figure
        if figure.value < 1000 or figure.range_low is not None:
            continue
        agreeing = [other for other in counts if _close(figure, other.figure)]
        score = len(agreeing) + sum(o.total_like for o in agreeing)
        if score > best[0]:
            best = (score, figure, agreeing)
    if best[1] is None or best[0] < 2:
        return None, 0, ""
    printed = [f.printed for f in best[2]]
    return best[1], len(printed), max(dict.fromkeys(printed), key=printed.count)


def _close(a: Figure, b: Figure) -> bool:
    if a.range_low is not None or b.range_low is not None or a.unit != b.unit:
        return False
    return abs(a.value - b.value) <= max(a.tolerance, b.tolerance, 0.005 * max(abs(a.value), abs(b.value)))


class _Drafter:
    def __init__(
        self, found: list[Found], model: ModelSide | None, inputs: tuple[str, ...], references: dict[str, str]
    ) -> None:
        self.found = found
        self.model = model
        self.inputs = inputs
        self.references = references
        self.headline, self.headline_count, self.headline_text = _headline(found)
        self.components: dict[tuple[str, ...], str] = {}
        self.ids: dict[int, str] = {}
        self.claims: list[DraftClaim] = []

    def component(self, paths: tuple[str, ...]) -> str:
        if paths not in self.components:
            name = "_".join(_slug(p.replace(".", "_"), 40) for p in paths)[:60].strip("_") or "component"
            if not name[0].isalpha():
                name = "m_" + name
            base, n = name, 2
            while name in self.components.values():
                name, n = f"{base}_{n}", n + 1
            self.components[paths] = name
        return self.components[paths]

    def _ids(self) -> None:
        used: set[str] = set()
        for index, found in enumerate(self.found):
            word = _CATEGORY_WORDS.get(found.category, "figure")
            if found.table is not None:
                base = f"{_slug(found.label) or 'row'}_{_slug(found.column, 16) or word}"
            else:
                heading = found.heading.rpartition(" > ")[2]
                base = f"{_slug(heading) or 'line' + str(found.line)}_{word}"
            if not base[0].isalpha():
                base = "n" + base
            name, n = base, 2
            while name in used:
                name, n = f"{base}_{n}", n + 1
            used.add(name)
            self.ids[index] = name

    def _paths(self, found: Found) -> tuple[tuple[str, ...] | None, str]:
        if self.model is None:
            return None, ""
        if found.table is not None:
            paths = self.model.label(found.label) if found.label else None
            if paths is not None:
                return paths, f"from the row label '{_clip(found.label, 40)}'"
            if found.total_like and found.heading:
                paths = self.model.label(found.heading)
                if paths is not None:
                    return paths, f"from the heading '{_clip(found.heading, 40)}' of this total row"
            return None, ""
        if found.in_heading:
            return None, ""
        paths = self.model.near(found.text, found.start)
        return (paths, "from the words near it") if paths is not None else (None, "")

    def _siblings(self, index: int, category: str) -> list[str]:
        """The ids of the rows above a total row in its column (back to the previous total row)."""
        found = self.found[index]
        siblings: list[str] = []
        for other_index in range(index - 1, -1, -1):
            other = self.found[other_index]
            if other.table is not found.table:
                break
            if other.column != found.column or other.row == found.row:
                continue
            if other.total_like:
                break
            if other.category == category and other.figure.unit == found.figure.unit:
                siblings.append(self.ids[other_index])
        return siblings[::-1]

    def run(self) -> list[DraftClaim]:
        self._ids()
        for index, found in enumerate(self.found):
            claim = self._claim(index, found)
            if claim is not None:
                self.claims.append(claim)
        return self.claims

    def _claim(self, index: int, found: Found) -> DraftClaim | None:
        claim = DraftClaim(self.ids[index], "reported", found.where, found.printed, source=found)
        if found.value is not None:
            claim.fields["value"] = found.value
        if found.tolerance is not None:
            claim.fields["tolerance"] = found.tolerance
        why: list[str] = []
        if found.original.strip() != found.printed:
            why.append(f"printed in the document as {found.original.strip()!r}")
        handler = getattr(self, f"_{found.category}", self._other)
        handler(index, found, claim, why)
        claim.review = "; ".join(why)
        return claim

    # one method per category: each sets the claim's kind and fields and says what it guessed

    def _params(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        paths, how = self._paths(found)
        figure = found.figure
        headline = self.headline is not None and _close(figure, self.headline)
        reference = self._reference(found.label) if found.table is not None else None
        if found.expression is not None:
            claim.kind = "arithmetic"
            claim.fields["expression"] = found.expression
            why.append(f"kind arithmetic: the figure beside the calculation {found.expression!r}")
            if paths is not None and found.table is not None:
                self._with_component(claim, paths, how, why)
        elif found.trainable:
            claim.kind = found.trainable
            why.append(f"kind {found.trainable}: the words before it say {found.trainable}")
        elif found.table is not None and _TOTAL_LABEL.fullmatch(found.label.strip()):
            claim.kind = "total"
            why.append(f"kind total: the row label '{_clip(found.label, 40)}' names the model's parameter count")
        elif headline and (paths is None or found.total_like or found.table is None):
            claim.kind = "total"
            why.append(
                f"kind total: the document's most printed parameter count ({self.headline_text} or within its "
                f"rounding, {self.headline_count} times)"
            )
        elif reference is not None:
            claim.kind = "baseline"
            claim.fields["model"] = reference
            why.append(f"kind baseline: the row label '{_clip(found.label, 40)}' names the reference model {reference}")
        elif paths is not None:
            claim.kind = "component"
            self._with_component(claim, paths, how, why)
        else:
            claim.kind = "reported"
            claim.fields["reason"] = "drafted as reported: a parameter count the draft could not tie to a module"
            why.append(
                "kind reported: a parameter count of no module the draft could name; make it kind component "
                "(with a [components] entry) or kind baseline (model = a reference-model name)"
            )
        if found.total_like and found.table is not None and claim.kind != "baseline":
            terms = self._siblings(index, "params")
            if len(terms) >= 2:
                claim.fields["implied"] = " + ".join(terms)
                why.append("implied: the sum of the rows above it in its column")

    def _with_component(self, claim: DraftClaim, paths: tuple[str, ...], how: str, why: list[str]) -> None:
        name = self.component(paths)
        claim.fields["component"] = name
        assert self.model is not None
        types = ", ".join(f"{p} ({next(m.type for m in self.model.modules if m.path == p)})" for p in paths)
        why.append(f"component {name} = {types}, matched by name {how}")

    def _reference(self, label: str) -> str | None:
        key = re.sub(r"[^a-z0-9]", "", re.sub(r"\([^)]*\)", "", label.lower()))
        name = self.references.get(key)
        if name is None or (self.model is not None and self.model.reference is not None and
                            self.model.reference.name == name):  # fmt: skip
            return None
        return name

    def _percent(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        figure = found.figure
        if found.total_like and found.table is not None:
            terms = self._siblings(index, "percent")
            if len(terms) >= 2 and abs(figure.value - 100) <= max(figure.tolerance, 0.5):
                claim.kind = "sum"
                claim.fields["terms"] = terms
                why.append("kind sum: the 100% of a total row, the sum of the shares above it in its column")
                return
            if len(terms) >= 2:
                claim.fields["implied"] = " + ".join(terms)
                why.append("implied: the sum of the shares above it in its column")
        paths, how = self._paths(found)
        if paths is not None and self.model is not None and self.model.total > 0:
            claim.kind = "percentage"
            self._with_component(claim, paths, how, why)
            return
        claim.kind = "reported"
        claim.fields["reason"] = "drafted as reported: a share of parameters the draft could not tie to a module"
        hint = "" if self.model is not None else " (give --target to have one guessed)"
        why.append(f"kind reported: a percentage of no module the draft could name; make it kind percentage with a "
                   f"component{hint}")  # fmt: skip

    def _work(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        kind = found.work or "flops"
        if self.inputs:
            claim.kind = kind
            why.append(f"kind {kind}: checked at the document's input {', '.join(self.inputs)} (REVIEW the input)")
            return
        claim.kind = "reported"
        claim.fields["reason"] = f"drafted as reported: a {kind} figure, and no input shape to count it at"
        why.append(f"kind reported: a {kind} figure needs an input; give --input (or [document] input) and kind {kind}")

    def _size(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "size"
        context = f"{found.label} {found.column} {found.text}"
        dtype = next((name for pattern, name in _DTYPES if pattern.search(context)), "")
        claim.fields["dtype"] = dtype or "float32"
        why.append(f"dtype {dtype} from the words around it" if dtype else "dtype float32 assumed: none is stated")
        if "value" in claim.fields:
            why.append("written in MB (value, tolerance): a size claim is checked in megabytes")

    def _throughput(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "throughput"
        why.append("kind throughput: hardware-dependent, checked only with a measurement (archaudit report --bench)")

    def _result(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "reported"
        why.append("kind reported: a result (error, accuracy, score); add published = and published_source = to hold "
                   "it to a published figure")  # fmt: skip

    def _ratio(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "reported"
        claim.fields["reason"] = "drafted as reported: a ratio of figures the draft cannot name"
        why.append("kind reported: a ratio; make it kind derived with the expression of the figures it compares")

    def _scaling(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "reported"
        claim.fields["reason"] = f"drafted as reported: '{found.printed}' read as a factor of {found.value}"
        why.append(
            f"kind reported: '{found.printed}' is a factor of {found.value}; make it kind scaling (component, "
            "hyperparameter, from, to) to have the model rebuilt at both values"
        )

    def _structure(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        noun = found.noun or found.category
        if self.model is not None:
            paths, how = self._paths(found)
            guess = self.model.structure(found, paths)
            if guess is not None:
                claim.kind, fields, what = guess
                claim.fields.update(fields)
                why.append(f"kind {claim.kind}: {what}" + (f" (module {how})" if paths else ""))
                return
        claim.kind = "reported"
        claim.fields["reason"] = f"drafted as reported: a count or width ({_clip(noun, 40)}) of no module named"
        why.append(
            f"kind reported: a count or width ('{_clip(noun, 40)}') the draft could tie to no module"
            + ("" if self.model is not None else " (give --target to have one guessed)")
            + "; make it kind attribute (module, attribute or count_type) or kind count (count_type)"
        )

    _count = _structure
    _hyper = _structure
    _width = _structure

    def _other(self, index: int, found: Found, claim: DraftClaim, why: list[str]) -> None:
        claim.kind = "reported"
        claim.fields["reason"] = "drafted as reported: a figure of no kind the words around it say"
        why.append("kind reported: a figure whose kind the words around it do not say")


# ---------------------------------------------------------------------------------------------- writing

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and every control character escaped."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    """One line of comment text: control characters (which a TOML comment may not hold) made spaces."""
    return "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "0.0"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


_FIELD_ORDER: tuple[str, ...] = ("value", "tolerance", "component", "expression", "terms", "model", "dtype")
_FIELD_ORDER += ("module", "attribute", "count_type", "implied", "reason", "note")


def _claim_text(claim: DraftClaim) -> str:
    lines = [f"# REVIEW: {_comment(claim.review or 'kind ' + claim.kind)}", "[[claims]]"]
    lines.append(f"id = {toml_string(claim.id)}")
    lines.append(f"kind = {toml_string(claim.kind)}")
    lines.append(f"where = {toml_string(claim.where)}")
    lines.append(f"printed = {toml_string(claim.printed)}")
    for key in sorted(claim.fields, key=lambda k: _FIELD_ORDER.index(k) if k in _FIELD_ORDER else 99):
        lines.append(f"{key} = {_toml_value(claim.fields[key])}")
    return "\n".join(lines) + "\n"


def _model_value(target: str, output: Path | None) -> str:
    """The TARGET as a claims file names it: a ``file.py:callable`` relative to the claims file's folder."""
    if ":" not in target:
        return target
    file_part, _, attribute = target.rpartition(":")
    if not file_part.endswith(".py") or output is None or Path(file_part).is_absolute():
        return target
    absolute = Path(file_part).resolve()
    folder = Path(os.path.realpath(output)).parent
    try:
        relative = os.path.relpath(absolute, folder)
    except ValueError:  # another drive (Windows)
        relative = str(absolute)
    return f"{Path(relative).as_posix()}:{attribute}"


PLACEHOLDER_MODEL = "path/to/your_model.py:build_model"
"""The ``model`` of a draft made without ``--target``: it loads, and checking it says which file is missing."""


def draft(
    document: str | Path,
    *,
    target: str | None = None,
    inputs: Sequence[str] | None = None,
    output: str | Path | None = None,
) -> Draft:
    """Draft a claims file for ``document`` (see the module docstring). ``target`` (any TARGET) is the model its
    components, attributes and counts are matched to; ``inputs`` (``--input`` syntax) the input its FLOP and
    MAC figures are for (a reference model's own input shape when not given); ``output`` where the draft will be
    written, which a ``file.py`` target's path is made relative to."""
    from .inputs import parse_inputs
    from .references import references

    path = Path(document)
    text = read_document(path)
    plain = path.suffix.lower() not in MARKDOWN_SUFFIXES
    given_inputs = tuple(inputs or ())
    parse_inputs(list(given_inputs))  # a bad shape is refused before any work
    model = ModelSide(target) if target is not None else None
    input_texts = given_inputs
    input_why = "--input"
    if not input_texts and model is not None and model.reference is not None:
        shape = model.reference.input_shape
        if shape is not None and model.reference.example is None:
            input_texts = ("x".join(str(d) for d in shape),)
            input_why = f"the reference model {model.reference.name}'s example input"
    known = {re.sub(r"[^a-z0-9]", "", e.name.lower()): e.name for e in references()}
    scanner = _scan(text, plain)
    found, stopped_at = scanner.found, scanner.stopped_at
    drafter = _Drafter(found, model, input_texts, known)
    claims = drafter.run()
    uses_input = any(c.kind in ("flops", "macs") for c in claims)
    out_path = Path(output) if output is not None else None
    header = _header(path, target, model, out_path, stopped_at, plain, input_why if uses_input else "")
    document_table = _document_table(path, text, target, out_path, input_texts if uses_input else ())
    components = {name: paths for paths, name in drafter.components.items()}
    body = [header, document_table]
    if components:
        body.append(_components_table(drafter, model))
    chunks = [_claim_text(c) for c in claims]
    if not chunks:
        chunks = [_claim_text(_no_figure(path))]
        claims = []
    size = sum(len(b.encode("utf-8")) + 1 for b in body)
    kept = 0
    for chunk in chunks:
        size += len(chunk.encode("utf-8")) + 1
        if size > DRAFT_BYTES:
            break
        kept += 1
    if kept < len(claims):  # the first claim left out (a later claim refers only to earlier ones)
        source = claims[kept].source
        stopped_at = source.line if source is not None else stopped_at
        body[0] = _header(path, target, model, out_path, stopped_at, plain, input_why if uses_input else "")
        chunks, claims = chunks[:kept], claims[:kept]
    return Draft("\n".join([*body, *chunks]), claims, components, stopped_at)


def _no_figure(path: Path) -> DraftClaim:
    return DraftClaim(
        "no_figure",
        "reported",
        "the whole document",
        "0",
        {"note": "the document prints no figure the draft recognised"},
        "the document prints no figure the draft recognised: a claims file needs one claim, so this stands in",
    )


def _header(
    path: Path,
    target: str | None,
    model: ModelSide | None,
    output: Path | None,
    stopped_at: int,
    plain: bool,
    inputs: str,
) -> str:
    lines = [
        f"# Claims drafted by `archaudit draft` from {_comment(str(path))} (read as "
        f"{'plain text' if plain else 'Markdown'}).",
        "# Every claim is a guess: each says, in a REVIEW comment above it, what was guessed (its kind, its",
        "# component, its module). Check them against the document, edit what is wrong, and delete the comments.",
    ]
    if target is None:
        lines += [
            f"# [document] model is a placeholder ({PLACEHOLDER_MODEL}): set it to your model, or check this draft",
            "# against one with `archaudit claims THIS_FILE --target TARGET`; verdicts need a model. Without one no",
            "# component was guessed: shares and per-module counts are drafted as kind reported.",
        ]
    else:
        where = ""
        if output is None and ":" in target and target.rpartition(":")[0].endswith(".py"):
            where = " (a file.py model is read relative to this file's folder: save the draft beside the model)"
        lines.append(f"# [document] model is the --target the draft was made with{where}.")
        if model is not None:
            lines.append(f"# {model.total:,} parameters; components were matched to its module paths by name.")
    if inputs:
        lines.append(f"# [document] input is {_comment(inputs)}: the input the FLOP and MAC figures are checked at.")
    if stopped_at:
        lines.append(
            f"# The draft is full: it stops at line {stopped_at:,} of the document (a draft holds at most "
            f"{MAX_DRAFT_CLAIMS:,} figures, in at most {DRAFT_BYTES // 1024:,} KiB); draft the rest from a copy "
            "that starts there."
        )
    return "\n".join(lines) + "\n"


def _document_table(path: Path, text: str, target: str | None, output: Path | None, inputs: Sequence[str]) -> str:
    title = next((line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), path.stem)
    source = str(path)
    if output is not None:
        try:
            source = Path(os.path.relpath(path.resolve(), Path(os.path.realpath(output)).parent)).as_posix()
        except ValueError:
            source = str(path)
    model = _model_value(target, output) if target is not None else PLACEHOLDER_MODEL
    lines = [
        "[document]",
        f"id = {toml_string(_slug(path.stem, 60).replace('_', '-') or 'document')}",
        f"title = {toml_string(_clip(title, 100))}  # REVIEW: the document's first line",
        f"source = {toml_string(source)}",
        f"model = {toml_string(model)}" + ("" if target is not None else "  # REVIEW: set it to your model"),
    ]
    if inputs:
        lines.append(f"input = {_toml_value(list(inputs))}  # REVIEW: the input the FLOP and MAC figures are for")
    return "\n".join(lines) + "\n"


def _components_table(drafter: _Drafter, model: ModelSide | None) -> str:
    lines = ["# REVIEW: each entry is a guess, matched by name to the model's module paths.", "[components]"]
    for paths, name in drafter.components.items():
        types = ""
        if model is not None:
            types = ", ".join(next((m.type for m in model.modules if m.path == p), "?") for p in paths)
        lines.append(f"{name} = {_toml_value(list(paths))}  # {_comment(types)}")
    return "\n".join(lines) + "\n"


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_DRAFT_CLAIMS",
    "PLACEHOLDER_MODEL",
    "Draft",
    "DraftClaim",
    "DraftError",
    "Found",
    "ModelSide",
    "draft",
    "read_document",
    "scan",
    "toml_string",
]
