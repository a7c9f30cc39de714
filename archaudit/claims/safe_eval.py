"""A safe evaluator for the arithmetic that documents print ("768 x 768 + 768 = 590,592").

It parses with :mod:`ast` and walks the tree itself; ``eval`` is never used. What it does with each node of
Python's expression grammar is written down once, in the tables below (``_NODES``, and per operator
``_BINARY``, ``_UNARY``, ``_BOOLEAN``, ``_COMPARISON``): it computes numbers, + - * / // % **, unary signs,
parentheses and names bound by the caller, and refuses everything else with the reason.

Nothing it builds can be large. Before parsing, the expression's length and nesting are bounded
(``MAX_LENGTH``, ``MAX_DEPTH``), since :func:`ast.parse` itself overflows on deep nesting; after parsing, the
tree's depth is bounded again before it is walked. Every operand is a figure in range (``MAX_MAGNITUDE``,
``MAX_DENOMINATOR``), and every operation estimates its result's size from its operands' bit lengths before
computing it (``MAX_BITS``). Number literals follow Python's grammar, read exactly ("0.1" is 1/10, "1_000" is
1000, "1e6" is 10**6), except hexadecimal, octal and binary ones, which are refused with their value.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..errors import ArchauditError

MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**30
MAX_DENOMINATOR = 10**30
MAX_LENGTH = 2_000
"""Characters of an expression, as written and once normalised."""
MAX_DEPTH = 100
"""Nesting: before parsing, brackets open at once plus signs in a row; after, operations within operations."""
MAX_BITS = 4_096
"""The largest result an operation may build, in bits of numerator plus denominator, estimated from its
operands before it is computed. A figure in range has at most about 300 (up to 10**60 over 10**30), so sums,
products and quotients of figures never come near it; a power can, and is then refused unbuilt (its result
would have at least MAX_BITS - 2 * MAX_EXPONENT bits: out of range whatever it is)."""

_SHOWN = 48
"""Characters of a piece of an expression shown in a message; longer ones lose their middle."""


class UnsafeExpression(ArchauditError, ValueError):
    """An expression uses something the safe evaluator does not allow (the construct is named)."""


# -------------------------------------------------------------------------------------------- normalising

# Python's grammar of number literals (the language reference's floatnumber, then integer), less the imaginary
# suffix: after a number, j is a name like any other letter ("2j" is 2 * j).
_DIGITS = r"[0-9](?:_?[0-9])*"
_EXPONENT = rf"[eE][-+]?{_DIGITS}"
_NUMBER = (
    rf"(?:(?:{_DIGITS})?\.{_DIGITS}(?:{_EXPONENT})?|{_DIGITS}\.(?:{_EXPONENT})?|{_DIGITS}{_EXPONENT}"
    rf"|0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|{_DIGITS})"
)
_TOKEN = re.compile(rf"(?P<name>[^\W\d]\w*)|(?P<number>{_NUMBER})(?P<times>x(?=[\s\d(]))?")


def _implicit(match: re.Match[str]) -> str:
    """One name or number literal, with the typographic product it takes part in made explicit."""
    text, end = match.string, match.end()
    if match.group("name") is not None:  # digits inside a name are the name's ("conv1d"), not a product
        before, after = text[match.start() - 1 : match.start()], text[end : end + 1]
        times = (
            match.group() == "x"
            and bool(before)
            and (before == ")" or before.isspace())
            and (after == "(" or after.isspace() or after.isdigit())
        )
        return "*" if times else match.group()
    if match.group("times"):  # 768x768, 2x(3)
        return match.group("number") + "*"
    after = text[end : end + 1]  # 2n, 4d, 3(...); a number's own e, x, o, b, _ and . are already inside it
    return match.group() + ("*" if after == "(" or (after.isidentifier() and after != "_") else "")


def normalise(text: str) -> str:
    """Typographic arithmetic to Python: x, × and · as *, ÷ as /, ^ and superscripts as powers, implicit
    products ("2n", "4d²", "(a)(b)") made explicit, thousands separators dropped. Names and number literals
    are read as Python's grammar reads them first, so "conv1d", "1_000", "1e6" and "0x1F" stay whole."""
    text = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    text = text.replace("²", "**2").replace("³", "**3")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = _TOKEN.sub(_implicit, text)
    return re.sub(r"\)\s*(?=[\w(])", ")*", text)


# ------------------------------------------------------------------------------------------------ messages


