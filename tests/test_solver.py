"""The solver (archaudit.claims.solver), the families it searches (reference_models.families) and the
efficiency-formula finder (archaudit.claims.efficiency).

Oracles: ``numel()`` of the module each family builds for a configuration (on the meta device); the grid itself
(numpy over ``evaluate_grid``) for counts of matches and for congruences; for the formula finder, the formula
the rows were generated with.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from archaudit import audit_params
from archaudit.claims import parse_figure, solver
from archaudit.claims.efficiency import find_score_formula
from archaudit.claims.figures import Figure
from archaudit.claims.solver import Axis, Component, Family, evaluate_grid, solve
from reference_models.families import FAMILIES


@functools.cache
def family(name: str) -> Family:
    return FAMILIES[name]()


@functools.cache
def grid(name: str) -> np.ndarray:
    """Flat totals of a family's grid, evaluated once per run (the whole AMNL family is the costly one)."""
    return evaluate_grid(family(name)).ravel()


def numel(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------ families agree with numel


@pytest.mark.parametrize("name", sorted(FAMILIES))
@given(data=st.data())
def test_family_count_agrees_with_numel(name, data):
    """Oracle: numel() of the module the family builds. The per-configuration sum ``family.count`` and the
    broadcast grid ``evaluate_grid`` must both equal it."""
    fam = family(name)
    index = data.draw(st.integers(0, fam.size - 1), label="flat index")
    config = fam.config(index)
    with torch.device("meta"):
        built = fam.build(**config)
    expected = numel(built)
    assert audit_params(built).total == expected
    assert fam.count(config) == expected
    assert int(grid(name)[index]) == expected


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_grid_corners_agree_with_numel(name):
    """The first and last configurations (the grid's axis order is where a broadcast bug would show)."""
    fam = family(name)
    for index in (0, fam.size - 1):
        config = fam.config(index)
        with torch.device("meta"):
            assert int(grid(name)[index]) == fam.count(config) == numel(fam.build(**config))


def test_grid_shape_follows_the_axes():
    fam = family("amnl")
    assert evaluate_grid(fam).shape == tuple(len(a.values) for a in fam.axes)
    # 7 kernel sizes x bias x BatchNorm x LayerNorm x 5 funnels ending at 64 = 280
    assert fam.size == 7 * 2 * 2 * 2 * 5 == 280


# ------------------------------------------------------------------------------------ solver behaviour


@given(index=st.integers(0, 279))
def test_a_total_some_configuration_has_is_found(index):
    """Oracle: the grid. A figure equal to a configuration's total is admitted exactly as often as the grid holds
    that total, and the nearest match is that total."""
    totals = grid("amnl")
    total = int(totals[index])
    solved = solve(family("amnl"), parse_figure(f"{total:,}"))
    assert solved.exact == int((totals == total).sum()) >= 1
    assert solved.nearest[0].total == total
    assert solved.argument == ""
    assert family("amnl").count(solved.nearest[0].config) == total


def even_family() -> Family:
    """Every component is even, so every total is: 2a + 10b for a in 1..5, b in 0..2 gives 2, 4, ..., 30."""
    return Family(
        "even", "test family whose components are all even",
        axes=(Axis("a", (1, 2, 3, 4, 5)), Axis("b", (0, 1, 2))),
        components=(Component("twice_a", ("a",), lambda a: 2 * a), Component("ten_b", ("b",), lambda b: 10 * b)),
    )


@given(claimed=st.integers(2, 30))
def test_modular_argument_for_an_odd_claim(claimed):
    """Oracle: parity. Every total of the even family lies in 2..30; an odd claim there has no match and the
    modular argument names parity; an even one has a match."""
    solved = solve(even_family(), parse_figure(str(claimed)))
    if claimed % 2:
        assert solved.exact == 0
        assert solved.argument == f"every configuration's total is even and {claimed:,} is odd"
    else:
        assert solved.exact >= 1 and solved.argument == ""


def test_range_argument_below_the_smallest_and_above_the_largest():
    low = solve(even_family(), parse_figure("1"))
    assert low.exact == 0 and low.smallest == 2  # 2*1 + 10*0
    assert low.argument.startswith("the smallest configuration has 2 parameters, more than 1 allows")
    high = solve(even_family(), parse_figure("100"))
    assert high.exact == 0 and high.largest == 30  # 2*5 + 10*2
    assert high.argument == "the largest configuration has 30 parameters, fewer than 100 needs"


def test_rounded_figure_between_totals():
    """7.5 admits 7.45..7.55; the even family has 6 and 8 there but nothing between."""
    solved = solve(even_family(), parse_figure("7.5"))
    assert solved.exact == 0
    assert "no configuration lands within 7.5's rounding" in solved.argument
    assert solved.nearest[0].total == 8  # |8 - round(7.5)| = |8 - 8| = 0


def test_documented_large_family_cannot_give_3502849():
    """The large AMNL with its stated sizes: the smallest configuration is already 12,028,004 parameters:
    CNN 17*128 + 128*256 + 256*384 = 133,248 (k=1, no bias, no BatchNorm)
    BiLSTM 2*4*(384*384 + 384*384 + 2*384) + 2*2*4*(768*384 + 384*384 + 2*384) = 2,365,440 + 7,090,176 = 9,455,616
    attention 4*768*768 + 4*768 = 2,362,368, its LayerNorm 2*768 = 1,536
    funnel 768*64 + 64 = 49,216; heads 19,201 + 6,819
    133,248 + 9,455,616 + 2,362,368 + 1,536 + 49,216 + 19,201 + 6,819 = 12,028,004."""
    fam = family("amnl")
    solved = solve(fam, parse_figure("3,502,849"))
    assert solved.exact == 0 and solved.configurations == 280
    assert solved.smallest == 12_028_004
    assert solved.argument.startswith(
        "the smallest configuration has 12,028,004 parameters, more than 3,502,849 allows")
    smallest = fam.config(int(np.argmin(grid("amnl"))))
    with torch.device("meta"):
        assert numel(fam.build(**smallest)) == 12_028_004
    assert (smallest["kernel_size"], smallest["conv_bias"], smallest["batchnorm"], smallest["lstm_norm"],
            smallest["funnel"]) == (1, False, False, False, (64,))


def test_whole_family_totals_are_4_mod_16_and_3502849_is_not():
    """The whole AMNL family (millions of configurations; the grid takes ~0.1 s, evaluated once for this module).
    Oracle: the grid. 3,502,849 = 16*218,928 + 1, while every total is 4 mod 16, so no configuration gives it."""
    assert 3_502_849 % 16 == 1
    totals = grid("amnl-wide")
    assert (totals % 16 == 4).all()
    solved = solve(family("amnl-wide"), parse_figure("3,502,849"))
    assert solved.exact == 0 and solved.configurations == totals.size == family("amnl-wide").size
    match = re.search(r"every configuration's total is ≡ (\d+) \(mod (\d+)\), and 3,502,849 ≡ (\d+) \(mod \2\)",
                      solved.argument)
    assert match, solved.argument
    r, g, claimed = (int(x) for x in match.groups())
    assert g % 16 == 0 and r % 16 == 4 and claimed == 3_502_849 % g
    assert ((totals - r) % g == 0).all()  # the stated congruence holds for every total
    assert "every total is even and 3,502,849 is odd" in solved.argument


def test_solver_result_lists_nearest_in_order_of_distance():
    solved = solve(family("amnl"), parse_figure("12,354,276"), nearest=5)
    distances = [abs(m.total - 12_354_276) for m in solved.nearest]
    assert len(distances) == 5 and distances == sorted(distances)
    assert solved.nearest[0].total == 12_354_276  # the reference model's own configuration is in the grid


def _tied_family(values: tuple[int, ...]) -> Family:
    """One axis whose value is its own total: the grid is ``values`` in order."""
    return Family("tied", "one axis", (Axis("v", values),), (Component("v", ("v",), lambda v: v),))


def test_nearest_breaks_ties_by_grid_order():
    # 1000 configurations, 700 of them at distance 0 from the claim: the five reported must be the first five
    # in grid order (flat indices 1, 3, 4, 5, 7), whatever kernel numpy's partition dispatches to.
    values = (5, 0, 3, 0, 0, 0, 2, 0, 0, 0) * 100
    solved = solve(_tied_family(values), parse_figure("0"), nearest=5)
    assert [m.config["v"] for m in solved.nearest] == [0] * 5
    positions = [i for i, v in enumerate(values) if v == 0][:5]
    assert positions == [1, 3, 4, 5, 7]
    assert [m.index for m in solved.nearest] == positions


@given(st.lists(st.integers(0, 6), min_size=1, max_size=300), st.integers(0, 6), st.integers(1, 12))
def test_nearest_is_the_first_k_of_a_total_order(values, claimed, k):
    # Oracle: Python's sort of (distance, grid index), a total order, over the whole grid.
    solved = solve(_tied_family(tuple(values)), parse_figure(str(claimed)), nearest=k)
    expected = sorted(range(len(values)), key=lambda i: (abs(values[i] - claimed), i))[:k]
    assert [m.index for m in solved.nearest] == expected


@st.composite
def _small_families(draw):
    """A family of 0-4 axes of 1-5 values each, and 0-4 components, each a table of integers over a subset of them."""
    axes = tuple(Axis(f"a{i}", tuple(range(draw(st.integers(1, 5))))) for i in range(draw(st.integers(0, 4))))
    components = []
    for c in range(draw(st.integers(0, 4))):
        used = tuple(a.name for a in axes if draw(st.booleans()))
        table = {}
        for values in itertools.product(*(range(len(next(a for a in axes if a.name == n).values)) for n in used)):
            table[values] = draw(st.integers(-50, 10**6))
        count = lambda table=table, used=used, **kw: table[tuple(kw[n] for n in used)]  # noqa: E731
        components.append(Component(f"c{c}", used, count))
    return Family("drawn", "a drawn family", axes, tuple(components))


@given(
    _small_families(),
    st.integers(1, 40),
    st.integers(-60, 10**6),
    st.integers(0, 3),
    st.sampled_from(["exact", "at least", "at most"]),
    st.integers(0, 6),
)
def test_the_solver_in_blocks_finds_what_the_whole_grid_says(fam, block, claimed, tolerance, bound, k):
    """Oracle: ``family.count`` of every configuration in grid order, in plain Python: the matches, the range, the
    nearest k by (distance, index) and the totals' common difference; the solver reads the grid a few totals at a
    time (BLOCK set small, so that blocks split the leading axis and a slice may be larger than a block)."""
    totals = [fam.count(fam.config(i)) for i in range(fam.size)]
    figure = Figure(
        str(claimed), float(claimed), float(tolerance), at_least=bound == "at least", at_most=bound == "at most"
    )
    with mock.patch.object(solver, "BLOCK", block):
        solved = solve(fam, figure, nearest=k)
        blocks = list(np.concatenate([b.copy() for _, b in solver.grid_blocks(fam)]))
    assert blocks == totals == list(evaluate_grid(fam).ravel())
    admitted = [
        t >= claimed if bound == "at least" else t <= claimed if bound == "at most" else abs(t - claimed) <= tolerance
        for t in totals
    ]
    assert solved.exact == sum(admitted)
    assert (solved.smallest, solved.largest) == (min(totals), max(totals))
    expected = sorted(range(fam.size), key=lambda i: (abs(totals[i] - claimed), i))[:k]
    assert [m.index for m in solved.nearest] == expected
    assert [m.total for m in solved.nearest] == [totals[i] for i in expected]
    if solved.exact == 0 and tolerance == 0 and bound == "exact":
        g = functools.reduce(math.gcd, (t - min(totals) for t in totals), 0)
        assert solved.argument.count("mod") == (0 if g <= 2 or (claimed - min(totals)) % g == 0 else 2)


def test_a_family_with_an_empty_axis_or_an_unknown_axis_is_refused_naming_it():
    with pytest.raises(ValueError, match="family 'f': axis 'b' has no values"):
        Family("f", "", (Axis("a", (1,)), Axis("b", ())), ())
    with pytest.raises(ValueError, match="family 'f': component 'c' names no axis 'z'"):
        Family("f", "", (Axis("a", (1,)),), (Component("c", ("z",), lambda z: z),))


def test_the_whole_amnl_family_in_blocks_agrees_with_its_grid():
    """Oracle: numpy over the whole grid at once (``evaluate_grid``), for the claim of document 000 that no
    configuration of the whole family reproduces, and for one within a rounding that many do."""
    flat = grid("amnl-wide")
    for text in ("3,502,849", "3.5 million"):
        figure = parse_figure(text)
        solved = solve(family("amnl-wide"), figure)
        low, high = math.ceil(figure.low), math.floor(figure.high)  # 3,502,849 itself; 3,450,000 to 3,550,000
        assert solved.exact == int(np.count_nonzero((flat >= low) & (flat <= high)))
        distance = np.abs(flat - round(figure.value))
        expected = np.lexsort((np.arange(flat.size), distance))[:5]  # by distance, then grid index
        assert [m.index for m in solved.nearest] == [int(i) for i in expected]
        assert (solved.smallest, solved.largest) == (int(flat.min()), int(flat.max()))
    # every total is 4 mod 32 (the argument the report prints); the grid's own differences say so
    assert int(np.gcd.reduce(flat - flat.min())) == 32 and int(flat.min()) % 32 == 4


# ------------------------------------------------------------------------------------ efficiency formula


DOCUMENT_ROWS = [  # document 000's efficiency table: Params (M), Avg RMSE, printed score
    (3.5, 8.71, "3.23"),  # (20 - 8.71) / 3.5 = 3.2257
    (8.0, 11.20, "1.10"),  # (20 - 11.2) / 8 = 1.1
    (12.0, 15.0, "0.42"),  # (20 - 15) / 12 = 0.41667
    (2.0, 12.50, "3.75"),  # (20 - 12.5) / 2 = 3.75
]


CANDIDATES = [  # the four readings amnl_000.toml tries, in its order
    "(c - rmse) / params",
    "c / (rmse * params)",
    "c / (rmse * rmse * params)",
    "(c - rmse) / (c * params)",
]


def test_finds_the_documents_score_formula():
    formula = find_score_formula(CANDIDATES, [(p, r, parse_figure(s)) for p, r, s in DOCUMENT_ROWS])
    assert formula is not None
    assert formula.text == "(20 - rmse) / params" and formula.constant == 20
    assert formula.score(3.5, 8.71) == pytest.approx(11.29 / 3.5)


def test_no_formula_when_no_candidate_fits():
    """Every candidate is proportional to 1 / params at a fixed RMSE: equal scores at 1M and 2M fit none."""
    rows = [(1.0, 10.0, parse_figure("5.00")), (2.0, 10.0, parse_figure("5.00"))]
    assert find_score_formula(CANDIDATES, rows) is None
    assert find_score_formula(CANDIDATES, []) is None
    assert find_score_formula([], [(p, r, parse_figure(s)) for p, r, s in DOCUMENT_ROWS]) is None


def test_a_candidate_not_affine_in_its_constant_is_fitted():
    """(c - rmse) / (c * params) is 1/params - rmse/(c*params): no straight line in c, so the constant comes
    from the bounded secant steps. Oracle: rows printed from c = 25."""
    rows = [(p, r, parse_figure(f"{(25 - r) / (25 * p):.4f}")) for p, r in [(2.0, 5.0), (4.0, 10.0), (1.0, 20.0)]]
    formula = find_score_formula(["(c - rmse) / (c * params)"], rows)
    assert formula is not None and formula.constant == 25
    assert formula.text == "(25 - rmse) / (25 * params)"


def test_the_formula_is_shown_as_it_is_read():
    """Implicit products and a negative constant: "rmse + 2c" fitted to c = -3 reads "rmse + 2*(-3)", never "2-3"."""
    rows = [(1.0, 10.0, parse_figure("4.00")), (1.0, 8.0, parse_figure("2.00"))]  # 10 + 2 * -3, 8 + 2 * -3
    formula = find_score_formula(["rmse + 2c"], rows)
    assert formula is not None and formula.constant == -3
    assert formula.text == "rmse + 2*(-3)"


def test_a_candidate_with_no_root_gives_up():
    """c * c + params + 10 is never under 10: no constant gives a score of 1, and the search ends (bounded)."""
    assert find_score_formula(["c * c + params + 10"], [(1.0, 1.0, parse_figure("1.00"))]) is None


@st.composite
def headroom_rows(draw):
    """Rows printed from (c - rmse) / params with an integer c, scores rounded to two decimals."""
    c = draw(st.integers(10, 40))
    rows = []
    for _ in range(draw(st.integers(2, 4))):
        params = draw(st.integers(1, 40)) / 2  # 0.5 .. 20.0 M
        rmse = draw(st.integers(100, 100 * c - 100)) / 100  # 1.00 .. c - 1
        score = (c - rmse) / params
        rows.append((params, rmse, parse_figure(f"{score:.2f}")))
    return c, rows


@given(headroom_rows())
def test_finder_recovers_a_generating_formula(case):
    """Oracle: the formula the rows were printed from."""
    c, rows = case
    formula = find_score_formula(CANDIDATES, rows)
    assert formula is not None
    assert formula.text == f"({c} - rmse) / params"
    assert all(score.admits(formula.score(p, r)) for p, r, score in rows)
