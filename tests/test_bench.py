"""Throughput measurement and start-up: `archaudit bench` reports samples/s with the hardware it ran on, for a
reference model or any TARGET with its --input shapes (each batch size in dim 0), warns when a median is
unreliable, shows progress only on a terminal; a throughput claim gets a verdict only against a measurement, and
the light commands stay light."""

from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cli_run import refused, run
from torch import nn

import archaudit.bench
import archaudit.progress
import archaudit.regenerate
from archaudit.bench import SPREAD_LIMIT, BenchError, BenchResult, bench, spread_warning
from archaudit.claims import check_document
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from archaudit.progress import progress
from archaudit.render.bench import bench_json, bench_markdown
from reference_models import get_reference

ROOT = Path(__file__).resolve().parent.parent


def test_bench_reports_median_spread_and_hardware(capsys):
    assert main(["bench", "dcnn", "--batch", "2", "--batch", "8", "--repeats", "3", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in data["results"]] == [2, 8]
    for r in data["results"]:
        assert r["low"] <= r["samples_per_s"] <= r["high"] and r["repeats"] == 3
    assert data["device"] == "cpu" and data["threads"] >= 1 and data["dtype"] == "float32" and data["hardware"]
    assert data["inputs"] is None  # a reference model runs on its own example input


def test_bench_refuses_what_it_cannot_measure(capsys):
    entry = get_reference("dcnn")
    with pytest.raises(BenchError, match="at least 1"):
        bench("dcnn", entry.build, lambda b, d: entry.example_input(batch=b, device=d), batches=[0])
    if not torch.cuda.is_available():
        assert main(["bench", "dcnn", "--device", "cuda"]) == EXIT_BAD_INPUT
        assert "no CUDA device" in capsys.readouterr().err


def test_a_throughput_claim_is_checked_only_against_a_measurement():
    claims = ROOT / "reference_models" / "claims" / "amnl_001.toml"
    unmeasured = check_document(claims).result("metric_throughput")
    assert unmeasured.verdict.value == "not checkable here" and "hardware-dependent" in unmeasured.evidence
    slow = check_document(claims, throughput={"samples_per_s": 300.0, "hardware": "test CPU"})
    result = slow.result("metric_throughput")
    assert result.verdict.value == "mismatch" and "test CPU" in result.evidence and "only for that" in result.evidence
    fast = check_document(claims, throughput={"samples_per_s": 45_000.0, "hardware": "test GPU"})
    assert fast.result("metric_throughput").verdict.value == "holds"  # ">30K": at least 30,000


def test_light_commands_import_neither_torchinfo_nor_fvcore():
    """``archaudit --help`` and ``archaudit list``, one after the other in one fresh process (what either imports is
    imported by the time both have run; the CLI's main, as the entry points call it, which then end the process)."""
    code = ("import sys\n"
            "from archaudit.cli import main\n"
            "for argv in (['--help'], ['list']):\n"
            "    main(argv)\n"
            "print(sorted(m for m in ('torchinfo', 'fvcore', 'matplotlib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# --- any TARGET with --input ---------------------------------------------------------------------------------------

TINY = '''
import torch
from torch import nn

open({imported!r}, "w").close()  # the file was imported (so the model was about to be built)


class Tiny(nn.Module):
    """Linear(3, 2) on x, plus Embedding(10, 2) on ids when given; writes each new input it sees to {seen!r}."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.emb = nn.Embedding(10, 2)
        self.keys = set()

    def forward(self, x, ids=None):
        key = (tuple(x.shape), str(x.dtype), round(float(x.sum()), 4))
        if ids is not None:
            key += (tuple(ids.shape), str(ids.dtype), int(ids.abs().sum()))
        if key not in self.keys:
            self.keys.add(key)
            with open({seen!r}, "a") as fh:
                fh.write(repr(key) + "\\n")
        y = self.lin(x).sum(1)
        return y if ids is None else y + self.emb(ids).sum(1)


def build():
    return Tiny()
'''


@pytest.fixture
def tiny(tmp_path):
    """A ``file.py:build`` TARGET, and a function returning the inputs its forward has seen (one tuple each)."""
    path = tmp_path / "tiny_model.py"
    seen, imported = tmp_path / "seen.txt", tmp_path / "imported"
    path.write_text(TINY.format(seen=str(seen), imported=str(imported)), encoding="utf-8")

    def inputs_seen() -> set[tuple]:
        return {ast.literal_eval(line) for line in seen.read_text().splitlines()} if seen.exists() else set()

    return SimpleNamespace(target=f"{path}:build", seen=inputs_seen, imported=imported)


def seeded_sum(*shape: int) -> float:
    """What ShapedInputs feeds a float input: standard normal from seed 0 (the tiny model records its sum)."""
    return round(float(torch.randn(shape, generator=torch.Generator().manual_seed(0)).sum()), 4)


def test_bench_runs_a_file_target_with_each_batch_in_dim_0(tiny, capsys):
    code, out, err = run(
        capsys, "bench", tiny.target, "--input", "1x5x3", "--batch", "2", "--batch", "4", "--repeats", "2",
        "--format", "json",
    )
    assert code == EXIT_OK, err
    data = json.loads(out)
    assert data["model"] == tiny.target and data["inputs"] == ["Bx5x3"]  # dim 0 (1) is the batch size
    assert [(r["batch"], r["repeats"]) for r in data["results"]] == [(2, 2), (4, 2)]
    for r in data["results"]:
        assert 0 < r["low"] <= r["samples_per_s"] <= r["high"] and r["spread"] == pytest.approx(r["high"] / r["low"])
    # 1x5x3 run at --batch 2 and 4: dim 0 replaced, the rest kept; the same seeded values at every call of a batch
    assert tiny.seen() == {
        ((2, 5, 3), "torch.float32", seeded_sum(2, 5, 3)),
        ((4, 5, 3), "torch.float32", seeded_sum(4, 5, 3)),
    }
    assert "\r" not in err  # stderr is not a terminal here: no progress line


def test_bench_passes_keyword_inputs_by_name(tiny, capsys):
    code, out, err = run(
        capsys, "bench", tiny.target, "--input", "1x5x3", "--input", "ids=9x7:int64", "--batch", "3", "--repeats", "2"
    )
    assert code == EXIT_OK, err
    # x at batch 3 from 1x5x3; ids at batch 3 from 9x7 (dim 0 replaced for every input), int64 zeros (sum 0)
    assert tiny.seen() == {((3, 5, 3), "torch.float32", seeded_sum(3, 5, 3), (3, 7), "torch.int64", 0)}
    assert "`Bx5x3`, `ids=Bx7:int64`" in out and "replaces dim 0" in out


def test_bench_of_a_target_without_input_is_refused_before_it_is_built(tiny, capsys):
    line = refused(capsys, "bench", tiny.target, "--repeats", "2")
    assert "needs --input" in line and "not a reference model" in line and tiny.target in line
    assert not tiny.imported.exists()  # refused before the file was imported


def test_bench_forward_failure_is_one_line(tiny, capsys):
    line = refused(capsys, "bench", tiny.target, "--input", "1x5x4", "--batch", "2", "--repeats", "1")
    # Linear(3, 2) on a last dimension of 4
    assert "the forward pass at batch 2 raised RuntimeError" in line


def test_bench_help_states_dim_0_and_the_spread_limit(capsys):
    assert main(["bench", "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())
    assert "replaces dim 0 of every input" in text and f"by more than {SPREAD_LIMIT:g}x" in text


# --- progress on stderr, only on a terminal -----------------------------------------------------------------------


def test_progress_writes_nothing_when_stderr_is_not_a_terminal(capsys):
    assert not sys.stderr.isatty()  # capsys's stand-in
    with progress("bench tiny", total=2) as step:
        step("batch 1")
        step("batch 64")
    assert capsys.readouterr() == ("", "")


@pytest.fixture
def terminal(monkeypatch):
    """An 80-column terminal on which no time passes (for the progress clock), and a call that makes stderr claim
    to be that terminal: made in the test itself, since capsys's stderr while the test runs is not the stream it
    has while fixtures are set up."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(archaudit.progress, "time", SimpleNamespace(monotonic=lambda: 100.0))
    return lambda: monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_progress_rewrites_one_line_on_a_terminal_and_erases_it(terminal, capsys):
    terminal()
    with progress("bench", total=2) as step:
        step("batch 1024")
        step("batch 1")
    out, err = capsys.readouterr()
    first = "bench [1/2] batch 1024 (0 s)"  # 5 + 6 + 11 + 6 = 28 characters
    second = "bench [2/2] batch 1 (0 s)"  # 5 + 6 + 8 + 6 = 25: 3 spaces cover the rest of the first
    assert out == "" and err == f"\r{first}\r{second}   \r{' ' * 25}\r"


def test_progress_is_cut_to_the_terminal_width_and_erased_on_error(terminal, monkeypatch, capsys):
    terminal()
    monkeypatch.setenv("COLUMNS", "40")  # 39 characters: the last column is left empty
    with pytest.raises(KeyError), progress("bench /a/very/long/path/to/tiny_model.py:build", total=1) as step:
        step("batch 2")  # "[1/1] batch 2 (0 s)", 19 characters, leaves 39 - 19 - 1 = 19 for the label
        raise KeyError
    # the label's last 19 - 3 = 16 characters after "...": cut from its start, what changes is kept
    line = "..." + "tiny_model.py:build"[-16:] + " [1/1] batch 2 (0 s)"
    assert len(line) == 39 and capsys.readouterr().err == f"\r{line}\r{' ' * 39}\r"  # erased though it raised


def test_progress_cuts_a_step_longer_than_the_terminal(terminal, monkeypatch, capsys):
    terminal()
    monkeypatch.setenv("COLUMNS", "20")
    with progress("reports") as step:  # no total: no count
        step("building every reference model's report")
    # "building every reference model's report (0 s)" alone is past 20 - 1 = 19 characters: no room for the label
    assert capsys.readouterr().err == "\rbuilding every refe\r" + " " * 19 + "\r"


def test_bench_shows_progress_on_a_terminal_and_keeps_stdout_clean(tiny, terminal, monkeypatch, capsys):
    terminal()
    monkeypatch.setenv("COLUMNS", "1000")  # the whole line, however long tmp_path is
    code, out, err = run(capsys, "bench", tiny.target, "--input", "1x5x3", "--batch", "2", "--repeats", "2",
                         "--format", "json")
    assert code == EXIT_OK and json.loads(out)["results"][0]["batch"] == 2
    # 1 batch size x (1 warm-up + 2 timed runs) = 3 steps, then the line erased
    # the elapsed seconds are whatever this machine took: (0 s) idle, more under load
    assert re.search(re.escape(f"\rbench {tiny.target} [3/3] batch 2: run 2/2 (") + r"\d+ s\)", err)
    assert err.endswith("\r")
    assert "[4/3]" not in err


def test_reports_shows_progress_on_a_terminal(terminal, monkeypatch, tmp_path, capsys):
    terminal()
    monkeypatch.setenv("COLUMNS", "1000")  # the whole line, however long tmp_path is
    def regenerate(directory, *, step):  # what regenerate() tells its step, per report built
        step("building dcnn")
        return [Path(directory) / "dcnn.md"]

    monkeypatch.setattr(archaudit.regenerate, "regenerate", regenerate)
    code, _, err = run(capsys, "reports", str(tmp_path))
    assert code == EXIT_OK
    assert err.startswith(f"\rreports into {tmp_path} building dcnn") and err.endswith(f"wrote {tmp_path}/dcnn.md\n")


# --- the spread warning -------------------------------------------------------------------------------------------


def scripted(*durations: float):
    """A clock whose successive (start, end) readings are 0 and each duration in turn."""
    ticks = iter([t for d in durations for t in (0.0, d)])
    return lambda: next(ticks)


def tiny_bench(clock, batches=(4,), repeats=2):
    return bench("tiny", lambda: nn.Linear(3, 2), lambda b, d: (torch.zeros(b, 3, device=d),), batches=batches,
                 repeats=repeats, warmup=0, clock=clock)


def test_a_wide_spread_is_warned_in_the_report_and_its_renderings():
    # batch 4: the calibration call takes 1 s, so each timed run is 1 call (int(0.05 / 1) = 0, at least 1);
    # the two runs take 1 s and 0.01 s: 4 / 1 = 4 and 4 / 0.01 = 400 samples/s, median (4 + 400) / 2 = 202
    report = tiny_bench(scripted(1.0, 1.0, 0.01))
    (result,) = report.results
    assert (result.low, result.samples_per_s, result.high) == pytest.approx((4, 202, 400))
    assert result.spread == pytest.approx(100)  # 400 / 4
    warning = ("batch 4: runs ranged 4..400 samples/s (spread 100x, more than 2x); the median is unreliable: "
               "rerun on an idle machine or with more --repeats")
    assert report.warnings == (warning,)
    assert bench_json(report)["warnings"] == [warning] and bench_json(report)["spread_limit"] == SPREAD_LIMIT
    assert f"- {warning}" in bench_markdown(report)


def test_even_runs_get_no_warning():
    # three runs of 1 s each at batch 4: 4 samples/s every time, spread 4 / 4 = 1
    report = tiny_bench(scripted(1.0, 1.0, 1.0, 1.0), repeats=3)
    assert report.results[0].spread == 1.0 and report.warnings == ()
    assert bench_json(report)["warnings"] == [] and "Warning" not in bench_markdown(report)


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (100.0, 200.0, None),  # 200 / 100 = 2: at the limit, not past it
        (100.0, 201.0, "spread 2.01x"),  # 201 / 100
        (1.0, 405.0, "runs ranged 1..405 samples/s (spread 405x"),  # the 1..405 samples/s
        (0.5, 1_500.0, "runs ranged 0.5..1,500 samples/s (spread 3,000x"),  # 1,500 / 0.5
    ],
)
def test_the_spread_limit(low, high, shown):
    warning = spread_warning(BenchResult(1024, (low + high) / 2, low, high, 10))
    assert (warning is None) if shown is None else (shown in warning and warning.startswith("batch 1024: "))


def test_cli_prints_the_spread_warning_on_stderr(tiny, monkeypatch, capsys):
    # calibration 1 s, then runs of 1 s and 0.1 s at batch 2: 2 / 1 = 2 and 2 / 0.1 = 20 samples/s, spread 10x
    monkeypatch.setattr(archaudit.bench, "bench", functools.partial(bench, clock=scripted(1.0, 1.0, 0.1)))
    code, out, err = run(capsys, "bench", tiny.target, "--input", "1x5x3", "--batch", "2", "--repeats", "2",
                         "--format", "json")
    warning = ("batch 2: runs ranged 2..20 samples/s (spread 10x, more than 2x); the median is unreliable: "
               "rerun on an idle machine or with more --repeats")
    assert code == EXIT_OK and json.loads(out)["warnings"] == [warning]
    assert err == f"archaudit: warning: {warning}\n"  # one line, after the report


def test_claims_shows_progress_per_claim_on_a_terminal(terminal, capsys):
    terminal()
    path = Path(__file__).parent / "fixtures" / "claims" / "all_hold.toml"
    code, out, err = run(capsys, "claims", str(path))
    assert code == EXIT_OK and "\r" not in out  # the verdicts on stdout, untouched
    count = len(archaudit.claims.load_claims(path).claims)
    # one step per claim, the last shown as [count/count], and the line erased at the end
    assert err.count("\r") >= count and f"[{count}/{count}]" in err
    assert err.endswith("\r")
