"""Documentation claims: figures, the claims-file loader, every claim kind and verdict, the ``claims`` command,
and the pinned verdicts of the two real documents (reference_models/claims/amnl_000.toml and amnl_001.toml).

Fixtures are in tests/fixtures/claims/. ``compact_verdicts.toml`` holds one claim per (kind, verdict) against the
reference model ``amnl-compact``, whose 960,964 parameters split as
cnn 53,184 = 3*(17*64 + 64*128 + 128*64) + 256 conv bias + 2*256 BatchNorm;
lstm 593,920 = 2*4*(64*128 + 128*128 + 2*128) + 2*4*(256*128 + 128*128 + 2*128) = 198,656 + 395,264;
lstm_norm 512 = 2*256; attention 263,168 = 4*256*256 + 4*256; attention_norm 512;
rul_head 33,025 = 256*128 + 128 + 128*1 + 1; health_head 16,643 = 256*64 + 64 + 64*3 + 3.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from cli_run import run
from hypothesis import given
from hypothesis import strategies as st

from archaudit.claims import (
    ClaimsFileError,
    FigureError,
    Verdict,
    check_document,
    load_claims,
    parse_figure,
)
from archaudit.claims.records import KINDS
from archaudit.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, main

FIXTURES = Path(__file__).parent / "fixtures" / "claims"
BAD = FIXTURES / "bad"
DOCUMENTS = Path(__file__).parents[1] / "reference_models" / "claims"

H, M, C, R, N, X = (Verdict.HOLDS, Verdict.MISMATCH, Verdict.CONTRADICTS, Verdict.NOT_REPRODUCIBLE,
                    Verdict.NOT_CHECKABLE, Verdict.MISSING)
ANY = object()
"""An ``actual`` the table does not pin (see the test named beside it)."""

COMPACT_TOTAL = 960_964


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """1-based number of the ``occurrence``-th line of ``path`` that reads exactly ``text`` (stripped)."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip() == text]
    return hits[occurrence - 1]


def _check_row(audit, claim_id: str, verdict: Verdict, actual, fragments: list[str]) -> None:
    """One pinned row: the verdict, the actual value (approximately, for floats) and evidence fragments."""
    result = audit.result(claim_id)
    assert result.verdict is verdict, result.evidence
    if actual is None or isinstance(actual, str):
        assert result.actual == actual
    elif actual is not ANY:
        assert result.actual == pytest.approx(actual)
    for fragment in fragments:
        assert fragment in result.evidence, (fragment, result.evidence)


@pytest.fixture(scope="module")
def compact():
    return check_document(FIXTURES / "compact_verdicts.toml")


@pytest.fixture(scope="module")
def doc000():
    return check_document(DOCUMENTS / "amnl_000.toml")


@pytest.fixture(scope="module")
def doc001():
    return check_document(DOCUMENTS / "amnl_001.toml")


# ============================================================================================== figures


@pytest.mark.parametrize(
    ("text", "admitted", "refused"),
    [
        ("3.5M", (3_450_000, 3_500_000, 3_550_000), (3_449_000, 3_551_000)),  # 3.5 +- 0.05 M
        ("3.5 million", (3_450_000, 3_550_000), (3_551_000,)),
        ("3.50M", (3_495_000, 3_502_849, 3_505_000), (3_494_000, 3_506_000)),  # 3.50 +- 0.005 M
        ("3,502,849", (3_502_849,), (3_502_848, 3_502_850)),  # thousands separators: an exact count
        ("402K", (401_500, 402_048, 402_500), (401_499, 402_501)),  # 402 +- 0.5 K
        ("~2.36M", (2_355_000, 2_362_368, 2_365_000), (2_354_000, 2_366_000)),  # "~" widens nothing
        ("67.4%", (67.35, 67.4, 67.45), (67.34, 67.46)),
        ("~12-15M", (11_500_000, 12_619_265, 15_500_000), (11_400_000, 15_600_000)),  # each end +- 0.5M
        (">30K", (30_000, 10**9), (29_999,)),  # a lower bound
        ("15+", (15, 100), (14.9,)),  # a lower bound
        ("less than 1%", (0.0, 0.21, 1.0), (1.01,)),  # an upper bound
        ("12", (12,), (11.9, 12.1)),  # a bare integer is exact
        ("~14 MB", (13.5, 14.5), (13.4, 14.6)),
    ],
)
def test_figure_tolerance_follows_its_rounding(text, admitted, refused):
    figure = parse_figure(text)
    for value in admitted:
        assert figure.admits(value), (text, value)
    for value in refused:
        assert not figure.admits(value), (text, value)


def test_figure_fields():
    assert parse_figure("3,502,849").tolerance == 0
    assert parse_figure("3.5M").tolerance == pytest.approx(50_000)
    percent = parse_figure("67.4%")
    assert (percent.unit, percent.value, percent.tolerance) == ("percent", 67.4, pytest.approx(0.05))
    span = parse_figure("~12-15M")
    assert (span.range_low, span.value) == (12_000_000, 15_000_000)
    assert parse_figure(">30K").at_least and parse_figure("15+").at_least
    assert parse_figure("less than 1%").at_most and parse_figure("less than 1%").unit == "percent"
    assert parse_figure("~14 MB").unit == "megabytes" and parse_figure("3.3x").unit == "ratio"


