"""The safe evaluator behind arithmetic, derived and implied claims (archaudit.claims.safe_eval).

Oracle of the property test: Python's own arithmetic on :class:`fractions.Fraction`, applied to the generated
expression tree (not to the string), with the evaluator's documented refusals (division by zero, a non-integer
or over-large exponent, zero to a negative power, a result beyond ``MAX_MAGNITUDE``) expected as
:class:`UnsafeExpression`.
"""

from __future__ import annotations

import ast
import keyword
import operator
import re
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from archaudit.claims import UnsafeExpression, evaluate
from archaudit.claims.safe_eval import MAX_EXPONENT, MAX_MAGNITUDE, normalise

# --------------------------------------------------------------------------------------- generated expressions

_OPS = {
    "+": (ast.Add, operator.add), "-": (ast.Sub, operator.sub), "*": (ast.Mult, operator.mul),
    "/": (ast.Div, operator.truediv), "//": (ast.FloorDiv, operator.floordiv), "%": (ast.Mod, operator.mod),
    "**": (ast.Pow, operator.pow),
}

# A tree is ("num", n) | ("neg", tree) | (op, left, right); literals are non-negative, a negative number is
# ("neg", ("num", n)), so that every rendering keeps Python's precedence for unary minus.
_numbers = st.integers(-40, 40).map(lambda n: ("num", n) if n >= 0 else ("neg", ("num", -n)))


def _extend(children):
    binary = st.tuples(st.sampled_from(["+", "-", "*", "/", "//", "%"]), children, children)
    # small exponents, negative ones included (a Fraction result), as a literal or a negated literal
    exponent = st.integers(-3, 3).map(lambda n: ("num", n) if n >= 0 else ("neg", ("num", -n)))
    power = st.tuples(st.just("**"), children, exponent)
    return st.one_of(binary, binary, power, children.map(lambda c: ("neg", c)))


trees = st.recursive(_numbers, _extend, max_leaves=16)


class Refused(Exception):
    """What the oracle expects the evaluator to refuse."""


def expected(tree) -> Fraction:
    """The oracle: Fraction arithmetic on the tree, with the evaluator's documented refusals."""
    if tree[0] == "num":
        return Fraction(tree[1])
    if tree[0] == "neg":
        return -expected(tree[1])
    op, left, right = tree
    a, b = expected(left), expected(right)
    if op == "**":
        if b.denominator != 1 or abs(b) > MAX_EXPONENT or (a == 0 and b < 0):
            raise Refused
    elif op in ("/", "//", "%") and b == 0:
        raise Refused
    result = Fraction(_OPS[op][1](a, b))
    if abs(result) > MAX_MAGNITUDE:
        raise Refused
    return result


def _to_ast(tree) -> ast.expr:
    if tree[0] == "num":
        return ast.Constant(tree[1])
    if tree[0] == "neg":
        return ast.UnaryOp(ast.USub(), _to_ast(tree[1]))
    op, left, right = tree
    return ast.BinOp(_to_ast(left), _OPS[op][0](), _to_ast(right))


def render_minimal(tree) -> str:
    """Python's own rendering: only the parentheses precedence and associativity need."""
    return ast.unparse(_to_ast(tree))


def render_full(tree) -> str:
    """Every operation in parentheses, with no spaces."""
    if tree[0] == "num":
        return str(tree[1])
    if tree[0] == "neg":
        return f"(-{render_full(tree[1])})"
    op, left, right = tree
    return f"({render_full(left)}{op}{render_full(right)})"


@given(tree=trees, render=st.sampled_from([render_minimal, render_full]))
def test_evaluate_agrees_with_fraction_arithmetic(tree, render):
    text = render(tree)
    try:
        value = expected(tree)
    except Refused:
        with pytest.raises(UnsafeExpression):
            evaluate(text)
        return
    assert evaluate(text) == value, text


def test_the_oracle_sees_both_outcomes():
    """The property is not vacuous: the generator's shapes give values and refusals alike."""
    assert expected(("/", ("num", 7), ("num", 2))) == Fraction(7, 2)
    assert evaluate("7 / 2") == Fraction(7, 2)
    assert evaluate("-7 // 2") == -4 and evaluate("-7 % 3") == 2  # Python's floor semantics: -4*2 = -8; -7 - -9 = 2
    assert evaluate("2 ** -2") == Fraction(1, 4)
    assert evaluate("(-2) ** 3") == -8 and evaluate("-2 ** 2") == -4  # ** binds tighter than unary minus
    assert evaluate("2 ** 3 ** 2") == 512  # right-associative: 2 ** 9
    for refused in ("1 / 0", "5 // (3 - 3)", "5 % 0", "0 ** -1", "2 ** (1 / 2)"):
        with pytest.raises(Refused):
            expected(_tree_of(refused))
        with pytest.raises(UnsafeExpression):
            evaluate(refused)


