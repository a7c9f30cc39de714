"""Costs as exact polynomials in one named input dimension (archaudit.polynomial)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from fractions import Fraction

import pytest
import torch
from archaudit.errors import ArchauditError, InputSpecError
from archaudit.inputs import InputSpec
from archaudit.macs import audit_macs
from archaudit.polynomial import (
    DEFAULT_POINTS,
    NotPolynomialError,
    Polynomial,
    Term,
    describe,
    fit_many,
    fit_polynomial,
    formula,
    parse_varied,
)
from archaudit.walker import audit_params
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

UNSEEN = 1_000  # a size no fit here is given: far outside DEFAULT_POINTS (31..179)

# Each fit costs at most 8 evaluations of a cheap lambda plus exact Fraction arithmetic (about 1 ms); 60 examples
# keep every property under half a second on a loaded 2-core runner, and the ci profile is derandomised anyway.
FAST = settings(max_examples=60)

coefficient = st.integers(-(10**9), 10**9)


@st.composite
def integer_polynomials(draw: st.DrawFn) -> tuple[int, ...]:
    """Integer coefficients, lowest power first, degree 0..4, the top one nonzero."""
    degree = draw(st.integers(0, 4))
    rest = draw(st.lists(coefficient, min_size=degree, max_size=degree))
    top = draw(coefficient.filter(bool))
    return (*rest, top)


def direct(coefficients: tuple[int, ...], n: int) -> int:
    return sum(c * n**k for k, c in enumerate(coefficients))


# ----------------------------------------------------------------------------------------------- fitting


@FAST
@given(integer_polynomials())
def test_fit_recovers_integer_polynomial(coefficients: tuple[int, ...]) -> None:
    """Oracle: the drawn polynomial itself, evaluated directly at a size the fit never saw."""
    fit = fit_polynomial(lambda n: direct(coefficients, n), variable="T")
    assert fit(UNSEEN) == direct(coefficients, UNSEEN)
    assert fit.coefficients == tuple(Fraction(c) for c in coefficients)
    assert fit.degree == len(coefficients) - 1
    # degree d evaluates d + 1 sizes to fit and VERIFY = 2 more to check
    assert len(fit.fitted_at) == fit.degree + 1 and len(fit.verified_at) == 2


@FAST
@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=5).filter(lambda cs: cs[-1] != 0))
def test_fit_recovers_rational_polynomial(binomial: list[int]) -> None:
    """Integer-valued polynomials with rational coefficients, sum c_k * C(n, k) (``n*(n+1)/2`` is one).
    Oracle: math.comb at an unseen size, and the exact coefficients of C(n, k) expanded independently."""

    def value(n: int) -> int:
        return sum(c * math.comb(n, k) for k, c in enumerate(binomial))

    fit = fit_polynomial(value)
    assert fit(UNSEEN) == value(UNSEEN)
    assert fit(UNSEEN + 1) == value(UNSEEN + 1)
    assert fit.degree == len(binomial) - 1
    # the top coefficient of c_d * C(n, d) is c_d / d!
    assert fit.coefficients[-1] == Fraction(binomial[-1], math.factorial(len(binomial) - 1))


def test_fit_has_exact_fractions() -> None:
    """Oracle: n*(n+1)/2 by hand; its coefficients are 1/2 and 1/2, never floats."""
    fit = fit_polynomial(lambda n: n * (n + 1) // 2, variable="T")
    assert fit.coefficients == (Fraction(0), Fraction(1, 2), Fraction(1, 2))
    assert str(fit) == "(1/2)*T^2 + (1/2)*T"
    assert fit(7) == 28 and isinstance(fit(7), int)  # 7*8/2
    assert fit(Fraction(1, 2)) == Fraction(3, 8)  # (1/4 + 1/2) / 2


def test_fit_many_evaluates_each_size_once_and_no_more_than_needed() -> None:
    """Oracle: the sizes the evaluator was called with: the degree-2 count needs 2 + 1 + 2 = 5 sizes, the
    others are settled by then, and each size is evaluated once for all counts."""
    calls: list[int] = []

    def evaluate(n: int) -> dict[str, int]:
        calls.append(n)
        return {"parameters": 2_224, "macs": 32 * n * n + 2048 * n, "bias": 112 * n}

    fits = fit_many(evaluate, variable="T")
    assert calls == list(DEFAULT_POINTS[:5])
    assert [fits[k].degree for k in ("parameters", "macs", "bias")] == [0, 2, 1]
    # every count is checked at every size evaluated past its own interpolation
    assert fits["parameters"].fitted_at == DEFAULT_POINTS[:1]
    assert fits["parameters"].verified_at == DEFAULT_POINTS[1:5]


def test_ahead_is_told_the_sizes_the_fit_will_evaluate_at_least() -> None:
    """Oracle: the sizes evaluated, and the degree the values so far prove (that of the polynomial through them):
    before each evaluation ``ahead`` hears the sizes from this one to the last that a fit of the proved degree (at
    least that of the fit being tried) needs, d + 1 + VERIFY. Each size it names is evaluated: none is a guess."""
    told: list[list[int]] = []
    calls: list[int] = []

    def evaluate(n: int) -> dict[str, int]:
        calls.append(n)
        return {"quadratic": 3 * n * n + 1, "constant": 7}

    fit_many(evaluate, ahead=lambda sizes: told.append(list(sizes)))
    p = list(DEFAULT_POINTS)
    # nothing seen: degree 0, 3 sizes; one value: still 0; two different values: degree 1, 4 sizes; three
    # values on a parabola: degree 2, 5 sizes
    assert told == [p[0:3], p[1:3], p[2:4], p[3:5], p[4:5]]
    assert calls == p[:5]
    assert all(size in calls for sizes in told for size in sizes)


def test_ahead_names_only_sizes_evaluated_when_a_count_is_no_polynomial() -> None:
    """Oracle: the sizes evaluated. A count that is no polynomial (2^n) makes the fit refuse it after degree 4 has
    failed at its seventh size; ``ahead`` must not name the eighth, which only a degree-5 fit (above max_degree)
    would need."""
    told: list[list[int]] = []
    calls: list[int] = []

    def evaluate(n: int) -> int:
        calls.append(n)
        return 2**n

    with pytest.raises(NotPolynomialError):
        fit_polynomial(evaluate, ahead=lambda sizes: told.append(list(sizes)))
    assert calls == list(DEFAULT_POINTS[:7])  # degree 4 fitted on five, refused at the sixth or seventh
    assert {size for sizes in told for size in sizes} <= set(calls)


def test_ahead_follows_a_fit_that_fails_and_goes_up_a_degree() -> None:
    """Oracle: a count equal at the first two sizes and different at the third (0 at 121 and 77, a parabola through
    both): the values prove degree 0, then 2 at the third; ``ahead`` never names a size the fit skips."""
    told: list[list[int]] = []
    calls: list[int] = []
    a, b = DEFAULT_POINTS[:2]

    def evaluate(n: int) -> dict[str, int]:
        calls.append(n)
        return {"count": (n - a) * (n - b)}

    fit_polynomial(lambda n: evaluate(n)["count"], ahead=lambda sizes: told.append(list(sizes)))
    p = list(DEFAULT_POINTS)
    assert told == [p[0:3], p[1:3], p[2:3], p[3:5], p[4:5]]
    assert calls == p[:5]

def test_a_fit_accepted_early_is_rechecked_at_later_sizes() -> None:
    """Oracle: a count constant on the first three sizes (121, 77, 48) and different at the fourth; the degree-0
    fit it passes first must be dropped when another count makes the fit evaluate the fourth size."""

    def evaluate(n: int) -> dict[str, int]:
        return {"tricky": 5 if n in DEFAULT_POINTS[:3] else 6, "cubic": n**3}

    with pytest.raises(NotPolynomialError, match="tricky"):
        fit_many(evaluate)


# A quasi-polynomial: one polynomial per residue of n mod s, as a conv's output length floor((n + 2p - k)/s) + 1.
STRIDES = [(s, c) for s in range(2, 33) for c in range(s)]


def test_rounded_lengths_are_refused() -> None:
    """Oracle: floor division is not a polynomial (its values step once per stride). Every offset of every stride
    up to 32, as conv MACs 7*L(n) + 3*n + 5 and as a squared 2-D output length, must be refused, never fitted."""
    fitted = []
    for s, c in STRIDES:
        for name, f in (
            ("linear", lambda n, s=s, c=c: 7 * ((n + c) // s) + 3 * n + 5),
            ("square", lambda n, s=s, c=c: 11 * ((n + c) // s + 1) ** 2),
        ):
            try:
                fit_polynomial(f)
            except NotPolynomialError:
                continue
            fitted.append((s, c, name))
    assert fitted == []


def test_grid_sizes_would_fit_a_rounded_length() -> None:
    """Oracle: on multiples of 32, floor(n / 32) is exactly n / 32: sizes of one residue cannot tell; this is why
    DEFAULT_POINTS mix residues (and why the refusal test above can fail)."""
    grid = (32, 64, 96, 128, 160, 192, 224, 256)
    assert fit_polynomial(lambda n: n // 32, points=grid).coefficients == (0, Fraction(1, 32))
    with pytest.raises(NotPolynomialError):
        fit_polynomial(lambda n: n // 32)


@pytest.mark.parametrize(
    ("label", "f"),
    [
        ("2**n", lambda n: 2**n),
        ("degree 5", lambda n: n**5),
        ("n mod 7", lambda n: n % 7),
        ("ceil(n/3)", lambda n: -(-n // 3)),
    ],
)
def test_not_polynomial_is_refused_naming_values(label: str, f: object) -> None:
    """Oracle: none of these is a polynomial of degree <= 4; the one-line error names every value seen."""
    assert callable(f)
    with pytest.raises(NotPolynomialError) as caught:
        fit_polynomial(f, variable="T")
    error = caught.value
    assert isinstance(error, ArchauditError) and isinstance(error, ValueError)
    assert error.points == DEFAULT_POINTS[:7]  # degree 4 needs 5 + 2 sizes; the eighth is for max_degree=5
    assert error.values["the count"] == tuple(f(n) for n in DEFAULT_POINTS[:7])
    message = str(error)
    assert "\n" not in message and "degree at most 4" in message
    assert f"T={DEFAULT_POINTS[0]}: {f(DEFAULT_POINTS[0]):,}" in message


def test_fit_many_names_every_refused_count() -> None:
    """Oracle: two of three counts are floor divisions; both are named, the polynomial one is not."""

    def evaluate(n: int) -> dict[str, int]:
        return {"parameters": 10, "macs": 9 * ((n - 3) // 2 + 1), "memory": 4 * (n // 4)}

    with pytest.raises(NotPolynomialError, match=r"^macs \(and memory\) is not a polynomial") as caught:
        fit_many(evaluate)
    assert set(caught.value.values) == {"macs", "memory"}


def test_bad_arguments() -> None:
    """Oracle: the rules of fit_many's arguments (sizes distinct, positive, enough for max_degree; integer counts)."""
    with pytest.raises(ValueError, match="needs 7 sizes"):
        fit_polynomial(lambda n: n, points=(1, 2, 3))
    with pytest.raises(ValueError, match="given twice"):
        fit_polynomial(lambda n: n, points=(1, 2, 3, 4, 5, 6, 6))
    with pytest.raises(ValueError, match="positive"):
        fit_polynomial(lambda n: n, points=(0, 1, 2), max_degree=0)
    with pytest.raises(TypeError, match="not an integer count"):
        fit_polynomial(lambda n: n / 2)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="not the"):
        fit_many(lambda n: {"a": 1} if n == DEFAULT_POINTS[0] else {"b": 1})
    # the smallest settings: degree at most 1 on three sizes, one checking; 3*n fits there, not at max_degree=0
    assert fit_polynomial(lambda n: 3 * n, points=(5, 9, 11), max_degree=1, verify=1) == Polynomial((0, 3), "n")
    with pytest.raises(NotPolynomialError):
        fit_polynomial(lambda n: 3 * n, points=(5, 9), max_degree=0, verify=1)