def _clip(piece: str) -> str:
    if len(piece) <= _SHOWN:
        return piece
    half = (_SHOWN - 3) // 2
    return f"{piece[:half]}...{piece[-half:]}"


def _show(piece: str) -> str:
    """A piece of an expression for a message: quoted on one line (newlines escaped), at most _SHOWN long."""
    return repr(_clip(piece))


# ------------------------------------------------------------------------------------------------- numbers


def _figure(value: Fraction, piece: str, where: str = "") -> Fraction:
    """``value`` if it is in the range of a document's figures; else the refusal, naming ``piece`` (and
    ``where`` it is: " in 'the whole expression'", or nothing)."""
    if abs(value) > MAX_MAGNITUDE:
        raise UnsafeExpression(
            f"{_show(piece)}{where} exceeds the range of a document's figures (|value| up to {MAX_MAGNITUDE:.0e})"
        )
    if value.denominator > MAX_DENOMINATOR:
        raise UnsafeExpression(
            f"{_show(piece)}{where} exceeds the range of a document's figures "
            f"(denominators up to {MAX_DENOMINATOR:.0e})"
        )
    return value


_PREFIXED = {"0x": "hexadecimal", "0o": "octal", "0b": "binary"}
_DECIMAL = re.compile(r"(?P<whole>[0-9_]*)(?:\.(?P<fraction>[0-9_]*))?(?:[eE](?P<exponent>[-+]?[0-9_]+))?")


def _literal(value: object, literal: str, where: str = "") -> Fraction:
    """A number literal, read exactly from its text, and never built when out of range: "1e-9999999" is
    refused from its exponent, "0e9999999" is 0, without computing 10**9999999."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnsafeExpression(f"only numbers are allowed, got {_clip(repr(value))}{where}")
    kind = _PREFIXED.get(literal[:2].lower())
    if kind:
        raise UnsafeExpression(
            f"{kind} literal {_show(literal)}{where} ({value} as Python reads it): a document's figures are decimal"
        )
    if isinstance(value, int):
        return _figure(Fraction(value), literal, where)
    parts = _DECIMAL.fullmatch(literal)
    if parts is None:  # ast.parse read it as a float, so it is one of the forms above
        raise UnsafeExpression(f"number literal {_show(literal)}{where} not understood")
    whole, fraction = (parts["whole"] or "").replace("_", ""), (parts["fraction"] or "").replace("_", "")
    written = whole + fraction
    digits = written.strip("0")
    if not digits:
        return Fraction(0)
    # the value is digits * 10**shift, with digits neither starting nor ending with 0
    exponent = int((parts["exponent"] or "0").replace("_", ""))
    shift = exponent - len(fraction) + (len(written) - len(written.rstrip("0")))
    if len(digits) - 1 + shift >= len(str(MAX_MAGNITUDE)) or -shift > MAX_DENOMINATOR.bit_length():
        # at least 10**31 in magnitude; or, digits having no factor 10 (so not both 2 and 5), a reduced
        # denominator of at least 10**-shift / 5**-shift = 2**-shift, beyond 2**100 > 10**30
        raise UnsafeExpression(
            f"{_show(literal)}{where} exceeds the range of a document's figures "
            f"(|value| up to {MAX_MAGNITUDE:.0e}, denominators up to {MAX_DENOMINATOR:.0e})"
        )
    exact = Fraction(int(digits) * 10**shift) if shift >= 0 else Fraction(int(digits), 10**-shift)
    return _figure(exact, literal, where)


def _bound(name: str, value: object, where: str = "") -> Fraction:
    """A name's value, bound by the caller."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise UnsafeExpression(f"name {_show(name)}{where} is bound to {_clip(repr(value))}: only numbers are allowed")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsafeExpression(f"name {_show(name)}{where} is bound to the non-finite number {value!r}")
    return _figure(Fraction(value), name, where)


# ---------------------------------------------------------------------------------------------- operations


def _n(value: Fraction) -> int:
    return abs(value.numerator).bit_length()


def _d(value: Fraction) -> int:
    return value.denominator.bit_length()


# Upper bounds on a result's bits (numerator plus denominator), from its operands': for a = p/q and b = r/s,
# a ± b = (ps ± rq)/qs, a * b = pr/qs, a / b = ps/qr, a // b = floor(ps/qr), a % b = a - b * (a // b) with
# |a % b| < |b| over a denominator dividing qs, a ** n = p**n / q**n.
def _sum_bits(a: Fraction, b: Fraction) -> int:
    return max(_n(a) + _d(b), _n(b) + _d(a)) + 1 + _d(a) + _d(b)


