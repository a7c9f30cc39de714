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
    text = re.sub(r"(?<=\d)(?=[A-Za-df-z_(])|(?<=\d)(?=e[A-Za-z_])", "*", text)  # 2n, 4d, 3(…); not 1e6
    return re.sub(r"\)\s*(?=[\w(])", ")*", text)


def _number(value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise UnsafeExpression(f"only numbers are allowed, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsafeExpression(f"non-finite number {value!r}")
    return Fraction(value)


def evaluate(text: str, names: Mapping[str, float | int | Fraction] | None = None) -> Fraction:
    """The exact value of ``text`` (a :class:`~fractions.Fraction`); names are looked up in ``names``."""
    names = names or {}
    try:
        tree = ast.parse(normalise(text), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"{text!r} is not an arithmetic expression ({exc.msg})") from None

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return _number(node.value)
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
            result = _BINARY[type(node.op)](left, right)
            result = Fraction(result)
            if abs(result) > MAX_MAGNITUDE:
                raise UnsafeExpression(f"{text!r} exceeds {MAX_MAGNITUDE:.0e}")
            return result
        raise UnsafeExpression(f"{type(node).__name__} is not allowed in {text!r}")

    return walk(tree)