# ----------------------------------------------------------------------------------------------- the polynomial

PINNED = Polynomial((Fraction(78), Fraction(3456), Fraction(12)), "T")


def test_pinned_formula_terms_crossovers() -> None:
    """Oracle: arithmetic by hand on 12*T^2 + 3456*T + 78."""
    assert str(PINNED) == "12*T^2 + 3,456*T + 78"
    assert formula(PINNED, unicode=True) == "12·T² + 3,456·T + 78"
    assert PINNED.terms == (Term(12, 2), Term(3456, 1), Term(78, 0))
    assert PINNED.dominant == Term(12, 2)
    # 12*T^2 >= 3456*T from T = 3456/12 = 288; 3456*T >= 78 from T = 1
    assert [(c.higher.power, c.lower.power, c.at) for c in PINNED.crossovers()] == [(2, 1, 288), (1, 0, 1)]
    # 12*288^2 = 995,328 < 3456*288 + 78 = 995,406; 12*289^2 = 1,002,252 >= 3456*289 + 78 = 998,862
    assert PINNED.dominant_from() == 289
    assert PINNED(10) == 12 * 100 + 34_560 + 78
    assert describe(PINNED) == (
        "12*T^2 + 3,456*T + 78: 12*T^2 dominates from T=289; T^2 passes T at T=288, T passes 1 at T=1"
    )