def _product_bits(a: Fraction, b: Fraction) -> int:
    return _n(a) + _n(b) + _d(a) + _d(b)


def _floor_bits(a: Fraction, b: Fraction) -> int:
    return _n(a) + _d(b) + 2


def _remainder_bits(a: Fraction, b: Fraction) -> int:
    return _n(b) + 2 * _d(a) + _d(b)


def _power_bits(a: Fraction, b: Fraction) -> int:
    return abs(int(b)) * (_n(a) + _d(a)) + 2


def _same_bits(a: Fraction) -> int:
    return _n(a) + _d(a)


def _everywhere(*operands: Fraction) -> str | None:
    return None


def _nonzero_divisor(a: Fraction, b: Fraction) -> str | None:
    return "division by zero" if b == 0 else None


def _whole_small_exponent(a: Fraction, b: Fraction) -> str | None:
    if b.denominator != 1 or abs(b) > MAX_EXPONENT:
        return f"exponent {b}: only whole exponents up to {MAX_EXPONENT} are allowed"
    return "zero to a negative power" if a == 0 and b < 0 else None


def _power(a: Fraction, b: Fraction) -> Fraction:
    return a ** int(b)


@dataclass(frozen=True)
class _Arithmetic:
    """An operation the evaluator computes: how, an upper bound on its result's size in bits from its
    operands (checked against MAX_BITS before computing), and the operands it has no value for."""

    apply: Callable[..., Fraction | int]
    bits: Callable[..., int]
    domain: Callable[..., str | None] = _everywhere


@dataclass(frozen=True)
class _Refuse:
    """A construct the evaluator refuses, and why."""

    reason: str


_NO_PLACE = "has no place in a document's arithmetic"

_BINARY: dict[type[ast.operator], _Arithmetic | _Refuse] = {
    ast.Add: _Arithmetic(operator.add, _sum_bits),
    ast.Sub: _Arithmetic(operator.sub, _sum_bits),
    ast.Mult: _Arithmetic(operator.mul, _product_bits),
    ast.Div: _Arithmetic(operator.truediv, _product_bits, _nonzero_divisor),
    ast.FloorDiv: _Arithmetic(operator.floordiv, _floor_bits, _nonzero_divisor),
    ast.Mod: _Arithmetic(operator.mod, _remainder_bits, _nonzero_divisor),
    ast.Pow: _Arithmetic(_power, _power_bits, _whole_small_exponent),
    ast.LShift: _Refuse(f"a bit shift {_NO_PLACE} (2**n is a power of two)"),
    ast.RShift: _Refuse(f"a bit shift {_NO_PLACE}"),
    ast.BitOr: _Refuse(f"a bitwise or {_NO_PLACE}"),
    ast.BitAnd: _Refuse(f"a bitwise and {_NO_PLACE}"),
    ast.BitXor: _Refuse(f"a bitwise xor {_NO_PLACE} (a typographic ^ is read as a power)"),
    ast.MatMult: _Refuse(f"a matrix product {_NO_PLACE}"),
}
_UNARY: dict[type[ast.unaryop], _Arithmetic | _Refuse] = {
    ast.UAdd: _Arithmetic(operator.pos, _same_bits),
    ast.USub: _Arithmetic(operator.neg, _same_bits),
    ast.Invert: _Refuse(f"a bitwise inversion {_NO_PLACE}"),
    ast.Not: _Refuse(f"logic (not) {_NO_PLACE}"),
}
_BOOLEAN: dict[type[ast.boolop], _Refuse] = {
    ast.And: _Refuse(f"logic (and) {_NO_PLACE}"),
    ast.Or: _Refuse(f"logic (or) {_NO_PLACE}"),
}
_COMPARISON: dict[type[ast.cmpop], _Refuse] = {
    op: _Refuse(f"a comparison ({symbol}) is a claim's check, not a figure")
    for op, symbol in (
        (ast.Eq, "=="),
        (ast.NotEq, "!="),
        (ast.Lt, "<"),
        (ast.LtE, "<="),
        (ast.Gt, ">"),
        (ast.GtE, ">="),
        (ast.Is, "is"),
        (ast.IsNot, "is not"),
        (ast.In, "in"),
        (ast.NotIn, "not in"),
    )
}


