"""Cost as a function of one input dimension: exact polynomials in a named size (``--input 1xTx17 --vary T``).

Every count archaudit makes (parameters, MACs, each column beside them, memory) is computed by analytic rules from
shapes, so at a given size it is exact. Where the count is a polynomial in one dimension, a polynomial of degree
``d`` is fixed by its values at ``d + 1`` sizes: :func:`fit_many` evaluates the counts at a few sizes, interpolates
exactly (rational arithmetic, Newton's divided differences), and accepts degree ``d`` only when the fit also
predicts the counts at the next :data:`VERIFY` sizes, which it did not see, and at every further size it evaluated;
else it tries ``d + 1``, up to ``max_degree``, and then refuses (:class:`NotPolynomialError`, naming the values).

What is refused on purpose: a length rounded down or up (a strided convolution's or pooling's output length
``floor((T + 2p - k) / s) + 1``, padding to a multiple) is a *quasi-polynomial*, one polynomial per residue of
``T`` modulo the stride. On sizes that share one residue it looks exactly like a polynomial, so the default sizes,
:data:`DEFAULT_POINTS`, are chosen to mix residues (see there): a rounded count then fails verification instead of
being fitted wrongly. A period longer than the spread of the sizes (``floor(T / 1000)`` on sizes under 1000) cannot
be seen by any fit on those sizes; the result is exact on the sizes it names (``fitted_at``, ``verified_at``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from typing import Any, NamedTuple

from .errors import ArchauditError, InputSpecError
from .inputs import InputSpec, parse_inputs

# ----------------------------------------------------------------------------------------------- errors


class NotPolynomialError(ArchauditError, ValueError):
    """A count is not a polynomial of degree at most ``max_degree`` in the varied dimension; the values seen are
    in the message and in ``values`` (per count, one value per size of ``points``)."""

    def __init__(
        self, message: str, *, variable: str, points: tuple[int, ...], values: Mapping[str, tuple[int, ...]]
    ) -> None:
        super().__init__(message)
        self.variable = variable
        self.points = points
        self.values = dict(values)


# ----------------------------------------------------------------------------------------------- inputs

DIMENSION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
"""A varied dimension's name: a letter or ``_``, then letters, digits or ``_`` (``T``, ``B``, ``seq_len``)."""

_DIGITS = re.compile(r"[0-9]+")
_TOKEN = re.compile(r"[^x]*")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class VariedShape:
    """One ``--input`` value with the varied dimension left open: its dimensions as written, ``None`` where the
    varied dimension stands."""

    text: str
    """As given, e.g. ``"input_ids=1xT:int64"``."""
    keyword: str | None
    dims: tuple[str | None, ...]
    dtype: str
    """The ``:dtype`` suffix's name, or ``""``."""

    def at(self, n: int) -> str:
        """The ``--input`` text with ``n`` written where the varied dimension stands."""
        shape = "x".join(str(n) if d is None else d for d in self.dims)
        suffix = f":{self.dtype}" if self.dtype else ""
        return f"{self.keyword}={shape}{suffix}" if self.keyword is not None else f"{shape}{suffix}"


