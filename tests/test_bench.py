"""Throughput measurement and start-up: `archaudit bench` reports samples/s with the hardware it ran on, a
throughput claim gets a verdict only against a measurement, and the light commands stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archaudit.bench import BenchError, bench
from archaudit.claims import check_document
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from reference_models import get_reference

ROOT = Path(__file__).resolve().parent.parent


def test_bench_reports_median_spread_and_hardware(capsys):
    assert main(["bench", "dcnn", "--batch", "2", "--batch", "8", "--repeats", "3", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in data["results"]] == [2, 8]
    for r in data["results"]:
        assert r["low"] <= r["samples_per_s"] <= r["high"] and r["repeats"] == 3
    assert data["device"] == "cpu" and data["threads"] >= 1 and data["dtype"] == "float32" and data["hardware"]


def test_bench_refuses_what_it_cannot_measure(capsys):
    entry = get_reference("dcnn")
    with pytest.raises(BenchError, match="at least 1"):
        bench("dcnn", entry.build, lambda b, d: entry.example_input(batch=b, device=d), batches=[0])
    import torch

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
    imported by the time both have run)."""
    code = ("import runpy, sys\n"
            "for argv in (['--help'], ['list']):\n"
            "    sys.argv = ['archaudit', *argv]\n"
            "    try:\n        runpy.run_module('archaudit', run_name='__main__')\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('torchinfo', 'fvcore', 'matplotlib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
