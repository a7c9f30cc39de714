"""Budgets on memory (``memory_mb``, ``train_memory_mb``) and against a committed baseline (``baseline`` with
``max_growth_pct``): both outcomes one byte (or one MAC) either side of the limit, the table, every refusal of the
budgets file, and the pytest marker.

Oracles: :func:`archaudit.memory.audit_memory`'s own peaks, with its weights checked against the parameters'
``numel() * element_size()``; for the baseline, :func:`archaudit.macs.audit_macs` totals written out by
:func:`archaudit.render.flops.flops_json`, with the growth pinned by its arithmetic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from cli_run import budgets_file, refused, run
from torch import nn

import archaudit
from archaudit.budgets.check import BudgetError, check_budget
from archaudit.cli import EXIT_CHECK_FAILED, EXIT_OK
from archaudit.inputs import InputSpec
from archaudit.macs import audit_macs
from archaudit.memory import audit_memory
from archaudit.render.flops import flops_json

ONE_BYTE_MB = 1e-6


def small() -> nn.Module:
    # 16*32 + 32 = 544 and 32*4 + 4 = 132: 676 float32 parameters = 2,704 bytes; MACs 16*32 + 32*4 = 640
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


def widened() -> nn.Module:
    # 16*40 + 40*4 = 800 MACs: 160 more than small's 640, a growth of 160/640 = 25% exactly
    return nn.Sequential(nn.Linear(16, 40), nn.ReLU(), nn.Linear(40, 4))


@pytest.fixture(scope="module")
def peaks() -> dict[str, int]:
    """audit_memory's figures for small() on 1x16, its weights checked against numel() * element_size()."""
    model = small()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    assert weights == 2_704  # 676 * 4 bytes
    adam = audit_memory(model, [InputSpec((1, 16))])
    sgd = audit_memory(model, [InputSpec((1, 16))], optimizer="sgd")
    assert adam.weights == sgd.weights == weights
    assert sgd.optimizer == 0 and adam.optimizer == 2 * weights + 4 * 4  # exp_avg, exp_avg_sq; a step per tensor
    assert adam.inference_peak > weights  # weights + the activations of the forward
    return {"inference": adam.inference_peak, "adam": adam.training_peak, "sgd": sgd.training_peak}


def mb(nbytes: int) -> float:
    return nbytes / 1e6


@pytest.mark.parametrize(("kind", "peak", "extra"), [
    ("memory_mb", "inference", {}),
    ("train_memory_mb", "adam", {}),
    ("train_memory_mb", "sgd", {"optimizer": "sgd"}),
])
def test_a_memory_limit_one_byte_either_side_of_the_peak(peaks, kind, peak, extra):
    nbytes = peaks[peak]
    for limit in (mb(nbytes), mb(nbytes + 1), (mb(nbytes), mb(nbytes))):  # at the peak, a byte above: within
        result = archaudit.assert_budget(small(), input="1x16", **{kind: limit}, **extra)
        assert result.checks[0].measured_bytes == nbytes
    for limit in (mb(nbytes - 1), (mb(nbytes + 1), 1.0)):  # a byte under it; a minimum a byte above it
        assert not check_budget(small(), input="1x16", **{kind: limit}, **extra).ok


def test_the_memory_rows_show_the_bytes_in_mb_and_the_setting(peaks):
    nbytes = peaks["adam"]
    with pytest.raises(archaudit.BudgetExceeded) as info:
        archaudit.assert_budget(small(), input="1x16", train_memory_mb=mb(nbytes - 1), memory_mb=1)
    text = str(info.value)
    row = next(line for line in text.splitlines() if line.startswith("train_memory_mb"))
    # e.g. 11,280 bytes: "0.011280", one byte (0.000001 MB) over
    assert row.split() == ["train_memory_mb", "(adam,", "fp32)", "<=", repr(mb(nbytes - 1)),
                           f"0.{nbytes:06d}", "-0.000001", row.split()[-2], "OVER"]
    assert "MB = 10^6 bytes" in text


def test_optimizer_and_precision_reach_the_audit():
    # oracle: audit_memory with the same settings
    spent = audit_memory(small(), [InputSpec((1, 16))], optimizer="adamw", precision="bf16-mixed")
    result = archaudit.assert_budget(
        small(), input="1x16", train_memory_mb=1, memory_mb=1, optimizer="adamw", precision="bf16-mixed"
    )
    # in assert_budget's order of the limits: memory_mb, then train_memory_mb
    assert [c.measured_bytes for c in result.checks] == [spent.inference_peak, spent.training_peak]
    assert [c.setting for c in result.checks] == ["bf16-mixed", "adamw, bf16-mixed"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"train_memory_mb": 1, "optimizer": "lion"}, "optimizer = 'lion' must be one of sgd, momentum, adam, adamw"),
    ({"memory_mb": 1, "precision": "fp8"}, "precision = 'fp8' must be one of fp32, bf16-mixed, fp16-mixed"),
    ({"memory_mb": 1, "optimizer": "sgd"}, "optimizer = 'sgd' applies to train_memory_mb only"),
    ({"params": 1, "precision": "fp32"}, "applies to memory_mb and train_memory_mb only"),
    ({"memory_mb": -1}, "memory_mb = -1 must be a number or a (min, max) pair"),
    ({"params": 1, "max_growth_pct": 5}, "max_growth_pct = 5 needs baseline"),
    ({"baseline": "b.json"}, "baseline needs max_growth_pct"),
    ({"baseline": "no-such.json", "max_growth_pct": True}, "max_growth_pct = True must be a finite percentage"),
    ({"baseline": "no-such.json", "max_growth_pct": 5}, "no-such.json: no such baseline file"),
])
def test_bad_memory_and_baseline_keywords_are_refused(kwargs, message):
    with pytest.raises(BudgetError, match=re.escape(message)):
        check_budget(small(), input="1x16", **kwargs)