def test_pinned_json_is_exact_and_stable() -> None:
    """Oracle: the fields by hand; integral coefficients are ints, others "p/q"; dumps twice alike."""
    assert PINNED.as_json() == {
        "variable": "T",
        "degree": 2,
        "formula": "12*T^2 + 3,456*T + 78",
        "coefficients": {"2": 12, "1": 3456, "0": 78},
        "dominant": {"power": 2, "coefficient": 12, "from": 289},
        "crossovers": [{"higher": 2, "lower": 1, "at": 288}, {"higher": 1, "lower": 0, "at": 1}],
        "fitted_at": [],
        "verified_at": [],
    }
    half = Polynomial((Fraction(0), Fraction(1, 2), Fraction(1, 2)), "n")
    assert half.as_json()["coefficients"] == {"2": "1/2", "1": "1/2"}
    assert json.dumps(PINNED.as_json()) == json.dumps(PINNED.as_json())


def test_signs_ones_zero() -> None:
    """Oracle: the formulas written by hand."""
    assert str(Polynomial((2, -3, 1), "T")) == "T^2 - 3*T + 2"
    assert str(Polynomial((0, 0, -1), "B")) == "-B^2"
    assert str(Polynomial((Fraction(-3, 2),), "T")) == "-3/2"
    zero = Polynomial((0, 0), "T")
    assert str(zero) == "0" and zero.degree == 0 and zero.terms == () and zero.dominant is None
    assert zero.dominant_from() is None and zero.crossovers() == () and zero(5) == 0
    # T^2 - 3T + 2: T^2 >= 3T from T = 3, 3T >= 2 from T = 1; T^2 >= 3T + 2 first at T = 4 (16 >= 14; 9 < 11)
    signed = Polynomial((2, -3, 1), "T")
    assert [c.at for c in signed.crossovers()] == [3, 1]
    assert signed.dominant_from() == 4
    assert Polynomial((5, 0, 0), "T") == Polynomial((5,), "T")  # trailing zeros dropped


