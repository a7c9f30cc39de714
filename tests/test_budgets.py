"""Budgets: each limit kind with both outcomes, the message format, the budgets file and its exit codes, the
pytest plugin, and every reference model held to its audited budget.

Oracle for measured values: the walker's and the MAC capture's own totals, pinned with their arithmetic.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import archaudit
from archaudit.budgets.check import BudgetError, check_budget
from archaudit.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent


def small() -> nn.Module:
    # 16*32 + 32 = 544 and 32*4 + 4 = 132: 676 parameters; MACs per sample 16*32 + 32*4 = 640
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.mark.parametrize(("kind", "inside", "outside", "extra"), [
    ("params", 700, 600, {}),
    ("trainable", (600, 700), (0, 600), {}),
    ("macs", 640, 639, {"input": "1x16"}),
    ("flops", (1_280, 1_280), 1_000, {"input": (1, 16)}),  # 2 x 640
    ("size_mb", 0.003, 0.002, {}),  # 676 float32 parameters = 2,704 bytes = 0.0027 MB
])
def test_each_limit_kind_both_outcomes(kind, inside, outside, extra):
    assert archaudit.assert_budget(small(), **{kind: inside}, **extra).ok
    with pytest.raises(archaudit.BudgetExceeded) as info:
        archaudit.assert_budget(small(), **{kind: outside}, **extra)
    assert isinstance(info.value, AssertionError)
    assert kind in str(info.value)


def test_frozen_parameters_do_not_count_as_trainable():
    model = small()
    model[0].requires_grad_(False)
    archaudit.assert_budget(model, trainable=132, params=676)


def test_message_is_a_table_of_limits_measured_and_margins():
    with pytest.raises(archaudit.BudgetExceeded) as info:
        archaudit.assert_budget(small(), name="small", params=600, macs=(700, 800), input="1x16")
    lines = str(info.value).splitlines()
    assert lines[0] == "small (input 1x16): over budget"
    assert lines[1].split() == ["limit", "budget", "measured", "margin"]
    params = next(line for line in lines if line.startswith("params"))
    assert params.split() == ["params", "<=", "600", "676", "-76", "(-12.7%)", "OVER"]
    macs = next(line for line in lines if line.startswith("macs"))
    assert macs.split() == ["macs", "700", "..", "800", "640", "-60", "(-7.5%)", "UNDER"]


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.scale


class Spectral(nn.Module):
    """Its own work is an FFT: no FLOP formula counts it, and it is not free."""

    def forward(self, x):
        return torch.fft.fft(x).real


def test_unsupported_layers_count_against_a_budget_unless_allowed():
    # Direct parameters (Custom's scale) and op-counted work (its mul, free) are no unknown: the budget passes.
    assert archaudit.assert_budget(Custom(), params=100, macs=10, input="1x4").ok
    with pytest.raises(archaudit.BudgetExceeded, match="unsupported layers") as failed:
        archaudit.assert_budget(Spectral(), macs=100, input="1x4")
    assert "(root) (MACs: aten._fft_r2c) (allow_unsupported=true to accept)" in str(failed.value)
    assert archaudit.assert_budget(Spectral(), macs=100, input="1x4", allow_unsupported=True).ok


@pytest.mark.parametrize(("limits", "message"), [
    ({"params": -1}, "non-negative"),
    ({"params": (10, 5)}, "minimum 10 is above maximum 5"),
    ({"params": "1M"}, "a number or a (min, max) pair"),
    ({"macs": 10}, "need input="),
    ({}, "no limit given"),
])
def test_bad_budgets_are_refused_with_the_value(limits, message):
    with pytest.raises(BudgetError, match=re.escape(message)):
        check_budget(small(), **limits)


def test_bad_limit_name():
    with pytest.raises(BudgetError, match="unknown limit"):
        check_budget(small(), parameters=10)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    return path


FIXTURE = ROOT / "tests" / "fixtures" / "targets.py"


def test_check_exit_0_within_and_1_over(tmp_path, capsys):
    within = write(tmp_path, f'[[model]]\ntarget = "{FIXTURE}:small"\ninput = "1x17"\nparams = 171\n')
    assert main(["check", str(within)]) == EXIT_OK
    assert "all within budget" in capsys.readouterr().out
    over = write(tmp_path, f'[[model]]\ntarget = "{FIXTURE}:small"\ninput = "1x17"\nparams = 170\n')
    assert main(["check", str(over)]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    assert "OVER BUDGET" in out and "171" in out  # 17*8 + 8 + 8*3 + 3


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, *, mask: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * mask


def masked() -> nn.Module:
    return _Masked()


def test_inputs_by_name_in_assert_budget_and_in_a_budgets_file(tmp_path, capsys):
    # 2 rows x 3 in x 4 out = 24 MACs, whichever way the mask is named
    for given in (["2x3", "mask=2x4"], {"x": "2x3", "mask": "2x4"}):
        assert archaudit.assert_budget(masked(), macs=(24, 24), input=given).inputs[-1] == "mask=2x4"
    with pytest.raises(BudgetError, match="after an input passed by name"):
        check_budget(masked(), macs=24, input=["mask=2x4", "2x3"])
    with pytest.raises(BudgetError, match="not an input name"):
        check_budget(masked(), macs=24, input={"2x": "2x3"})
    within = write(tmp_path, f'[[model]]\ntarget = "{__file__}:masked"\ninput = {{x = "2x3", mask = "2x4"}}\nmacs = 24\n')
    assert main(["check", str(within)]) == EXIT_OK, capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [
    ("[[model]\n", "not valid TOML"),
    ("[[model]]\ninput = '1x17'\n", "needs target"),
    ("[[model]]\ntarget = 'amnl'\nparams = 1\ncolour = 'red'\n", "unknown key(s) colour"),
    ("[[model]]\ntarget = 'no-such-model'\nparams = 1\n", "unknown reference model"),
    ("[[model]]\ntarget = 'amnl'\nparams = [3, 1]\n", "minimum 3 is above maximum 1"),
    ("[[claims]]\nfile = 'x.toml'\nexpect = 'most hold'\n", "expect is"),
    ("[budget]\n", "unknown table"),
    ("", "nothing to check"),
])
def test_bad_budgets_file_exits_2_with_one_line(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    assert main(["check", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err
    assert str(path) in err  # the file is named, whatever was wrong
    assert err.count("\n") == 1 and "Traceback" not in err


def test_claims_gate_all_hold_and_pinned_counts(tmp_path, capsys):
    claims = ROOT / "reference_models" / "claims" / "amnl_v2.toml"
    path = write(tmp_path, f'[[claims]]\nfile = "{claims}"\n')
    assert main(["check", str(path)]) == EXIT_CHECK_FAILED  # the document's figures do not all hold
    assert "output_trainable" in capsys.readouterr().out
    path = write(tmp_path, f'[[claims]]\nfile = "{claims}"\nexpect = {{ holds = 3, mismatch = 8, "not reproducible" = 1 }}\n')
    assert main(["check", str(path)]) == EXIT_OK


# The project's own budgets.toml (every reference model at its audited size and cost, every claims file at its
# audited verdicts) is checked by tests/test_readme.py, which runs the README's CI job, `archaudit check
# budgets.toml` among its steps, and requires exit 0.


@pytest.fixture
def model():
    with torch.device("meta"):
        from reference_models import get_reference

        return get_reference("amnl-compact").build()


# the compact AMNL: 960,964 parameters (its document's subtotal), 27,641,792 MACs on 1x30x17
@pytest.mark.budget(params=(960_964, 960_964), macs=(27_641_792, 27_641_792), input="1x30x17")
def test_the_plugin_marker_holds_the_compact_amnl(model):
    assert model.lstm.hidden_size == 128


def test_the_plugin_fixture_holds_the_large_amnl(budget):
    from reference_models import get_reference

    with torch.device("meta"):
        large = get_reference("amnl").build()
    budget(large, params=(12_354_276, 12_354_276), macs=(367_401_280, 367_401_280), input="1x30x17")


def test_plugin_fails_an_over_budget_test_with_the_table(pytester):
    pytester.makepyfile(
        """
        import pytest
        from torch import nn

        @pytest.fixture
        def model():
            return nn.Linear(100, 100)

        @pytest.mark.budget(params=1_000)
        def test_big(model):
            pass

        @pytest.mark.budget(params=20_000)
        def test_ok(model):
            pass

        @pytest.mark.budget(params=1)
        def test_no_model():
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed", 0) + outcomes.get("error", 0) == 2
    result.stdout.fnmatch_lines(["*params*<= 1,000*10,100*OVER*"])  # 100*100 + 100
    result.stdout.fnmatch_lines(["*needs the test to take a `model` fixture*"])