def test_a_memory_limit_needs_an_input():
    with pytest.raises(BudgetError, match="memory_mb limits need input="):
        check_budget(small(), memory_mb=1)


# ============================================================================================== budgets file

def write_baseline(tmp_path: Path, model: nn.Module, shape: tuple[int, ...] = (1, 16)) -> Path:
    path = tmp_path / "small.flops.json"
    path.write_text(json.dumps(flops_json(audit_macs(model, [InputSpec(shape)]))))
    return path


def entry(target: str, text: str) -> str:
    return f'[[model]]\ntarget = "{__file__}:{target}"\n{text}\n'


@pytest.mark.parametrize(("pct", "code", "state"), [
    ("0", EXIT_CHECK_FAILED, "OVER"),
    ("24.99", EXIT_CHECK_FAILED, "OVER"),
    ("25", EXIT_OK, "ok"),  # exactly 25% passes (ModelDiff.grown_over: strictly more fails)
    ("100", EXIT_OK, "ok"),
])
def test_a_widened_model_against_its_baseline(tmp_path, capsys, pct, code, state):
    write_baseline(tmp_path, small())
    # the baseline alone is the entry's limit; its path is relative to the budgets file; no input: the baseline's
    path = budgets_file(tmp_path, entry("widened", f'baseline = "small.flops.json"\nmax_growth_pct = {pct}'))
    found, out, err = run(capsys, "check", str(path))
    assert found == code, (out, err)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert rows["macs"] == ["macs", "640", "800", "+160", "(+25.00%)", "<=", f"+{pct}%", state]  # 16*40 + 40*4
    assert rows["params"][1:4] == ["not", "in", "baseline"] and rows["params"][-2:] == ["not", "compared"]


def test_an_unchanged_model_passes_its_baseline_at_zero_growth(tmp_path, capsys):
    write_baseline(tmp_path, small())
    path = budgets_file(tmp_path, entry("small", 'baseline = "small.flops.json"\nmax_growth_pct = 0\nparams = 676'))
    found, out, err = run(capsys, "check", str(path))
    assert found == EXIT_OK, (out, err)
    assert "all within budget" in out


@pytest.mark.parametrize(("pct", "grown"), [
    (25, ()),  # parameters +24.85%, MACs +25% exactly: neither over
    (24.9, ("macs",)),
    (24, ("params", "trainable", "macs")),
])
def test_an_audit_json_baseline_compares_parameters_too(tmp_path, pct, grown):
    # Audit.to_json() holds parameters and MACs. widened(): 16*40 + 40 + 40*4 + 4 = 844 parameters against 676,
    # (844 - 676) * 100 / 676 = 24.85%; MACs 800 against 640, +25%
    path = tmp_path / "audit.json"
    path.write_text(archaudit.audit(small(), "1x16").to_json())
    result = check_budget(widened(), baseline=path, max_growth_pct=pct)
    assert result.baseline is not None and result.baseline.grown == grown
    assert result.ok == (not grown)


def test_inputs_differing_from_the_baselines_are_refused(tmp_path, capsys):
    write_baseline(tmp_path, small())
    path = budgets_file(
        tmp_path, entry("small", 'input = "2x16"\nbaseline = "small.flops.json"\nmax_growth_pct = 5')
    )
    err = refused(capsys, "check", str(path))
    assert "input 2x16 differs from the baseline's 1x16" in err and "not be like for like" in err


def test_a_baseline_that_shares_no_total_is_refused_not_passed(tmp_path, capsys):
    baseline = write_baseline(tmp_path, small())
    data = json.loads(baseline.read_text())
    data["inputs"] = []  # MACs on no known input: they are not counted now, and the baseline holds nothing else
    baseline.write_text(json.dumps(data))
    path = budgets_file(tmp_path, entry("small", 'baseline = "small.flops.json"\nmax_growth_pct = 5'))
    err = refused(capsys, "check", str(path))
    assert "no total to compare, so the baseline checks nothing" in err