def _tree_of(text: str):
    """The tree of a small literal expression, for the oracle."""
    names = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}

    def walk(node):
        if isinstance(node, ast.Constant):
            return ("num", node.value)
        if isinstance(node, ast.UnaryOp):
            return ("neg", walk(node.operand))
        return (names[type(node.op)], walk(node.left), walk(node.right))

    return walk(ast.parse(text, mode="eval").body)


# ------------------------------------------------------------------------------------------------ names


@given(value=st.integers(-10**6, 10**6), name=st.from_regex(r"[a-z][a-z_]{0,6}", fullmatch=True))
def test_bound_names_take_their_value(value, name):
    """Oracle: the mapping itself; ``name * 3 + 1`` with the name bound to ``value``."""
    assume(not keyword.iskeyword(name))  # "if", "in", "or" ... are not names
    assert evaluate(f"{name} * 3 + 1", {name: value}) == 3 * value + 1


@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True))
def test_unbound_names_are_refused(name):
    """Any identifier (keywords, True/None and dunder names included) is refused when it is not bound."""
    with pytest.raises(UnsafeExpression):
        evaluate(f"1 + {name}", {"bound_only": 1} if name != "bound_only" else {})


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("__import__('os')", "Call"),
        ("abs(1)", "Call"),
        ("(1).real", "Attribute"),
        ("[1, 2][0]", "Subscript"),
        ("lambda: 1", "Lambda"),
        ("1 < 2", "Compare"),
        ("1 if 2 else 3", "IfExp"),
        ("'abc'", "only numbers"),
        ("True + 1", "only numbers"),
        ("d", "unknown name 'd'"),
        ("10**1000", "exponent 1000"),
        ("2**2**2**2**2", "exponent 65536"),  # 2**(2**(2**(2**2))) = 2**65536: refused before it is computed
        ("10**31", "exceeds"),  # within the exponent limit, beyond MAX_MAGNITUDE (1e30)
        ("1 / 0", "division by zero"),
        ("0 ** -1", "zero to a negative power"),
        ("2 ** 0.5", "exponent 1/2"),
        ("1 +", "not an arithmetic expression"),
    ],
)
def test_refuses_everything_but_arithmetic(text, construct):
    with pytest.raises(UnsafeExpression, match=re.escape(construct)):
        evaluate(text)


def test_unsafe_expression_is_a_value_error():
    with pytest.raises(ValueError):
        evaluate("abs(1)")


# ------------------------------------------------------------------------------------------------ typography


@pytest.mark.parametrize(
    ("text", "names", "value"),
    [
        ("768 × 768 + 768", {}, 590_592),  # 589,824 + 768
        ("768 x 768 + 768", {}, 590_592),  # ASCII x between numbers is multiplication too
        ("4d² + 4d", {"d": 768}, 2_362_368),  # 4*589,824 + 4*768 = 2,359,296 + 3,072
        ("2n", {"n": 5}, 10),
        ("3,502,849", {}, 3_502_849),  # one number, not a tuple
        ("4 × 590,592", {}, 2_362_368),
        ("1e6", {}, 1_000_000),
        ("2^10", {}, 1024),
        ("12 ÷ 4 − 1", {}, 2),  # typographic divide and minus: 3 - 1
        ("(a)(b)", {"a": 6, "b": 7}, 42),
        ("3(4 + 1)", {}, 15),
        ("2 × 4 × (64 × 128 + 128 × 128 + 2 × 128)", {}, 198_656),  # 8 * 24,832: one BiLSTM layer at 64 -> 128
    ],
)
def test_typographic_input_is_normalised(text, names, value):
    assert evaluate(text, names) == value


def test_scientific_notation_is_not_an_implicit_product():
    assert normalise("1e6") == "1e6"
    assert normalise("cmp_amnl_params / 1e6") == "cmp_amnl_params / 1e6"
    assert normalise("2n") == "2*n" and normalise("4d²") == "4*d**2"


def test_upper_case_scientific_notation():
    assert evaluate("1E6") == 1_000_000


def test_decimal_literals_are_exact():
    assert evaluate("0.1 + 0.2") == Fraction(3, 10) == evaluate("0.3")


def test_tiny_powers_are_bounded_too():
    # (10**-29)**64 = 10**-1856, far below anything a document prints: refused like 10**1856 would be
    with pytest.raises(UnsafeExpression):
        evaluate("((1/10**29)**64)**64")


def test_long_expressions_are_refused_or_evaluated():
    text = "1" + " + 1" * 1000
    try:
        value = evaluate(text)
    except UnsafeExpression:
        return
    assert value == 1001
