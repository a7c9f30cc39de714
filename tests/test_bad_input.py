"""Bad input that used to hang, fool or crash the tool: each ends in one stderr line and exit 2, bounded in time.

Oracle: the CLI's documented contract (exit 2, one line naming the file, line, claim or value at fault), run
through ``archaudit.cli.main``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archaudit.claims import FigureError, parse_figure
from archaudit.claims.figures import _FIGURE, MAX_FIGURE_CHARS
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent
SCALING = """
[document]
id = "scaling"
title = "scaling bounds"
source = "none"
model = "amnl-compact"

[components]
bilstm = ["lstm", "lstm_norm"]
funnel = ["funnel"]

[[claims]]
id = "scale"
where = "a sentence"
printed = "{printed}"
value = "{value}"
kind = "scaling"
component = "{component}"
hyperparameter = "{name}"
from = {start}
to = {end}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_the_figure_pattern_is_linear_in_white_space():
    # Before the fix: "1" + 400 spaces + "!" took 12 s (four `\s*` in a row backtrack polynomially; 2,000 spaces
    # ran past 60 s). The pattern now sees white space folded to single optional spaces: no two quantifiers
    # compete for the same characters, whatever the length bound lets through.
    start = time.perf_counter()
    assert _FIGURE.match("1" + " " * 400 + "!") is None
    assert time.perf_counter() - start < 0.5


TOTAL = """
[document]
id = "total"
title = "one total"
source = "none"
model = "amnl-compact"

[[claims]]
id = "total"
where = "a sentence"
printed = "{printed}"
kind = "total"
"""


def test_a_figure_longer_than_the_bound_is_refused_unread(tmp_path, capsys):
    with pytest.raises(FigureError, match=f"at most {MAX_FIGURE_CHARS}"):
        parse_figure("1" + " " * 2000 + "!")
    path = tmp_path / "long.toml"
    path.write_text(TOTAL.format(printed="1" + " " * 2000 + "!"))
    start = time.perf_counter()
    code, _, err = run(capsys, "claims", str(path))
    line = one_line(err)
    assert code == EXIT_BAD_INPUT and str(path) in line and f"at most {MAX_FIGURE_CHARS}" in line
    assert time.perf_counter() - start < 5


@given(st.text(alphabet=" 0123456789,.~KMB%+-x×<>abotuilnsh\t", max_size=MAX_FIGURE_CHARS))
def test_any_short_text_is_read_or_refused(text):
    try:
        figure = parse_figure(text)
    except FigureError as exc:
        assert "\n" not in str(exc)
    else:
        assert figure.low <= figure.high


@pytest.mark.parametrize(
    ("name", "start", "end", "fragment"),
    [
        ("lstm_layers", 1, 1_000_000, "more than 16x the documented lstm_layers (2)"),  # 16 x 2 = 32 layers at most
        ("lstm_hidden", 128, 10**15, "more than 16x the documented lstm_hidden (128)"),  # 16 x 128 = 2,048
        ("lstm_hidden", 0, 64, "from = 0 must be a positive integer"),
        ("lstm_hidden", 128, '"64"', "to = '64' must be a positive integer"),
        ("lstm_hidden", 128, "true", "to = True must be a positive integer"),
        ("dropout", 1, 2, "documents no integer value for hyperparameter 'dropout'"),
    ],
)
def test_a_scaling_claim_builds_only_what_is_bounded(tmp_path, capsys, name, start, end, fragment):
    # Before the fix: to = 1,000,000 layers never finished (10,000 took 48 s), 10^15 and from = 0 exited 3.
    path = tmp_path / "scaling.toml"
    path.write_text(SCALING.format(printed="halve", value="0.5", component="bilstm", name=name, start=start,
                                   end=end))
    began = time.perf_counter()
    code, _, err = run(capsys, "claims", str(path))
    line = one_line(err)
    assert code == EXIT_BAD_INPUT and fragment in line and f"{path}:" in line and "'scale'" in line
    assert time.perf_counter() - began < 5


def test_a_scaling_claim_on_a_parameterless_component_is_bad_input(tmp_path, capsys):
    # cnn.2 is a ReLU: 0 parameters at every width (before the fix: ZeroDivisionError, exit 3)
    path = tmp_path / "scaling.toml"
    path.write_text(SCALING.replace('funnel = ["funnel"]', 'relu = ["cnn.2"]').format(
        printed="halve", value="0.5", component="relu", name="lstm_hidden", start=128, end=64))
    code, _, err = run(capsys, "claims", str(path))
    line = one_line(err)
    assert code == EXIT_BAD_INPUT and "component 'relu' has no parameters at lstm_hidden = 128" in line


def test_a_bounded_scaling_claim_still_gets_its_verdict(tmp_path, capsys):
    path = tmp_path / "scaling.toml"
    path.write_text(SCALING.format(printed="halve", value="0.5", component="bilstm", name="lstm_hidden",
                                   start=128, end=64))
    code, out, err = run(capsys, "claims", str(path))
    # the shipped claim: halving hidden keeps 28% of the BiLSTM, not 50%
    assert code == 1 and err == "" and "mismatch" in out and "ratio 0.28" in out
    assert main(["claims", str(ROOT / "reference_models" / "claims" / "amnl_001.toml")]) in (EXIT_OK, 1)