small = st.integers(-500, 500)


@FAST
@given(st.lists(small, min_size=2, max_size=5).filter(lambda cs: cs[-1] != 0))
def test_crossovers_and_dominance_against_a_scan(coefficients: list[int]) -> None:
    """Oracle: a linear scan over n = 1, 2, ... of the defining inequalities, with plain integer arithmetic."""
    p = Polynomial(tuple(Fraction(c) for c in coefficients), "n")
    for crossing in p.crossovers():
        high, low = crossing.higher, crossing.lower

        def reached(n: int, high: Term = high, low: Term = low) -> bool:
            return abs(high.coefficient) * n**high.power >= abs(low.coefficient) * n**low.power

        assert reached(crossing.at) and (crossing.at == 1 or not reached(crossing.at - 1))
    top, rest = p.terms[0], p.terms[1:]

    def dominates(n: int) -> bool:
        return abs(top.coefficient) * n**top.power >= sum(abs(t.coefficient) * n**t.power for t in rest)

    start = p.dominant_from()
    assert start is not None
    scan = next(n for n in range(1, 10**4) if dominates(n))
    assert start == scan


# ----------------------------------------------------------------------------------------------- inputs


def test_parse_varied_positional_keyword_and_dtype() -> None:
    """Oracle: the shapes written with the number in place of the name, read by hand."""
    varied = parse_varied(["1xTx17"], "T")
    assert varied.at(5) == ([InputSpec((1, 5, 17))], {})
    tokens = parse_varied(["input_ids=1xT:int64", "attention_mask=1xT:int64"], "T")
    positional, keywords = tokens.at(128)
    assert positional == [] and keywords == {
        "input_ids": InputSpec((1, 128), torch.int64),
        "attention_mask": InputSpec((1, 128), torch.int64),
    }
    assert parse_varied(["Bx3x32x32"], "B").at(4) == ([InputSpec((4, 3, 32, 32))], {})
    assert parse_varied(["1x3xSxS"], "S").at(7)[0] == [InputSpec((1, 3, 7, 7))]
    # a name holding an x is still read whole
    assert parse_varied(["1xmax_lenx8", "2x3"], "max_len").at(9)[0] == [InputSpec((1, 9, 8)), InputSpec((2, 3))]
    assert str(tokens) == "input_ids=1xT:int64 attention_mask=1xT:int64"


