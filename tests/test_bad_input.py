"""Bad input that used to hang, fool or crash the tool: each ends in one stderr line and exit 2, bounded in time.

Oracle: the CLI's documented contract (exit 2, one line naming the file, line, claim or value at fault), run
through ``archaudit.cli.main``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cli_run import one_line, run
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


USER_CODE = '''
import sys
import torch
from torch import nn


class Self(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.me = self  # the module contains itself


class ExitsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        sys.exit(0)


class Prints(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        print("hello from forward")
        return self.fc(x)


class Custom(BaseException):
    pass


def selfish():
    return Self()


def linear():
    return nn.Linear(17, 4)


def exits():
    sys.exit(0)


def exits_with_message():
    sys.exit("bye")


def exits_3():
    sys.exit(3)


def custom():
    raise Custom("not an Exception")


def exits_in_forward():
    return ExitsInForward()


def prints():
    print("hello from build")
    return Prints()


def argv():
    return nn.Linear(len(sys.argv), 2)
'''


@pytest.fixture()
def user(tmp_path):
    path = tmp_path / "user.py"
    path.write_text(USER_CODE)
    return lambda name: f"{path}:{name}"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("params", "selfish"), "module path 'me' is '(root)' itself"),  # before: RecursionError, exit 3
        (("params", "exits"), "calling it raised SystemExit(0)"),  # before: exit 0 and no output
        (("params", "exits_with_message"), "SystemExit('bye')"),  # before: exit 1
        (("params", "exits_3"), "SystemExit(3)"),  # before: exit 3
        (("params", "custom"), "calling it raised Custom: not an Exception"),  # before: a traceback
        (("flops", "exits_in_forward", "--input", "1x4"), "failed in module '(root)' (ExitsInForward): SystemExit"),
        (("flops", "linear", "--input", "1x17:int64"), "has float32 weights and got an input of dtype int64"),
        (("flops", "linear", "--input", "1x17:float16"), "got an input of dtype float16"),  # before: MACs on meta
        (("flops", "linear", "--input", f"1x{2**63}"), "a dimension is larger than 2,147,483,647"),  # before: exit 3
        (("flops", "linear", "--input", "1x" + "9" * 5000), "a shape has at most 200"),  # before: exit 3
        (("flops", "linear", "--input", "1x17x1x1x1x1x1x1x1"), "at most 8"),
    ],
)
def test_user_code_and_shapes_end_in_one_line_and_exit_2(user, capsys, argv, fragment):
    command, target, *rest = argv
    code, out, err = run(capsys, command, user(target), *rest)
    assert code == EXIT_BAD_INPUT and out == ""
    assert fragment in one_line(err)


def test_user_code_prints_to_stderr_and_json_stays_valid(user, capsys):
    # before: "hello from build" and "hello from forward" went into the JSON on standard output
    code, out, err = run(capsys, "flops", user("prints"), "--input", "1x4", "--format", "json")
    assert code == EXIT_OK and json.loads(out)["macs"] == 4 * 4  # Linear(4, 4) on one sample
    assert "hello from build" in err and "hello from forward" in err


def test_user_code_does_not_see_archaudits_arguments(user, capsys):
    # the builder reads sys.argv: it sees [TARGET], one element, not archaudit's five
    code, out, _ = run(capsys, "params", user("argv"), "--format", "json", "--meta")
    assert code == EXIT_OK and json.loads(out)["total"] == 1 * 2 + 2  # Linear(1, 2)


@pytest.mark.parametrize("repeats", ["0", "-1", "x", "1" * 30])
def test_bench_repeats_must_be_positive(capsys, repeats):
    code, _, err = run(capsys, "bench", "amnl", "--repeats", repeats)
    assert code == EXIT_BAD_INPUT and "--repeats" in one_line(err)


def test_reports_into_a_file_is_refused_before_any_work(tmp_path, capsys):
    target = tmp_path / "hostname"
    target.write_text("x")
    began = time.perf_counter()
    code, _, err = run(capsys, "reports", str(target))
    assert code == EXIT_BAD_INPUT and "is not a directory" in one_line(err)
    assert time.perf_counter() - began < 2  # before: 10 s of regeneration first
    assert target.read_text() == "x"


def test_output_paths(tmp_path, capsys):
    report = ("report", "dcnn", "--no-compare", "--format", "json")
    # a directory, a device node and an empty path are refused, and nothing is replaced
    for output, fragment in ((str(tmp_path), "is a directory"), ("/dev/null", "is not a regular file"),
                             ("", "the path is empty")):
        code, out, err = run(capsys, *report, "--output", output)
        assert code == EXIT_BAD_INPUT and out == "" and fragment in one_line(err), output
    assert Path("/dev/null").is_char_device()
    # a symbolic link is written through: the link stays a link, its target gets the report
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert run(capsys, *report, "--output", str(link))[0] == EXIT_OK
    assert link.is_symlink() and json.loads(real.read_text())["name"] == "dcnn"
    # an unwritable directory: the path is named, exit 2, nothing left behind
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: make the parent a file instead
            target = tmp_path / "real.json" / "under-a-file.json"
        else:
            target = locked / "r.json"
        code, _, err = run(capsys, *report, "--output", str(target))
        assert code == EXIT_BAD_INPUT and str(target) in one_line(err) and "cannot be written" in err
    finally:
        locked.chmod(0o700)


FORGED = """
[document]
id = "forged"
title = "Forged\\n# Heading | <script>x</script>"
source = "none"
model = "amnl-compact"