@dataclass(frozen=True)
class VariedInputs:
    """``--input`` values in which one named dimension varies (``1xTx17``, ``input_ids=1xT:int64``)."""

    name: str
    shapes: tuple[VariedShape, ...]

    def at(self, n: int) -> tuple[list[InputSpec], dict[str, InputSpec]]:
        """The inputs at ``name = n``, as :func:`archaudit.inputs.parse_inputs` returns them (positional, by name);
        ``n`` is checked as any written dimension is (at least 1, the bounds of :mod:`archaudit.inputs`)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise InputSpecError(f"--vary {self.name}={n!r}: a size is a positive integer")
        try:
            return parse_inputs([shape.at(n) for shape in self.shapes])
        except InputSpecError as exc:
            raise InputSpecError(f"--vary {self.name}={n}: {exc}") from exc

    def __str__(self) -> str:
        return " ".join(shape.text for shape in self.shapes)


def parse_varied(texts: Sequence[str], name: str) -> VariedInputs:
    """``--input`` values (``SHAPE`` or ``NAME=SHAPE``, as :func:`archaudit.inputs.parse_inputs` reads them) in which
    the dimension ``name`` stands where a number would: ``parse_varied(["1xTx17"], "T")``. It may stand in several
    places (``1x3xSxS``) and several inputs; every other dimension is a number. The rest of each value is checked
    at once, with ``name = 1``."""
    if not isinstance(name, str) or not DIMENSION_NAME.match(name):
        shown = name[:40] if isinstance(name, str) else name
        raise InputSpecError(
            f"--vary {shown!r}: not a dimension name (a letter or _, then letters, digits or _, as in T or seq_len)"
        )
    shapes = tuple(_varied_shape(text, name) for text in texts)
    if not any(None in shape.dims for shape in shapes):
        given = ", ".join(repr(t[:40]) for t in texts) or "no --input"
        raise InputSpecError(
            f"--vary {name}: no --input has a dimension named {name} ({given}); "
            f"write the name where the size stands, as in 1x{name}x17"
        )
    varied = VariedInputs(name, shapes)
    try:
        parse_inputs([shape.at(1) for shape in shapes])
    except InputSpecError as exc:
        raise InputSpecError(f"{exc} (checked with {name}=1)") from exc
    return varied


def _varied_shape(text: str, name: str) -> VariedShape:
    if not isinstance(text, str):
        raise InputSpecError(f"--input {text!r}: expected a shape string such as 1x{name}x17")
    shown = text if len(text) <= 40 else text[:40] + "..."
    if len(text) > 300:
        raise InputSpecError(f"--input {shown!r}: {len(text):,} characters; an input has at most 300")
    keyword_text, sep, rest = text.partition("=")
    keyword = keyword_text.strip() if sep else None
    shape_text, _, dtype = (rest if sep else text).strip().partition(":")
    return VariedShape(text, keyword, _dims(shape_text, name, shown), dtype)


def _dims(shape: str, name: str, shown: str) -> tuple[str | None, ...]:
    """The dimensions of ``shape`` (``"1xTx17"``), ``None`` for each ``name``; read left to right, the name tried
    first, so that a name holding an ``x`` (``max_len``) is still found whole."""
    dims: list[str | None] = []
    i = 0
    while True:
        end = i + len(name)
        if shape.startswith(name, i) and (end == len(shape) or shape[end] == "x"):
            dims.append(None)
            i = end
        else:
            token = _TOKEN.match(shape, i)
            word = token.group() if token else ""
            if _DIGITS.fullmatch(word):
                dims.append(word)
                i += len(word)
            elif _IDENTIFIER.match(word):
                raise InputSpecError(
                    f"--input {shown!r}: dimension {word[:32]!r} is not a number, and --vary names {name}"
                )
            else:
                raise InputSpecError(
                    f"--input {shown!r}: expected dimensions joined by 'x' (numbers, or {name} where the size "
                    f"varies), such as 1x{name}x17"
                )
        if i == len(shape):
            return tuple(dims)
        i += 1  # past the 'x' that ended the dimension


# ----------------------------------------------------------------------------------------------- polynomials


class Term(NamedTuple):
    coefficient: Fraction
    power: int


@dataclass(frozen=True)
class Crossover:
    """Where ``higher`` (the term of higher power) reaches ``lower`` in magnitude: the smallest positive integer
    size ``at`` with ``|higher(at)| >= |lower(at)|`` (``a*T^2`` reaches ``b*T`` at ``T = ceil(b/a)``)."""

    higher: Term
    lower: Term
    at: int

    def as_json(self) -> dict[str, Any]:
        return {"higher": self.higher.power, "lower": self.lower.power, "at": self.at}


@dataclass(frozen=True)
class Polynomial:
    """An exact polynomial in one variable with rational coefficients, ``coefficients[k]`` that of ``variable^k``
    (trailing zeros are dropped, so the zero polynomial has none). Two polynomials are equal when their variable and
    coefficients are; ``fitted_at`` and ``verified_at`` record where a fit found it."""

    coefficients: tuple[Fraction, ...]
    variable: str = "n"
    fitted_at: tuple[int, ...] = field(default=(), compare=False)
    """The sizes it was interpolated through."""
    verified_at: tuple[int, ...] = field(default=(), compare=False)
    """The sizes it was checked at, unseen by the interpolation."""

    def __post_init__(self) -> None:
        coefficients = [Fraction(c) for c in self.coefficients]
        while coefficients and coefficients[-1] == 0:
            coefficients.pop()
        object.__setattr__(self, "coefficients", tuple(coefficients))

    def __call__(self, n: int | Fraction) -> int | Fraction:
        """The exact value at ``n``: an ``int`` when it is integral, else a ``Fraction``."""
        value = Fraction(0)
        for c in reversed(self.coefficients):
            value = value * n + c
        return value.numerator if value.denominator == 1 else value

    @property
    def degree(self) -> int:
        """The highest power with a nonzero coefficient; 0 for a constant, the zero polynomial included."""
        return max(len(self.coefficients) - 1, 0)

    @property
    def terms(self) -> tuple[Term, ...]:
        """The nonzero terms, highest power first."""
        return tuple(Term(c, k) for k, c in reversed(list(enumerate(self.coefficients))) if c != 0)

    @property
    def dominant(self) -> Term | None:
        """The term of highest power (None for the zero polynomial)."""
        terms = self.terms
        return terms[0] if terms else None

    def crossovers(self) -> tuple[Crossover, ...]:
        """For each pair of adjacent nonzero terms, where the higher power reaches the lower one in magnitude."""
        terms = self.terms
        return tuple(
            Crossover(high, low, _least_root(abs(low.coefficient) / abs(high.coefficient), high.power - low.power))
            for high, low in pairwise(terms)
        )

    def dominant_from(self) -> int | None:
        """The smallest positive integer size from which the dominant term is at least the sum of the others'
        magnitudes (1 for a single term; None for the zero polynomial). From there on it stays so."""
        terms = self.terms
        if not terms:
            return None
        top, rest = terms[0], terms[1:]
        total = sum((abs(t.coefficient) for t in rest), Fraction(0))

        def reached(n: int) -> bool:
            others = sum((abs(t.coefficient) * n**t.power for t in rest), Fraction(0))
            return bool(abs(top.coefficient) * n**top.power >= others)

        # |a_d| n^d >= sum |a_i| n^i is monotone in n >= 1 (divide by n^d), and holds at n >= sum |a_i| / |a_d|.
        return _least(reached, max(1, _ceil(total / abs(top.coefficient))))

    def __str__(self) -> str:
        return formula(self)

    def as_json(self) -> dict[str, Any]:
        """Exact and stable: coefficients by power, highest first (an ``int`` when integral, else ``"p/q"``)."""
        top = self.dominant
        return {
            "variable": self.variable,
            "degree": self.degree,
            "formula": formula(self),
            "coefficients": {str(t.power): _exact(t.coefficient) for t in self.terms},
            "dominant": None
            if top is None
            else {"power": top.power, "coefficient": _exact(top.coefficient), "from": self.dominant_from()},
            "crossovers": [c.as_json() for c in self.crossovers()],
            "fitted_at": list(self.fitted_at),
            "verified_at": list(self.verified_at),
        }


def _exact(value: Fraction) -> int | str:
    return value.numerator if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def _least(reached: Callable[[int], bool], high: int) -> int:
    """The smallest ``n`` in ``1..high`` with ``reached(n)``, for a monotone ``reached`` that holds at ``high``."""
    low = 1
    while low < high:
        middle = (low + high) // 2
        if reached(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _least_root(ratio: Fraction, k: int) -> int:
    """The smallest positive integer ``n`` with ``n^k >= ratio`` (exact; ``ceil(ratio)`` is an upper bound)."""
    return _least(lambda n: n**k >= ratio, max(1, _ceil(ratio)))


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def formula(polynomial: Polynomial, *, unicode: bool = False) -> str:
    """``"12*T^2 + 3,456*T + 78"`` (ASCII, safe in Markdown and any terminal), or ``"12·T² + 3,456·T + 78"``."""
    terms = polynomial.terms
    if not terms:
        return "0"
    times = "·" if unicode else "*"
    parts: list[str] = []
    for i, (c, power) in enumerate(terms):
        magnitude = abs(c)
        number = _number(magnitude)
        if power == 0:
            text = number
        else:
            var = polynomial.variable
            if power > 1:
                var += str(power).translate(_SUPERSCRIPTS) if unicode else f"^{power}"
            if magnitude == 1:
                text = var
            else:
                text = f"({number}){times}{var}" if magnitude.denominator != 1 else f"{number}{times}{var}"
        if i == 0:
            parts.append(f"-{text}" if c < 0 else text)
        else:
            parts.append(f" - {text}" if c < 0 else f" + {text}")
    return "".join(parts)


def _number(value: Fraction) -> str:
    if value.denominator == 1:
        return f"{value.numerator:,}"
    return f"{value.numerator:,}/{value.denominator:,}"


def _approximate(value: int | Fraction) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{_number(value)} (about {float(value):,.3f})"


def describe(polynomial: Polynomial) -> str:
    """One line: the formula, its dominant term and where each term overtakes the next,
    ``"12*T^2 + 3,456*T + 78: 12*T^2 dominates from T=289; T^2 passes T at T=288, T passes 1 at T=1"``."""
    top = polynomial.dominant
    text = formula(polynomial)
    if top is None or len(polynomial.terms) == 1:
        return text
    var = polynomial.variable
    lead = formula(Polynomial((Fraction(0),) * top.power + (top.coefficient,), var))
    passes = ", ".join(
        f"{_power(c.higher.power, var)} passes {_power(c.lower.power, var)} at {var}={c.at:,}"
        for c in polynomial.crossovers()
    )
    return f"{text}: {lead} dominates from {var}={polynomial.dominant_from():,}; {passes}"


def _power(power: int, var: str) -> str:
    return "1" if power == 0 else var if power == 1 else f"{var}^{power}"


# ----------------------------------------------------------------------------------------------- fitting

DEFAULT_POINTS: tuple[int, ...] = (121, 77, 48, 148, 31, 123, 134, 179)
"""The sizes a fit evaluates, in this order: the first ``d + 1`` fit degree ``d``, the next :data:`VERIFY` check it.