@pytest.mark.parametrize(
    ("texts", "name", "match"),
    [
        (["1x30x17"], "T", "no --input has a dimension named T"),
        ([], "T", "no --input has a dimension named T"),
        (["1xTx17"], "1T", "not a dimension name"),
        (["1xTx17"], "T-1", "not a dimension name"),
        (["1xTx17"], "", "not a dimension name"),
        (["1xSx17"], "T", "dimension 'S' is not a number, and --vary names T"),
        (["1xTxS"], "T", "dimension 'S' is not a number"),
        (["1xT1x3"], "T", "dimension 'T1' is not a number"),
        (["1xTx"], "T", "expected dimensions joined by 'x'"),
        (["1xT:float7"], "T", r"unknown dtype .* \(checked with T=1\)"),
        (["x=1xT", "1xT"], "T", "positional input after one passed by name"),
    ],
)
def test_parse_varied_errors(texts: list[str], name: str, match: str) -> None:
    """Oracle: each input breaks one rule; the error is one line, an InputSpecError (ArchauditError, ValueError)."""
    with pytest.raises(InputSpecError, match=match) as caught:
        parse_varied(texts, name)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def test_at_checks_the_size() -> None:
    """Oracle: inputs.py's bounds: a dimension is at least 1 and at most 2**31 - 1."""
    varied = parse_varied(["1xTx17"], "T")
    with pytest.raises(InputSpecError, match=r"--vary T=0: .*at least 1"):
        varied.at(0)
    with pytest.raises(InputSpecError, match="larger than"):
        varied.at(2**31)
    with pytest.raises(InputSpecError, match="positive integer"):
        varied.at(True)


# ----------------------------------------------------------------------------------------------- real models


def _counts(model: nn.Module, texts: list[str], name: str) -> Callable[[int], dict[str, int]]:
    """Each size's counts as the CLI would gather them: parameters, and every column of audit_macs."""
    varied = parse_varied(texts, name)
    params = audit_params(model).total

    def evaluate(n: int) -> dict[str, int]:
        positional, keywords = varied.at(n)
        return {"parameters": params, **audit_macs(model, positional, keyword_inputs=keywords).counts.as_dict()}

    return evaluate


def test_transformer_layer_macs_are_quadratic_in_t() -> None:
    """Oracle: audit_macs itself at T = 200, a size the fit never saw; and the analytic count by hand:
    per token in_proj 3*16*16 + out_proj 16*16 + linear1 16*32 + linear2 32*16 = 2,048, and per pair of
    tokens Q.K^T 16 + attention.V 16 = 32, so 32*T^2 + 2,048*T; softmax over 2 heads of TxT, 2*T^2."""
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True).eval()
    evaluate = _counts(layer, ["1xTx16"], "T")
    fits = fit_many(evaluate, variable="T")
    assert fits["macs"].degree == 2
    assert fits["macs"](200) == evaluate(200)["macs"]
    assert str(fits["macs"]) == "32*T^2 + 2,048*T"
    assert str(fits["softmax"]) == "2*T^2"
    # parameters: 3*16*16 + 3*16 + 16*16 + 16 + 16*32 + 32 + 32*16 + 16 + 2 LayerNorms of 2*16 = 2,224
    assert fits["parameters"].degree == 0 and fits["parameters"](200) == 2_224
    # 32*T^2 reaches 2,048*T at T = 2048/32 = 64
    assert [c.at for c in fits["macs"].crossovers()] == [64]


def test_linear_stack_is_linear_in_batch() -> None:
    """Oracle: audit_macs at B = 300 (unseen), and by hand: per sample 16*32 + 32*8 = 768 MACs, biases 32 + 8."""
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))
    evaluate = _counts(model, ["Bx16"], "B")
    fits = fit_many(evaluate, variable="B")
    assert fits["macs"].degree == 1 and fits["macs"](300) == evaluate(300)["macs"] == 768 * 300
    assert str(fits["bias"]) == "40*B" and str(fits["activation"]) == "32*B"
    assert str(fits["parameters"]) == "808"  # 16*32 + 32 + 32*8 + 8


def test_strided_conv_macs_are_refused() -> None:
    """Oracle: a stride-2 Conv1d's output length floor((T + 2 - 3)/2) + 1 steps once per two sizes, so its MACs
    (4*8*3 per output position) are not a polynomial in T: the fit refuses and names macs."""
    conv = nn.Conv1d(4, 8, kernel_size=3, stride=2, padding=1)
    evaluate = _counts(conv, ["1x4xT"], "T")
    with pytest.raises(NotPolynomialError, match=r"^macs") as caught:
        fit_many(evaluate, variable="T")
    assert caught.value.values["macs"][0] == 96 * ((121 + 2 - 3) // 2 + 1)  # 4*8*3 MACs at each of 61 outputs