[[claims]]
id = "total"
where = "x | 3.5M | **holds** | forged |\\n| another | row |"
printed = "3.5M"
kind = "total"
"""


def test_a_claims_file_cannot_forge_a_row_or_markup(tmp_path, capsys):
    path = tmp_path / "forged.toml"
    path.write_text(FORGED)
    code, out, err = run(capsys, "claims", str(path))
    assert code == 1 and err == ""  # 960,964 is not 3.5M: the claim fails
    rows = [line for line in out.splitlines() if line.startswith("| total")]
    assert len(rows) == 1 and rows[0].count(" | ") == 5  # six cells: no cell was added
    assert "**holds**" not in out and "<script>" not in out and "&lt;script&gt;" in out
    assert "| another | row |" not in out
    assert not any(line.startswith("# Heading") for line in out.splitlines())


def test_the_cpu_tools_are_not_run_on_inputs_too_large_to_allocate(capsys):
    # 2,147,483,647 x 17 float32 inputs are 146 GB: the CPU tools are skipped, saying why (before: it tried)
    code, out, err = run(capsys, "flops", "amnl", "--input", "2147483647x30x17", "--compare", "--format", "json")
    assert code == EXIT_OK, err
    data = json.loads(out)
    assert "skipped for inputs of" in data["tool_errors"]["fvcore"]


@pytest.mark.parametrize(
    ("kind_keys", "fragment"),
    [
        ('kind = "arithmetic"\nexpression = "ghost + 1"', "unknown name 'ghost'"),
        ('kind = "derived"\nexpression = "ghost + 1"', "ghost"),
        ('kind = "derived"\nexpression = "__import__(1)"', ""),
        ('kind = "ranking"\nlabel = "total"\namong = ["total", "ghost"]', "'ghost'"),
    ],
)
def test_an_expression_error_names_the_file_line_and_claim(tmp_path, capsys, kind_keys, fragment):
    # before: "archaudit: unknown name 'ghost' in 'ghost + 1'", naming neither the file nor the claim
    path = tmp_path / "expr.toml"
    body = TOTAL.format(printed="960,964") + f'''
[[claims]]
id = "bad"
where = "a sentence"
printed = "2"
{kind_keys}
'''
    path.write_text(body)
    code, _, err = run(capsys, "claims", str(path))
    line = one_line(err)
    assert code == EXIT_BAD_INPUT and f"{path}:" in line and "claim 'bad'" in line and fragment in line