A quasi-polynomial of period ``s`` (a length rounded by a stride ``s``) agrees with a polynomial on sizes of one
residue modulo ``s``, and on sizes closer together than ``s`` it may be constant: sizes in increasing order or on a
grid (``32, 64, 96, ...``, or consecutive) let such counts through. These, from a search over sizes in 31..179, mix
residues in every prefix: every ``floor((n + c) / s)`` with ``s`` up to 73 (also squared, times ``n``, or two nested
strides) is refused on them with two sizes checking each fit, and with ``s`` up to 44 even with one
(``tests/test_polynomial.py`` checks strides up to 32). Seven serve the default ``max_degree=4``; the eighth lets
``max_degree=5`` run. They lie above the kernel and receptive-field sizes of common conv front ends and below the
position limits of common text models (512 and up; CLIP's 77 needs its own ``points``)."""

VERIFY = 2
"""Sizes past the interpolation a fit must also predict. One is enough to confirm a true polynomial; two refuse
rounded counts of periods up to 73 on :data:`DEFAULT_POINTS` where one refuses them up to 44, for one evaluation
more (a fit of degree ``d`` evaluates ``d + 3`` sizes)."""

MAX_DEGREE = 8


def fit_polynomial(
    evaluate: Callable[[int], int],
    *,
    variable: str = "n",
    points: Sequence[int] | None = None,
    max_degree: int = 4,
    verify: int = VERIFY,
    ahead: Callable[[Sequence[int]], None] | None = None,
) -> Polynomial:
    """The exact polynomial of lowest degree (at most ``max_degree``) that ``evaluate`` is at ``points``; raises
    :class:`NotPolynomialError` naming the values when there is none. ``ahead`` as for :func:`fit_many`."""
    return fit_many(
        lambda n: {"the count": evaluate(n)},
        variable=variable,
        points=points,
        max_degree=max_degree,
        verify=verify,
        ahead=ahead,
    )["the count"]


def fit_many(
    evaluate: Callable[[int], Mapping[str, int]],
    *,
    variable: str = "n",
    points: Sequence[int] | None = None,
    max_degree: int = 4,
    verify: int = VERIFY,
    ahead: Callable[[Sequence[int]], None] | None = None,
) -> dict[str, Polynomial]:
    """Several counts at once (``{"parameters": ..., "macs": ...}``), each size evaluated once, in order, and no more
    sizes than the highest degree needs (``degree + 1 + verify``). Every count is checked at every size evaluated
    past its interpolation. Raises :class:`NotPolynomialError` naming every count that is not a polynomial.

    ``ahead``, when given, hears before each evaluation the sizes from that one on which the fit will evaluate
    unless an evaluation fails: those a fit needs of the degree the values so far prove (the degree of the
    polynomial through them, a lower bound on any polynomial's) or of the degree being tried, whichever is
    higher. A caller can evaluate them side by side (``archaudit.varied``); none of them is a guess."""
    sizes = _check_points(points, max_degree, verify)
    seen: list[dict[str, int]] = []
    keys: tuple[str, ...] = ()
    degree: dict[str, int] = {}
    interpolated: dict[tuple[str, int], Polynomial] = {}
    fits: dict[str, Polynomial] = {}
    open_keys: list[str] = []
    refused: list[str] = []
    for count, size in enumerate(sizes, start=1):
        if ahead is not None:
            ahead(sizes[count - 1 : _needed(sizes, seen, open_keys, degree, max_degree, verify, variable)])
        seen.append(_values(evaluate(size), size, variable, keys))
        if count == 1:
            keys = tuple(seen[0])
            degree = dict.fromkeys(keys, 0)
            open_keys = list(keys)
        for key in list(open_keys):
            ys = [values[key] for values in seen]
            # Degree d is tried once d + 1 sizes fit it and `verify` more can check it; a fit accepted at one size
            # is checked again at every later size evaluated (for another count), and replaced if it fails there.
            while degree[key] + 1 + verify <= count:
                d = degree[key]
                if (key, d) not in interpolated:
                    interpolated[key, d] = _interpolate(sizes[: d + 1], ys[: d + 1], variable)
                fit = interpolated[key, d]
                if all(fit(x) == y for x, y in zip(sizes[d + 1 : count], ys[d + 1 :], strict=True)):
                    fits[key] = Polynomial(fit.coefficients, variable, sizes[: d + 1], sizes[d + 1 : count])
                    break
                fits.pop(key, None)
                degree[key] = d + 1
                if degree[key] > max_degree:
                    open_keys.remove(key)
                    refused.append(key)
                    break
        if all(key in fits for key in open_keys):
            break
    if refused:
        raise _refusal(refused, sizes[: len(seen)], seen, variable, max_degree)
    return {key: fits[key] for key in keys}


def _needed(
    sizes: tuple[int, ...],
    seen: Sequence[Mapping[str, int]],
    open_keys: Sequence[str],
    degree: Mapping[str, int],
    max_degree: int,
    verify: int,
    variable: str,
) -> int:
    """How many sizes the fit evaluates at least, from the values seen: for each open count, a fit of the higher
    of the degree it is trying and the degree of the polynomial through its values (which any polynomial through
    them has at least), needs that degree + 1 + ``verify``; a count whose values prove more than ``max_degree`` is
    refused once that degree's fit fails, so it needs no more than ``max_degree``'s."""
    if not seen:
        return min(len(sizes), 1 + verify)
    xs = sizes[: len(seen)]
    proved = (
        min(max_degree, max(degree[key], _interpolate(xs, [values[key] for values in seen], variable).degree))
        for key in open_keys
    )
    return min(len(sizes), max((d + 1 + verify for d in proved), default=len(seen) + 1))


def _check_points(points: Sequence[int] | None, max_degree: int, verify: int) -> tuple[int, ...]:
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or not 0 <= max_degree <= MAX_DEGREE:
        raise ValueError(f"{max_degree=}: a degree from 0 to {MAX_DEGREE}")
    if isinstance(verify, bool) or not isinstance(verify, int) or verify < 1:
        raise ValueError(f"{verify=}: at least one size must check a fit")
    sizes = DEFAULT_POINTS if points is None else tuple(points)
    if any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in sizes):
        raise ValueError(f"points={sizes!r}: sizes are positive integers")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"points={sizes!r}: a size is given twice")
    needed = max_degree + 1 + verify
    if len(sizes) < needed:
        raise ValueError(
            f"points={sizes!r}: degree {max_degree} needs {needed} sizes ({max_degree + 1} to fit, {verify} to check)"
        )
    return sizes