@pytest.mark.parametrize("text", ["three and a half million", "", "-1", "3.5.1M", "M"])
def test_unreadable_figures_are_refused(text):
    with pytest.raises(FigureError, match="cannot read the figure"):
        parse_figure(text)


@given(mantissa=st.integers(1, 999_999), decimals=st.integers(0, 3), scale=st.sampled_from(["", "K", "M"]))
def test_figure_interval_is_half_a_unit_of_the_last_digit(mantissa, decimals, scale):
    """Oracle: Decimal arithmetic on the printed digits. A figure with ``d`` decimals in a scale ``s`` stands
    for value +- 0.5 * 10**-d * s; an integer with no scale is an exact count."""
    number = Decimal(mantissa).scaleb(-decimals)
    text = (f"{number:,}" if decimals == 0 else f"{number}") + scale
    factor = {"": 1, "K": 1_000, "M": 1_000_000}[scale]
    half = Decimal(0) if decimals == 0 and scale == "" else Decimal("0.5").scaleb(-decimals) * factor
    figure = parse_figure(text)
    assert figure.value == pytest.approx(float(number * factor))
    assert figure.low == pytest.approx(float(number * factor - half))
    assert figure.high == pytest.approx(float(number * factor + half))


def test_range_lower_end_has_its_own_rounding():
    assert not parse_figure("1.5-2M").admits(1_200_000)


# ============================================================================================== loader