FILE_CASES = [
    # (the entry's lines, the line refused, what the message says)
    ('memory_mb = "1MB"', 'memory_mb = "1MB"', "memory_mb = '1MB' must be a number or a (min, max) pair"),
    ("train_memory_mb = [2, 1]", "train_memory_mb = [2, 1]", "minimum 2 is above maximum 1"),
    ('train_memory_mb = 1\noptimizer = "lion"', 'optimizer = "lion"',
     "optimizer = 'lion' must be one of sgd, momentum, adam, adamw"),
    ("train_memory_mb = 1\noptimizer = 5", "optimizer = 5", "optimizer = 5 must be one of sgd, momentum"),
    ('memory_mb = 1\nprecision = "fp8"', 'precision = "fp8"',
     "precision = 'fp8' must be one of fp32, bf16-mixed, fp16-mixed"),
    ('params = 1\noptimizer = "sgd"', 'optimizer = "sgd"', "optimizer = 'sgd' applies to train_memory_mb only"),
    ('params = 1\nprecision = "fp32"', 'precision = "fp32"', "applies to memory_mb and train_memory_mb only"),
    ("params = 1\nmax_growth_pct = 5", "max_growth_pct = 5", "max_growth_pct = 5 needs baseline"),
    ('params = 1\nbaseline = "b.json"', 'baseline = "b.json"', "baseline needs max_growth_pct"),
    ('baseline = "b.json"\nmax_growth_pct = -1', "max_growth_pct = -1",
     "max_growth_pct = -1 must be a finite percentage >= 0"),
    ('baseline = "b.json"\nmax_growth_pct = "5%"', 'max_growth_pct = "5%"', "max_growth_pct = '5%' must be a finite"),
    ("baseline = 5\nmax_growth_pct = 5", "baseline = 5", "baseline = 5 must be a string"),
    ('baseline = "no-such.json"\nmax_growth_pct = 5', 'baseline = "no-such.json"', "no such baseline file"),
    ('baseline = "budgets.toml"\nmax_growth_pct = 5', 'baseline = "budgets.toml"', "not valid JSON"),
]


@pytest.mark.parametrize(("text", "at", "fragment"), FILE_CASES, ids=[c[0][:30] for c in FILE_CASES])
def test_each_new_key_is_refused_at_its_line_before_any_model_is_built(tmp_path, capsys, text, at, fragment):
    # entry #1 cannot be built: a refusal naming entry #2 comes before any target is built
    path = budgets_file(tmp_path, '[[model]]\ntarget = "no-such-model"\nparams = 1\n\n' + entry("small", text))
    line = path.read_text().splitlines().index(at) + 1
    err = refused(capsys, "check", str(path))
    assert err.startswith(f"archaudit: {path}:{line}: [[model]] #2 ({__file__}:small): "), err
    assert fragment in err


def test_an_entry_whose_only_limit_is_a_baseline_still_checks_something(tmp_path, capsys):
    # oracle: without max_growth_pct and baseline the same entry is refused as checking nothing
    write_baseline(tmp_path, small())
    path = budgets_file(tmp_path, entry("small", ""))
    assert "checks nothing" in refused(capsys, "check", str(path))
    path = budgets_file(tmp_path, entry("small", 'baseline = "small.flops.json"\nmax_growth_pct = 0'))
    assert run(capsys, "check", str(path))[0] == EXIT_OK


def test_memory_limits_in_a_budgets_file(tmp_path, capsys, peaks):
    over, within = mb(peaks["sgd"] - 1), mb(peaks["sgd"])
    for limit, code in ((within, EXIT_OK), (over, EXIT_CHECK_FAILED)):
        path = budgets_file(tmp_path, entry("small", f'input = "1x16"\ntrain_memory_mb = {limit!r}\noptimizer = "sgd"'))
        assert run(capsys, "check", str(path))[0] == code


# ============================================================================================== pytest plugin

def test_the_marker_takes_the_memory_limits_and_a_baseline(pytester, peaks, tmp_path):
    baseline = write_baseline(tmp_path, small())
    pytester.makepyfile(
        f"""
        import pytest
        from torch import nn

        @pytest.fixture
        def model():
            return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

        @pytest.mark.budget(memory_mb={mb(peaks["inference"])!r}, train_memory_mb=1, optimizer="sgd", input="1x16",
                            baseline={str(baseline)!r}, max_growth_pct=0)
        def test_within(model):
            pass

        @pytest.mark.budget(memory_mb={mb(peaks["inference"] - 1)!r}, input="1x16")
        def test_a_byte_over(model):
            pass

        @pytest.mark.budget(train_memory_mb=1, optimizer="lion", input="1x16")
        def test_bad_optimizer(model):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed") == 2, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["*memory_mb (fp32)*OVER*"])
    result.stdout.fnmatch_lines(["*test_bad_optimizer: @pytest.mark.budget: optimizer = 'lion' must be one of*"])


def test_the_fixture_is_assert_budget_with_the_new_limits(budget, peaks):
    assert budget(small(), memory_mb=mb(peaks["inference"]), input=torch.zeros(1, 16)).ok
