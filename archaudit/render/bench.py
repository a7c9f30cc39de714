"""Throughput measurements (``archaudit bench``) as Markdown and JSON."""

from __future__ import annotations

from typing import Any

from ..bench import SPREAD_LIMIT, BenchReport, rate_text
from ._fmt import cell, code_text, table


def bench_json(report: BenchReport) -> dict[str, Any]:
    return {
        "model": report.model,
        "hardware": report.hardware,
        "device": report.device,
        "threads": report.threads,
        "dtype": report.dtype,
        "torch": report.torch_version,
        # null: the reference model's own example input; else the --input shapes, dim 0 ("B") the batch size
        "inputs": None if report.inputs is None else list(report.inputs),
        "results": [
            {
                "batch": r.batch,
                "samples_per_s": r.samples_per_s,
                "low": r.low,
                "high": r.high,
                "spread": r.spread,
                "repeats": r.repeats,
            }
            for r in report.results
        ],
        "spread_limit": SPREAD_LIMIT,
        "warnings": list(report.warnings),
    }


def bench_markdown(report: BenchReport) -> str:
    if report.inputs is None:
        inputs = "Inputs: the reference model's own example input at each batch size."
    else:
        shapes = ", ".join(code_text(s) for s in report.inputs)
        inputs = f"Inputs: {shapes}; the batch size replaces dim 0 (`B`) of every input given by `--input`."
    parts = [
        f"# Throughput: {cell(report.model)}\n\nMeasured on {cell(report.hardware)} ({report.device}, "
        f"{report.threads} threads, {report.dtype}, torch {report.torch_version}); the figures hold only for this "
        f"machine. {inputs}\n\n"
        + table(
            (
                (
                    r.batch,
                    rate_text(r.samples_per_s),
                    f"{rate_text(r.low)} .. {rate_text(r.high)}",
                    f"{r.spread:.2f}x",
                    r.repeats,
                )
                for r in report.results
            ),
            ["batch", "samples/s (median)", "slowest .. fastest run", "spread", "runs"],
            ["right", "right", "right", "right", "right"],
        )
    ]
    if report.warnings:
        parts.append(
            f"**Warning**: a spread (fastest run over slowest) above {SPREAD_LIMIT:g}x means the machine was busy "
            "with something else during the runs:\n\n" + "\n".join(f"- {w}" for w in report.warnings)
        )
    return "\n\n".join(parts)