@pytest.mark.parametrize(
    ("name", "message", "marker"),
    [
        ("malformed", "not valid TOML", 'printed = "3.5M'),  # the unterminated string's own line
        ("unknown_kind", "claim 'bad_kind': unknown kind 'totl'", 'id = "bad_kind"'),
        ("missing_field", "claim 'no_component' (component): needs 'component'", 'id = "no_component"'),
        ("unknown_component", "component 'cnnn' is not in [components]", 'id = "typo_component"'),
        ("bad_figure", "cannot read the figure 'three and a half million'", 'id = "wordy"'),
    ],
)
def test_malformed_claims_files_name_file_and_line(name, message, marker):
    """Through the public entry point: the file is refused before any model is built."""
    path = BAD / f"{name}.toml"
    line = line_of(path, marker)
    with pytest.raises(ClaimsFileError) as caught:
        check_document(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


def test_missing_document_table():
    path = BAD / "no_document.toml"
    with pytest.raises(ClaimsFileError, match=r"no_document\.toml:1: missing \[document\] table"):
        load_claims(path)


def test_duplicate_id_is_refused():
    path = BAD / "duplicate_id.toml"
    with pytest.raises(ClaimsFileError, match="claim id 'first' is used twice") as caught:
        load_claims(path)
    lines = {line_of(path, 'id = "first"', 1), line_of(path, 'id = "first"', 2)}
    assert any(str(caught.value).startswith(f"{path}:{n}: ") for n in lines)


def test_duplicate_id_names_the_repeating_claim():
    path = BAD / "duplicate_id.toml"
    with pytest.raises(ClaimsFileError) as caught:
        load_claims(path)
    second = line_of(path, 'id = "first"', 2)
    assert str(caught.value).startswith(f"{path}:{second}: ")


def test_single_quoted_id_still_has_its_line():
    path = BAD / "single_quoted_id.toml"
    with pytest.raises(ClaimsFileError) as caught:
        load_claims(path)
    line = line_of(path, "id = 'quoted'")
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_claims_file_error_is_a_value_error_and_missing_file():
    with pytest.raises(ValueError, match="no such claims file") as caught:
        load_claims(FIXTURES / "does_not_exist.toml")
    assert isinstance(caught.value, ClaimsFileError)


@pytest.mark.parametrize("path", sorted(DOCUMENTS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_claims_file_loads_with_lines(path):
    """Every claims file in reference_models/claims/ loads, and each claim knows its `id =` line."""
    document = load_claims(path)
    for claim in document.claims:
        assert claim.line == line_of(path, f'id = "{claim.id}"'), claim.id


def test_loaded_claims_keep_their_lines_and_fields():
    path = FIXTURES / "compact_verdicts.toml"
    document = load_claims(path)
    claim = next(c for c in document.claims if c.id == "scaling_mismatch")
    assert claim.line == line_of(path, 'id = "scaling_mismatch"')
    assert claim.printed == "halve" and claim.figure.value == 0.5  # `value` overrides the printed word
    assert claim.get("hyperparameter") == "lstm_hidden" and claim.get("from") == 128
    assert document.components["bilstm"] == ("lstm", "lstm_norm")


# ================================================================================ every kind, every verdict

# (claim id, verdict, actual, fragments the evidence must contain)
COMPACT_TABLE = [
    ("total_holds", H, COMPACT_TOTAL, ["960,964"]),
    ("total_mismatch", M, COMPACT_TOTAL, ["960,964"]),  # 3.5M admits 3,450,000..3,550,000
    ("trainable_holds", H, COMPACT_TOTAL, ["960,964"]),  # ~961K admits 960,500..961,500
    ("component_holds", H, 53_184, ["cnn (53,184) = 53,184"]),
    ("component_mismatch", M, 594_432, ["lstm (593,920) + lstm_norm (512) = 594,432"]),  # 593,920 + 2*256
    ("rul_row", H, 33_025, ["33,025"]),
    ("health_row", M, 16_643, ["16,643"]),  # printed 16,000
    # the model agrees (33,025 + 16,643 = 49,668) but the document's own rows give 33,025 + 16,000 = 49,025
    ("component_contradicts", C, 49_668, ["49,025", "49,668"]),
    ("component_missing", X, None, ["'no_such_module'", "amnl-compact"]),
    ("pct_holds", H, 100 * 53_184 / COMPACT_TOTAL, ["53,184 / 960,964 = 5.53%"]),  # 5.534%
    ("pct_mismatch", M, 100 * 594_432 / COMPACT_TOTAL, ["594,432 / 960,964 = 61.86%"]),  # 61.858%, printed 17.0%
    ("pct_missing", X, None, ["'no_such_module'"]),
    ("sum_holds", H, 22.53, ["= 22.53"]),  # 5.53 + 17.0, inside 22.5% +- 0.05
    ("sum_contradicts", C, 22.53, ["= 22.53"]),  # printed 27.4%
    ("derived_holds", H, 0.960964, ["0.961"]),  # 960,964 / 1e6
    ("derived_contradicts", C, 0.960964, ["0.961"]),  # printed 3.5
    ("candidates_holds", H, ANY, ["= 5.53", "= 17"]),  # 17.0 is the second reading, and the actual value
    ("candidates_contradicts", C, ANY, ["no reading", "= 5.53", "= 17"]),  # neither is 10.0
    ("arith_holds", H, 590_592, ["768 × 768 + 768 = 590,592"]),  # 589,824 + 768
    ("arith_mismatch", M, 590_592, ["= 590,592"]),  # printed 590,000 (exact)
    ("arith_model_holds", H, 263_168, ["= 263,168", "in the model: attention (263,168)"]),  # 4*65,536 + 1,024
    # on paper 198,656 + 395,264 = 593,920 (the arithmetic is right); the model adds the LayerNorm(256): 594,432
    ("arith_model_mismatch", M, 594_432, ["= 593,920", "= 594,432"]),
    ("arith_model_missing", X, None, ["'no_such_module'"]),
    ("formula_holds", H, "holds only when bias=True", ["in × out + out", "bias=True"]),
    ("formula_mismatch", M, "does not hold", ["Linear("]),
    # hidden 64: 2*4*(64*64 + 64*64 + 2*64) + 2*4*(128*64 + 64*64 + 2*64) + LayerNorm(128) = 66,560 + 99,328 + 256
    ("scaling_holds", H, 166_144 / 594_432, ["594,432 -> 166,144", "0.280"]),  # 0.2795, inside 0.28 +- 0.005
    ("scaling_mismatch", M, 166_144 / 594_432, ["594,432 -> 166,144"]),  # "halve": 0.50 +- 0.005
    ("size_holds", H, 3.843856, ["960,964 parameters x 4 B (float32) = 3.84 MB"]),  # 960,964 * 4 / 1e6
    # compared in the figure's own unit: 960,964 * 4 / 1e9 = 0.00384 GB, within 0.004 GB +- 0.0005
    ("size_in_gb", H, 0.003843856, ["= 0.00384 GB"]),
    ("size_int4", H, 0.480482, ["x 0.5 B (int4) = 0.48 MB"]),  # 960,964 * 0.5 / 1e6: two weights a byte
    ("size_mismatch", M, 1.921928, ["= 1.92 MB"]),  # 960,964 * 2 / 1e6, printed 7 MB
    ("size_contradicts", C, 3.843856, ["= 14", "not ~7 MB"]),  # its own figures: 3.5M * 4 / 1e6 = 14 MB
    ("params_a", N, None, ["training and testing"]),
    ("rmse_a", N, None, []),
    ("params_b", N, None, []),
    ("rmse_b", N, None, []),
    ("params_c", N, None, []),
    ("rmse_c", N, None, []),
    ("score_formula_holds", H, "(20 - rmse) / params", ["3.226 for 3.23", "1.1 for 1.10", "3.75 for 3.75"]),
    # with the audited 960,964: (20 - 8.71) / 0.960964 = 11.749; printed 3.23 = (20 - 8.71) / 3.5
    ("score_mismatch", M, (20 - 8.71) / 0.960964, ["960,964", "= 11.75", "3.226"]),
    ("score_holds", H, 1.1, ["gives 1.1"]),  # (20 - 11.2) / 8
    ("score_c", H, 3.75, ["gives 3.75"]),  # (20 - 12.5) / 2
    ("score_contradicts", C, 3.75, ["gives 3.75"]),  # printed 3.95
    ("ranking_holds", H, "model C", ["model A: 3.23", "model B: 1.1", "model C: 3.75"]),
    ("ranking_contradicts", C, "model C", ["model A: 3.23", "model C: 3.75"]),  # labelled A, but 3.75 > 3.23
    ("ranking_second_holds", H, "model A", ["model A is number 2 by largest"]),  # 3.75, then 3.23, then 1.1
    # printed, 3.5M leads ~2M; audited, 960,964 trails it
    ("ranking_audited_mismatch", M, "smaller model", ["audited: ours: 960,964; smaller model: 2,000,000 (1 as printed"]),
    ("smaller_model", N, None, []),
    ("between_holds", H, 1.1, ["in order"]),  # 1.10 < 3.75 - 0.005
    ("between_contradicts", C, 3.75, ["3.75 is not below 1.10"]),
    ("between_audited_mismatch", M, COMPACT_TOTAL, ["the audited 960,964 (for 3.5M) is not above ~2M"]),  # < 1.5M
    ("baseline_holds", H, 12_619_265, ["12,619,265"]),  # 4*3,152,384 + 9,216 + 513 (test_reference_models)
    ("baseline_mismatch", M, 45_372, ["45,372"]),  # dcnn's largest window (FD001/FD003), printed ~2M
    ("baseline_not_checkable", N, None, ["dkamformer"]),
    ("reported_published_holds", H, 22.36, ["published: 22.36"]),  # inside 22.4 +- 0.05
    ("reported_published_mismatch", M, 22.36, ["published: 22.36"]),  # printed 12.47
    ("fd002", N, None, []),
    ("fd004", N, None, []),
    ("reported_contradicts", C, None, ["(6.74 + 8.16) / 2 = 7.45", "not 8.71"]),
    ("count_type_holds", H, 3, ["3 Conv1d module(s) under cnn"]),
    ("count_type_mismatch", M, 2, ["2 Linear module(s) under rul_head"]),  # Linear(256, 128), Linear(128, 1)
    ("attribute_holds", H, 128, ["lstm.hidden_size = 128"]),
    ("attribute_mismatch", M, 2, ["lstm.num_layers = 2"]),
    ("attribute_no_module", X, None, ["'transformer'"]),
    ("attribute_no_attribute", X, None, ["'depth'"]),
    # amnl-compact at 1x30x17: 27,641,792 MACs (FlopCounterMode on meta / 2), bias adds 161,476
    ("flops_holds", H, 55_283_584, ["FLOPs (2 x MACs) at input 1x30x17: 55,283,584"]),  # 2 x 27,641,792
    ("flops_printed_as_macs", M, 55_283_584, ["the printed figure is MACs at input 1x30x17, not FLOPs"]),
    ("macs_holds", H, 27_641_792, ["MACs at input 1x30x17: 27,641,792"]),
    ("macs_with_bias_adds", M, 27_641_792, ["the printed figure is MACs with bias adds"]),  # 27,641,792 + 161,476
    # batch 2 doubles the MACs (2 x 27,641,792): the 27.6M printed for batch 1 is no convention's figure at batch 2
    ("macs_at_another_input", M, 55_283_584, ["no convention gives it at input 2x30x17", "MACs 55,283,584"]),
    ("frozen_holds", H, 0, ["requires_grad=False"]),
    ("shared_holds", H, 0, ["no tensor is held at two places"]),
    ("count_holds", H, 3, ["modules of type Conv1d: 3 (cnn.0, cnn.3, cnn.6)"]),
    ("count_mismatch", M, 1, ["modules of type LSTM: 1 (lstm)"]),
    # 960,964 less what non-leaf modules hold: MultiheadAttention's in_proj (3*256*256 + 3*256 = 197,376)
    ("leaf_only_holds", H, 763_588, ["missing 197,376 held by modules with children"]),
    # all_hold.toml's total is 960,964 (exact) on the same model: the same figure agrees; 961K (960,500 to 961,500)
    # admits 960,964 too, so a contradiction needs a figure outside it: 961K would hold, hence "962K" below
    ("cross_holds", H, 960_964, ["fixture-all-hold prints '960,964'", "which agrees with '960,964'"]),
    ("cross_contradicts", C, 960_964, ["this document prints '962K'"]),
]


@pytest.mark.parametrize(("claim_id", "verdict", "actual", "fragments"), COMPACT_TABLE,
                         ids=[r[0] for r in COMPACT_TABLE])
def test_compact_fixture_verdicts(compact, claim_id, verdict, actual, fragments):
    _check_row(compact, claim_id, verdict, actual, fragments)


def test_compact_fixture_is_fully_pinned(compact):
    """Every claim of the fixture is in the table, every kind is exercised, and so is every verdict but *not
    reproducible* (which needs a solver family: test_solver_verdicts)."""
    assert [r.claim.id for r in compact.results] == [row[0] for row in COMPACT_TABLE]
    assert {r.claim.kind for r in compact.results} == set(KINDS) - {"throughput"}  # throughput: its own fixture
    assert set(compact.counts()) == {v.value for v in Verdict}
    assert compact.counts() == {v.value: n for v, n in Counter(row[1] for row in COMPACT_TABLE).items()} | {
        R.value: 0}
    assert {r.verdict for r in compact.results} == set(Verdict) - {R}


def test_differences_are_actual_minus_claimed(compact):
    assert compact.result("total_mismatch").difference == COMPACT_TOTAL - 3_500_000  # -2,539,036
    assert compact.result("arith_mismatch").difference == 592  # 590,592 - 590,000
    assert compact.result("component_mismatch").difference == 512  # 594,432 - 593,920
    assert compact.result("attribute_mismatch").difference == -1  # 2 layers, printed 3


def test_formula_counterexample_shows_both_counts(compact):
    """The counterexample is a Linear(in, out) whose numel() is in*out + out and where the formula gives one more."""
    evidence = compact.result("formula_mismatch").evidence
    match = re.search(r"Linear\((\d+), (\d+), bias=True\) has ([\d,]+) parameters, the formula gives ([\d,]+)",
                      evidence)
    assert match, evidence
    a, b, has, gives = (int(g.replace(",", "")) for g in match.groups())
    assert has == a * b + b and gives == has + 1


def test_a_holding_candidate_reports_the_matching_reading(compact):
    result = compact.result("candidates_holds")
    assert result.verdict is H and result.claim.figure.admits(result.actual)


def test_holds_and_mismatch_agree_with_the_figure(compact, doc000, doc001):
    """For every claim whose actual value was compared with its figure: *holds* means the figure admits it and
    *mismatch* that it does not (a holding candidate claim reports the reading that matched)."""
    for audit in (compact, doc000, doc001):
        for r in audit.results:
            if r.claim.figure is None or not isinstance(r.actual, (int, float)):
                continue
            if r.verdict is H:
                assert r.claim.figure.admits(r.actual), (audit.document.path, r.claim.id, r.actual)
            elif r.verdict is M:
                assert not r.claim.figure.admits(r.actual), (audit.document.path, r.claim.id, r.actual)


# ---------------------------------------------------------------------------------------------- solver verdicts


def test_solver_verdicts():
    """Against the large AMNL (12,354,276 parameters) with its documented family (280 configurations)."""
    audit = check_document(FIXTURES / "amnl_solver.toml")
    reachable = audit.result("total_reachable")
    # 12,028,004 is the smallest configuration (test_solver.test_documented_large_family_cannot_give_3502849)
    assert reachable.verdict is M and reachable.actual == 12_354_276
    assert reachable.solver.exact == 1 and reachable.solver.nearest[0].total == 12_028_004
    assert "1 of 280 configurations" in reachable.evidence and "(12,028,004)" in reachable.evidence
    assert "kernel_size=1, conv_bias=False, batchnorm=False, lstm_norm=False, funnel=(64,)" in reachable.evidence
    unreachable = audit.result("trainable_unreachable")
    assert unreachable.verdict is R and unreachable.solver.exact == 0
    assert "the smallest configuration has 12,028,004 parameters, more than 3,502,849 allows" in unreachable.evidence
    assert audit.result("total_holds").verdict is H and audit.result("total_holds").solver is None


def test_score_formula_not_reproducible_leaves_scores_unchecked():
    audit = check_document(FIXTURES / "scores_unfit.toml")
    assert audit.result("score_formula_unfit").verdict is R
    assert audit.result("score_formula_unfit").evidence == (
        "none of the 2 candidate formulas reproduces every printed score"
    )
    for claim_id in ("score_a", "score_b"):
        assert audit.result(claim_id).verdict is N
        assert "no score formula" in audit.result(claim_id).evidence


@pytest.mark.parametrize(
    ("throughput", "verdict", "fragment"),
    [
        (None, N, "no measurement on this machine"),
        ({"samples_per_s": 45_000.0, "hardware": "test rig"}, H, "measured 45,000 samples/s on test rig"),
        ({"samples_per_s": 20_000.0, "hardware": "test rig"}, M, "measured 20,000 samples/s on test rig"),
    ],
)
def test_throughput_with_and_without_a_measurement(throughput, verdict, fragment):
    result = check_document(FIXTURES / "throughput.toml", throughput=throughput).result("speed")
    assert result.verdict is verdict and fragment in result.evidence
    assert result.actual == (None if throughput is None else throughput["samples_per_s"])


def test_a_missing_module_is_a_failing_verdict_not_a_skip(compact):
    missing = [r for r in compact.results if r.verdict is X]
    assert {r.claim.id for r in missing} == {"component_missing", "pct_missing", "arith_model_missing",
                                              "attribute_no_module", "attribute_no_attribute"}
    assert all(r.verdict.fails for r in missing)
    assert len(compact.results) == len(load_claims(FIXTURES / "compact_verdicts.toml").claims)


def test_scaling_a_missing_module_is_no_such_module():
    result = check_document(FIXTURES / "scaling_missing_module.toml").result("scaling_ghost")
    assert result.verdict is X


@pytest.mark.parametrize(
    ("name", "claim_id"),
    [
        ("unknown_dtype", "fp8_size"),
        ("unknown_layer", "gru_formula"),
        ("ranking_unknown_id", "best"),
        ("implied_unknown_name", "implied_typo"),
        ("unknown_hyperparameter", "scale_typo"),
    ],
)
def test_claims_file_mistakes_are_bad_input_with_file_and_line(capsys, name, claim_id):
    path = BAD / f"{name}.toml"
    code = main(["claims", str(path)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    line = line_of(path, f'id = "{claim_id}"')
    assert err.startswith(f"archaudit: {path}:{line}: ")


# ============================================================================================== CLI




def test_cli_exit_0_when_every_claim_holds(capsys):
    path = FIXTURES / "all_hold.toml"
    code, out, err = run(capsys, "claims", str(path), "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    data = json.loads(out)
    assert [c["id"] for c in data["claims"]] == ["total", "cnn", "cnn_share", "mha_projection", "hidden", "speed"]
    for claim in data["claims"]:
        assert {"id", "claimed", "actual", "verdict", "evidence"} <= set(claim)
    by_id = {c["id"]: c for c in data["claims"]}
    assert by_id["total"] == {**by_id["total"], "claimed": "960,964", "actual": COMPACT_TOTAL, "verdict": "holds"}
    assert by_id["speed"]["verdict"] == "not checkable here" and by_id["speed"]["actual"] is None  # fails nothing
    code, out, _ = run(capsys, "claims", str(path))
    assert code == EXIT_OK and "holds" in out and "960,964" in out


def test_cli_exit_1_when_a_claim_fails(capsys):
    code, out, err = run(capsys, "claims", str(FIXTURES / "amnl_solver.toml"), "--format", "json")
    assert (code, err) == (EXIT_CHECK_FAILED, "")
    data = json.loads(out)
    by_id = {c["id"]: c for c in data["claims"]}
    assert by_id["trainable_unreachable"]["verdict"] == "not reproducible"
    assert by_id["trainable_unreachable"]["claimed"] == "3,502,849"
    assert by_id["trainable_unreachable"]["actual"] == 12_354_276
    assert by_id["trainable_unreachable"]["solver"]["exact"] == 0
    assert by_id["total_reachable"]["solver"]["nearest"][0]["total"] == 12_028_004
    assert data["counts"]["not reproducible"] == 1 and data["counts"]["mismatch"] == 1


FAILS = {
    Verdict.HOLDS: False,
    Verdict.MISMATCH: True,
    Verdict.CONTRADICTS: True,
    Verdict.NOT_REPRODUCIBLE: True,
    Verdict.NOT_CHECKABLE: False,  # a training result, an unpublished architecture: fails nothing
    Verdict.MISSING: True,
}
"""Which verdicts fail a claims file (README, "What claims reports"), all six spelled out."""


def test_the_failing_verdicts_table_names_every_verdict():
    assert set(FAILS) == set(Verdict) and len(Verdict) == 6


@pytest.mark.parametrize(("verdict", "fails"), FAILS.items(), ids=[v.name for v in FAILS])
def test_which_verdicts_fail(verdict, fails):
    assert verdict.fails is fails


_ONE_DERIVED_CLAIM = """\
[document]
id = "fixture-contradiction"
title = "Fixture: one figure derived from another"
source = "tests/test_claims.py"
model = "amnl-compact"

[[claims]]
id = "mha_projection"
where = "fixture"
printed = "590,592"
kind = "arithmetic"
expression = "768 × 768 + 768"

[[claims]]
id = "in_millions"
where = "fixture"
printed = "{printed}"
kind = "derived"
expression = "mha_projection / 1e6"
"""


def test_cli_exit_1_when_the_only_failing_claim_contradicts_the_document(tmp_path, capsys):
    """The same file twice: the derived figure printed as 0.59 holds (590,592 / 1e6 = 0.590592, inside
    0.59 +- 0.005) and the command exits 0; printed as 0.7 (0.65..0.75) the document contradicts itself, that
    is the file's only failure, and the command exits 1."""
    verdicts = {}
    for printed, expected_code in (("0.59", EXIT_OK), ("0.7", EXIT_CHECK_FAILED)):
        path = tmp_path / f"derived_{printed}.toml"
        path.write_text(_ONE_DERIVED_CLAIM.format(printed=printed), encoding="utf-8")
        code, out, err = run(capsys, "claims", str(path), "--format", "json")
        assert (code, err) == (expected_code, ""), f"printed {printed}"
        verdicts[printed] = {c["id"]: c["verdict"] for c in json.loads(out)["claims"]}
    assert verdicts["0.59"] == {"mha_projection": "holds", "in_millions": "holds"}
    assert verdicts["0.7"] == {"mha_projection": "holds", "in_millions": "contradicts the document"}
    code, out, _ = run(capsys, "claims", str(tmp_path / "derived_0.7.toml"))  # Markdown: the same exit code
    assert code == EXIT_CHECK_FAILED and "contradicts the document" in out


def test_cli_exit_2_for_a_malformed_file(capsys):
    path = BAD / "malformed.toml"
    code, out, err = run(capsys, "claims", str(path))
    assert code == EXIT_BAD_INPUT and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    line = line_of(path, 'printed = "3.5M')
    assert err.startswith(f"archaudit: {path}:{line}: not valid TOML")


# ============================================================================================== the real documents

DOC000 = [
    ("insight_total", R, 12_354_276, ["the smallest configuration has 12,028,004 parameters"]),
    ("overview_cnn_layers", H, 3, ["3 Conv1d"]),
    ("mha_query", H, 590_592, ["768 × 768 + 768 = 590,592"]),
    ("mha_table_total", H, 2_362_368, ["4 × 590,592 = 2,362,368", "attention (2,362,368)"]),
    ("heads_rul", M, 19_201, ["19,201"]),  # 8,320 + 8,256 + 2,080 + 528 + 17 (64→128→64→32→16→1); ~13.5K
    ("heads_health", M, 6_819, ["6,819"]),  # 4,160 + 2,080 + 528 + 51 (64→64→32→16→3), printed ~6.3K
    ("dist_cnn", H, 402_048, ["402,048"]),  # 3*(17*128 + 128*256 + 256*384) + 768 bias + 2*768 BN
    # 2*4*(384*384 + 384*384 + 2*384) + 2*2*4*(768*384 + 384*384 + 2*384) = 2,365,440 + 7,090,176
    ("dist_bilstm", M, 9_455_616, ["lstm (9,455,616)"]),
    # the model's attention is 4*768*768 + 4*768 = 2,362,368; 591K contradicts the document's own ~2.36M
    ("dist_attention", C, 2_362_368, ["2,360,000, not 591K"]),
    ("dist_layernorm", H, 1_536, ["1,536"]),  # 2*768
    ("dist_fc_heads", M, 132_708, ["funnel (106,688)", "132,708"]),  # 768*128+128 + 128*64+64 = 106,688; + 26,020
    ("dist_total_pct", H, 100.04, ["= 100"]),  # 11.5 + 67.4 + 16.9 + 0.04 + 4.2 = 100.04
    # transformer-rul's depth was chosen to land in this row's range: it holds by construction, and says so
    ("cmp_transformer_params", H, 12_619_265, ["holds by construction", "12,619,265"]),
    # a leaf-only counter sees out_proj alone in MultiheadAttention: 768*768 + 768 = 590,592, the row's 591K
    ("dist_attention_leaf_only", H, 590_592, ["for attention (attention): 590,592"]),
    ("cmp_dcnn_params", M, 45_372, ["45,372"]),
    ("cmp_dcnn_fd002", M, 22.36, ["published: 22.36"]),  # printed 12.47
    ("cmp_dkamformer_params", N, None, ["dkamformer"]),
    ("eff_amnl_rmse", C, 7.45, ["(6.74 + 8.16) / 2 = 7.45"]),  # printed 8.71
    ("eff_formula", H, "(20 - rmse) / params", ["3.226 for 3.23", "0.4167 for 0.42"]),
    # (20 - 8.71) / 12.354276 = 0.9139 with the audited count; printed 3.23 = (20 - 8.71) / 3.5
    ("eff_amnl_score", M, 11.29 / 12.354276, ["12,354,276", "= 0.9139"]),
    ("eff_amnl_best", C, "DCNN", ["AMNL: 3.23", "DCNN: 3.75"]),  # labelled best, but 3.75 > 3.23
    # printed, 3.5M sits between ~2M/~1.5M and ~8M/~12-15M; the audited 12,354,276 is past ~8M's 7.5M and
    # ~12-15M's 11.5M (DCNN's audited 45,372 stays below): the sweet spot moves with the total
    ("cmp_sweet_spot", M, 12_354_276, ["in order as printed", "not below ~8M, not below ~12-15M", "45,372"]),
    ("insight_smaller_than_transformers", M, 12_354_276, ["not below ~12-15M"]),  # 12,354,276 > 11,500,000
    ("cmp_amnl_best_fd002", H, "AMNL", ["AMNL: 6.74"]),  # 6.74 < 10.70, 15, 12.47, 15.02
    ("summary_efficiency_ratio", C, 3.23 / 1.10, ["no reading", "3.23 / 1.10 = 2.936"]),  # printed 3.3x
    ("output_trainable", R, 12_354_276, ["more than 3,502,849 allows", "3,502,849 is odd", "amnl (whole family)"]),
]

DOC001 = [
    ("title_total", M, COMPACT_TOTAL, ["960,964"]),  # printed 3.5M; no family is searched for this document
    ("rul_linear1", H, 32_896, ["256 × 128 + 128 = 32,896", "rul_head.0 (32,896)"]),
    ("heads_combined", H, 49_668, ["49,668"]),  # 33,025 + 16,643
    # amnl-compact's LSTM widths and norm were fixed by this row (ReferenceModel.fitted_to): holds by construction
    ("breakdown_bilstm", H, 594_432, ["holds by construction", "lstm (593,920) + lstm_norm (512) = 594,432"]),
    ("breakdown_attention", H, 263_680, ["attention (263,168) + attention_norm (512) = 263,680"]),
    # 53,184 + 594,432 + 263,680 + 33,025 + 16,643 = 960,964, the document's own subtotal and the model's total
    ("breakdown_subtotal", H, COMPACT_TOTAL, ["= 960,964"]),
    # 27.4 is the sum of the rounded rows (1.5 + 17.0 + 7.5 + 0.9 + 0.5 = 27.4: no contradiction); against the model
    # the table describes, its explicit parts are all of it: 960,964 / 960,964 = 100%
    ("breakdown_subtotal_pct", M, 100.0, ["960,964 / 960,964 = 100.00%", "sum of the rounded rows"]),
    # the document's own leaf-only count_parameters on the model: 960,964 less in_proj (3*256*256 + 3*256 = 197,376)
    ("utility_subtotal", M, 763_588, ["763,588, missing 197,376 held by modules with children"]),
    ("additional_total", N, None, ["EMA weights are a running average"]),
    # BiLSTM 594,432 is the largest of the table's rows (53,184, 594,432, 263,680, 33,025, 16,643)
    ("bilstm_heaviest", H, "BiLSTM", ["BiLSTM: 594,432"]),
    # 263,680 after 594,432: attention second, in the table and in the model (3 rows were fitted: as printed)
    ("attention_second", H, "Attention", ["number 2 by largest", "Attention: 263,680", "3 as printed"]),
    # against document 000: its count_parameters prints 3,502,849 where this one's "Result" prints 3,500,000
    ("quick_total_vs_000", C, 3_502_849, ["amnl-000 prints '3,502,849'", "this document prints '3,500,000'"]),
    # the same 3.5M for amnl (12,354,276) and for amnl-compact (960,964)
    ("title_total_vs_000", C, 3_500_000, ["for amnl (12,354,276 parameters)", "amnl-compact (960,964)"]),
    ("chart_bilstm", C, 100 * 594_432 / COMPACT_TOTAL, ["17.0% = 17, not 59%"]),
    ("chart_attention", C, 100 * 263_680 / COMPACT_TOTAL, ["7.5% = 7.5, not 22%"]),
    ("chart_heads", C, 100 * 49_668 / COMPACT_TOTAL, ["1.4% = 1.4, not 13%"]),
    ("chart_cnn", C, 100 * 53_184 / COMPACT_TOTAL, ["1.5% = 1.5, not 6%"]),
    # lstm_hidden 128 -> 64: 594,432 -> 166,144 (see the fixture table), 0.2795, not "halve" (0.50)
    ("scaling_hidden", M, 166_144 / 594_432, ["594,432 -> 166,144"]),
    ("metric_size_fp32", M, 3.843856, ["3.84 MB"]),  # 960,964 * 4 / 1e6; printed ~14 MB = 3.5M * 4 B
    ("metric_throughput", N, None, ["no measurement"]),
    ("formula_linear", H, "holds only when bias=True", []),
    ("formula_batchnorm", H, "holds only when affine=True", []),
    ("formula_mha", H, "holds only when bias=True, kdim=vdim=d, add_bias_kv=False", []),
]


@pytest.mark.parametrize(("claim_id", "verdict", "actual", "fragments"), DOC000, ids=[r[0] for r in DOC000])
def test_amnl_000_pinned_verdicts(doc000, claim_id, verdict, actual, fragments):
    _check_row(doc000, claim_id, verdict, actual, fragments)


@pytest.mark.parametrize(("claim_id", "verdict", "actual", "fragments"), DOC001, ids=[r[0] for r in DOC001])
def test_amnl_001_pinned_verdicts(doc001, claim_id, verdict, actual, fragments):
    _check_row(doc001, claim_id, verdict, actual, fragments)



def test_amnl_000_verdict_counts(doc000):
    assert len(doc000.results) == 70
    assert doc000.counts() == {"no such module": 0, "contradicts the document": 7, "not reproducible": 6,
                               "mismatch": 21, "not checkable here": 8, "holds": 28}


def test_amnl_001_verdict_counts(doc001):
    assert len(doc001.results) == 50
    assert doc001.counts() == {"no such module": 0, "contradicts the document": 9, "not reproducible": 0,
                               "mismatch": 15, "not checkable here": 2, "holds": 24}