def _compute(rule: _Arithmetic, operands: tuple[Fraction, ...], piece: str, where: str = "") -> Fraction:
    """One operation on figures: its domain checked, its result's size bounded before it is built, the
    result's range after."""
    problem = rule.domain(*operands)
    if problem:
        raise UnsafeExpression(f"{_show(piece)}{where}: {problem}")
    estimate = rule.bits(*operands)
    if estimate > MAX_BITS:
        raise UnsafeExpression(
            f"{_show(piece)}{where} would take about {estimate:,} bits: at most {MAX_BITS:,} "
            "are computed, far beyond any figure"
        )
    return _figure(Fraction(rule.apply(*operands)), piece, where)


# ------------------------------------------------------------------------------------------------- walking


class _Evaluation:
    """One expression being evaluated: its text, the source parsed, the names bound."""

    def __init__(self, text: str, source: str, names: Mapping[str, float | int | Fraction]):
        self.text, self.names = text, names
        self._encoded = source.encode()
        self._lines = [0]  # byte offset of each line (ast positions are UTF-8 byte offsets)
        for line in self._encoded.split(b"\n")[:-1]:
            self._lines.append(self._lines[-1] + len(line) + 1)

    def segment(self, node: ast.expr) -> str:
        """The source of ``node`` (ast.get_source_segment rescans the whole source on every call)."""
        start = self._lines[node.lineno - 1] + node.col_offset
        end = self._lines[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
        return self._encoded[start:end].decode(errors="replace")

    def where(self, piece: str) -> str:
        """Where a piece is, for a message: in the whole expression, unless it is the whole."""
        return "" if len(piece) >= len(self.text.strip()) else f" in {_show(self.text)}"

    def refused(self, node: ast.expr, construct: str, reason: str) -> UnsafeExpression:
        piece = self.segment(node)
        return UnsafeExpression(f"{construct} {_show(piece)}{self.where(piece)} is not allowed: {reason}")

    def walk(self, node: ast.expr) -> Fraction:
        handler = _NODES.get(type(node), _UNKNOWN)
        if isinstance(handler, _Refuse):
            raise self.refused(node, type(node).__name__, handler.reason)
        return handler(self, node)


def _constant(ev: _Evaluation, node: ast.Constant) -> Fraction:
    piece = ev.segment(node)
    return _literal(node.value, piece, ev.where(piece))


def _name(ev: _Evaluation, node: ast.Name) -> Fraction:
    if node.id not in ev.names:
        raise UnsafeExpression(f"unknown name {_show(node.id)} in {_show(ev.text)}")
    return _bound(node.id, ev.names[node.id], ev.where(node.id))


def _binary(ev: _Evaluation, node: ast.BinOp) -> Fraction:
    rule = _BINARY.get(type(node.op), _UNKNOWN)
    if isinstance(rule, _Refuse):
        raise ev.refused(node, type(node.op).__name__, rule.reason)
    piece = ev.segment(node)
    return _compute(rule, (ev.walk(node.left), ev.walk(node.right)), piece, ev.where(piece))


def _unary(ev: _Evaluation, node: ast.UnaryOp) -> Fraction:
    rule = _UNARY.get(type(node.op), _UNKNOWN)
    if isinstance(rule, _Refuse):
        raise ev.refused(node, type(node.op).__name__, rule.reason)
    piece = ev.segment(node)
    return _compute(rule, (ev.walk(node.operand),), piece, ev.where(piece))


def _boolean(ev: _Evaluation, node: ast.BoolOp) -> Fraction:
    raise ev.refused(node, type(node.op).__name__, _BOOLEAN.get(type(node.op), _UNKNOWN).reason)


def _comparison(ev: _Evaluation, node: ast.Compare) -> Fraction:
    op = type(node.ops[0])
    raise ev.refused(node, f"Compare {op.__name__}", _COMPARISON.get(op, _UNKNOWN).reason)


_UNKNOWN = _Refuse("not part of a document's arithmetic (unknown to this evaluator)")
_COLLECTION = _Refuse("a collection: a figure is one number")
_COMPREHENSION = _Refuse("a comprehension: a figure is one number")
_TEXT = _Refuse("text: a figure is a number")
_GENERATOR = _Refuse("a coroutine or generator has no place in a document's arithmetic")

# Every node of Python's expression grammar: computed (a function of the evaluation and the node) or refused.
# A handler's node is typed Any because each takes its own node class (``_binary`` an ``ast.BinOp``): dispatch is
# on ``type(node)``, which a dict's value type cannot express.
_NODES: dict[type[ast.expr], Callable[[_Evaluation, Any], Fraction] | _Refuse] = {
    ast.Constant: _constant,
    ast.Name: _name,
    ast.BinOp: _binary,
    ast.UnaryOp: _unary,
    ast.BoolOp: _boolean,  # refused per operator: _BOOLEAN
    ast.Compare: _comparison,  # refused per operator: _COMPARISON
    ast.IfExp: _Refuse("a conditional has no place in a document's arithmetic"),
    ast.Call: _Refuse("a function call; write out the arithmetic"),
    ast.Attribute: _Refuse("an attribute has no place in a document's arithmetic"),
    ast.Subscript: _Refuse("a subscript has no place in a document's arithmetic"),
    ast.Slice: _Refuse("a slice has no place in a document's arithmetic"),
    ast.Starred: _Refuse("unpacking has no place in a document's arithmetic"),
    ast.Lambda: _Refuse("a function has no place in a document's arithmetic"),
    ast.NamedExpr: _Refuse("an assignment has no place in a document's arithmetic"),
    ast.Tuple: _COLLECTION,
    ast.List: _COLLECTION,
    ast.Set: _COLLECTION,
    ast.Dict: _COLLECTION,
    ast.ListComp: _COMPREHENSION,
    ast.SetComp: _COMPREHENSION,
    ast.DictComp: _COMPREHENSION,
    ast.GeneratorExp: _COMPREHENSION,
    ast.JoinedStr: _TEXT,
    ast.FormattedValue: _TEXT,
    ast.Await: _GENERATOR,
    ast.Yield: _GENERATOR,
    ast.YieldFrom: _GENERATOR,
}


# ------------------------------------------------------------------------------------------------- bounds


def _nesting(source: str) -> int:
    """Brackets open at once plus signs in a row, the most anywhere: the two nestings that cost one character
    a level. Any other takes three characters or more a level ("2**", "not "), so within MAX_LENGTH the parser
    sees at most a few hundred of those, far within its own limits; the tree's depth is bounded after."""
    deepest = depth = run = 0
    for char in source:
        if char in "([{":
            depth, run = depth + 1, 0
        elif char in ")]}":
            depth, run = max(depth - 1, 0), 0
        elif char in "+-~":
            run += 1
        elif not char.isspace():
            run = 0
        deepest = max(deepest, depth + run)
    return deepest


def _depth(tree: ast.AST) -> int:
    """Expression nodes within expression nodes, the most anywhere (iteratively: this is what bounds the
    recursion of the walk)."""
    deepest, stack = 0, [(tree, -1)]
    while stack:
        node, depth = stack.pop()
        depth += isinstance(node, ast.expr)
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return deepest


def evaluate(text: str, names: Mapping[str, float | int | Fraction] | None = None) -> Fraction:
    """The exact value of ``text`` (a :class:`~fractions.Fraction`); names are looked up in ``names``."""
    if not isinstance(text, str):
        raise UnsafeExpression(f"an expression is text, got {_clip(repr(text))}")
    if len(text) > MAX_LENGTH:
        raise UnsafeExpression(f"{_show(text)}: expression of {len(text):,} characters: at most {MAX_LENGTH:,}")
    source = normalise(text).replace("\r\n", "\n").replace("\r", "\n").strip()  # eval() strips too
    if len(source) > MAX_LENGTH:
        raise UnsafeExpression(
            f"{_show(text)}: expression of {len(text):,} characters, {len(source):,} once "
            f"normalised: at most {MAX_LENGTH:,}"
        )
    nesting = _nesting(source)
    if nesting > MAX_DEPTH:
        raise UnsafeExpression(f"{_show(text)}: brackets and signs nest {nesting:,} deep: at most {MAX_DEPTH}")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:  # ValueError: a null byte, before Python 3.11.4
        reason = (getattr(exc, "msg", None) or str(exc) or "invalid syntax").splitlines()[0]
        raise UnsafeExpression(f"{_show(text)} is not an arithmetic expression ({reason})") from None
    except (RecursionError, MemoryError):  # not seen within the bounds above; a parser's limits may differ
        raise UnsafeExpression(f"{_show(text)} is nested too deeply for Python's parser") from None
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise UnsafeExpression(f"{_show(text)} nests {depth:,} operations deep: at most {MAX_DEPTH}")
    return _Evaluation(text, source, names or {}).walk(tree.body)