def _values(values: Mapping[str, int], size: int, variable: str, keys: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(values, Mapping):
        raise TypeError(f"at {variable}={size}: evaluate returned {type(values).__name__}, not a mapping of counts")
    if keys and tuple(values) != keys and set(values) != set(keys):
        raise ValueError(f"at {variable}={size}: counts {sorted(values)}, not the {sorted(keys)} of the first size")
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"at {variable}={size}: {key} is {value!r}, not an integer count")
    return dict(values)


def _interpolate(xs: Sequence[int], ys: Sequence[int], variable: str) -> Polynomial:
    """The polynomial of degree below ``len(xs)`` through ``(xs[i], ys[i])``: Newton's divided differences, exact,
    then expanded into powers of the variable."""
    differences = [Fraction(y) for y in ys]
    for j in range(1, len(xs)):
        for i in range(len(xs) - 1, j - 1, -1):
            differences[i] = (differences[i] - differences[i - 1]) / (xs[i] - xs[i - j])
    # p(x) = c0 + (x - x0) * (c1 + (x - x1) * (c2 + ...)), expanded from the inside out
    coefficients: list[Fraction] = []
    for i in range(len(xs) - 1, -1, -1):
        shifted = [Fraction(0), *coefficients]  # (x - xs[i]) * p = x * p - xs[i] * p
        for k, c in enumerate(coefficients):
            shifted[k] -= xs[i] * c
        shifted[0] += differences[i]
        coefficients = shifted
    return Polynomial(tuple(coefficients), variable, tuple(xs))


def _refusal(
    refused: Sequence[str],
    sizes: tuple[int, ...],
    seen: Sequence[Mapping[str, int]],
    variable: str,
    max_degree: int,
) -> NotPolynomialError:
    values = {key: tuple(v[key] for v in seen) for key in refused}
    key = refused[0]
    shown = ", ".join(f"{variable}={x}: {y:,}" for x, y in zip(sizes, values[key], strict=True))
    others = f" (and {', '.join(refused[1:])})" if len(refused) > 1 else ""
    last = _interpolate(sizes[: max_degree + 1], values[key][: max_degree + 1], variable)
    miss = next(
        (x, y) for x, y in zip(sizes[max_degree + 1 :], values[key][max_degree + 1 :], strict=True) if last(x) != y
    )
    predicted = last(miss[0])
    message = (
        f"{key}{others} is not a polynomial in {variable} of degree at most {max_degree}: {shown}; "
        f"the degree-{max_degree} fit through the first {max_degree + 1} gives {_approximate(predicted)} "
        f"at {variable}={miss[0]} (a length rounded by a stride, or padded to a multiple, is not a polynomial)"
    )
    return NotPolynomialError(message, variable=variable, points=sizes, values=values)
