"""Throughput measurements (``archaudit bench``) as Markdown and JSON."""

from __future__ import annotations

from typing import Any

from ..bench import BenchReport
from ._fmt import table


def bench_json(report: BenchReport) -> dict[str, Any]:
    return {
        "model": report.model,
        "hardware": report.hardware,
        "device": report.device,
        "threads": report.threads,
        "dtype": report.dtype,
        "torch": report.torch_version,
        "results": [
            {"batch": r.batch, "samples_per_s": r.samples_per_s, "low": r.low, "high": r.high, "repeats": r.repeats}
            for r in report.results
        ],
    }


def bench_markdown(report: BenchReport) -> str:
    return (
        f"# Throughput: {report.model}\n\nMeasured on {report.hardware} ({report.device}, {report.threads} "
        f"threads, {report.dtype}, torch {report.torch_version}); the figures hold only for this machine.\n\n"
        + table(
            ((r.batch, f"{r.samples_per_s:,.0f}", f"{r.low:,.0f} .. {r.high:,.0f}", r.repeats) for r in report.results),
            ["batch", "samples/s (median)", "spread", "runs"],
            ["right", "right", "right", "right"],
        )
    )
