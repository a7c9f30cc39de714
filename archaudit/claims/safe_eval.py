"""A safe evaluator for the arithmetic that documents print ("768 x 768 + 768 = 590,592").

It parses with :mod:`ast` and walks the tree itself: numbers, + - * / // % **, unary signs, parentheses, and
names bound by the caller. Anything else (calls, attributes, subscripts, comparisons, unknown names, strings)
is refused, and so are powers whose result would be huge. ``eval`` is never used.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from fractions import Fraction
from typing import Mapping

from ..errors import ArchauditError

MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**30
MAX_DENOMINATOR = 10**30
MAX_LENGTH = 2_000

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class UnsafeExpression(ArchauditError, ValueError):
    """An expression uses something the safe evaluator does not allow (the construct is named)."""


def normalise(text: str) -> str:
    """Typographic arithmetic to Python: x, × and · as *, ÷ as /, ^ and superscripts as powers, implicit
    products ("2n", "4d²", "(a)(b)") made explicit, thousands separators dropped."""
    text = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    text = text.replace("²", "**2").replace("³", "**3")
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=\d)(?=[A-DF-Za-df-z_(])|(?<=\d)(?=[eE][A-Za-z_])", "*", text)  # 2n, 4d, 3(…); not 1e6
    return re.sub(r"\)\s*(?=[\w(])", ")*", text)


def _number(value: object, literal: str | None = None) -> Fraction:
    """A bound name's value, or a literal read exactly from its text ("0.1" is 1/10, not the float nearest it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise UnsafeExpression(f"only numbers are allowed, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsafeExpression(f"non-finite number {value!r}")
    result = Fraction(literal.replace("_", "")) if literal else Fraction(value)
    if abs(result) > MAX_MAGNITUDE:
        raise UnsafeExpression(f"{literal or value} exceeds {MAX_MAGNITUDE:.0e}")
    return result


def evaluate(text: str, names: Mapping[str, float | int | Fraction] | None = None) -> Fraction:
    """The exact value of ``text`` (a :class:`~fractions.Fraction`); names are looked up in ``names``."""
    names = names or {}
    if len(text) > MAX_LENGTH:
        raise UnsafeExpression(f"expression of {len(text):,} characters: at most {MAX_LENGTH:,}")
    source = normalise(text)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"{text!r} is not an arithmetic expression ({exc.msg})") from None
    except (RecursionError, MemoryError):
        raise UnsafeExpression(f"{text[:40]!r}...: too deeply nested") from None

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return _number(node.value, ast.get_source_segment(source, node))
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise UnsafeExpression(f"unknown name {node.id!r} in {text!r}")
            return _number(names[node.id])
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow):
                if right.denominator != 1 or abs(right) > MAX_EXPONENT:
                    raise UnsafeExpression(f"exponent {right} in {text!r}: only integers up to {MAX_EXPONENT}")
                if left == 0 and right < 0:
                    raise UnsafeExpression(f"zero to a negative power in {text!r}")
            if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
                raise UnsafeExpression(f"division by zero in {text!r}")
            if isinstance(node.op, ast.Pow):
                # bound the result before computing it: |left|^right digits, numerator and denominator alike
                size = max(math.log10(abs(left.numerator)) if left.numerator else 0.0, math.log10(left.denominator))
                if size * abs(int(right)) > math.log10(MAX_MAGNITUDE * MAX_DENOMINATOR):
                    raise UnsafeExpression(f"{text!r}: a power that large or small is not a document's figure")
            result = Fraction(_BINARY[type(node.op)](left, right))
            if abs(result) > MAX_MAGNITUDE or result.denominator > MAX_DENOMINATOR:
                raise UnsafeExpression(f"{text!r} exceeds the range of a document's figures "
                                       f"(|value| up to {MAX_MAGNITUDE:.0e}, denominators up to {MAX_DENOMINATOR:.0e})")
            return result
        raise UnsafeExpression(f"{type(node).__name__} is not allowed in {text!r}")

    try:
        return walk(tree)
    except RecursionError:
        raise UnsafeExpression(f"{text[:40]!r}...: too deeply nested") from None
