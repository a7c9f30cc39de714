"""Writing a model's report (Markdown, JSON, charts) to files, and regenerating ``reports/`` in one go.

Every file is written atomically; the content is deterministic (no timestamps, no machine-specific figures),
so the committed reports can be checked for staleness by regenerating them and comparing.
"""

from __future__ import annotations

import json
from pathlib import Path

from .output import atomic_write
from .progress import Step, no_step
from .render.baselines import baselines_json, baselines_markdown
from .render.charts import distribution_svg, efficiency_svg, scaling_svg
from .render.model import report_json, report_markdown
from .report_data import ModelReport, baselines, build_report


def dump_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def write_report(report: ModelReport, output: str | Path, *, fmt: str = "md", depth: int | None = None) -> list[Path]:
    """Write ``report`` to ``output`` (Markdown or JSON), with its charts beside a Markdown file; ``depth`` folds
    the Markdown layers table below it."""
    output = Path(output)
    if fmt == "json":
        return [atomic_write(output, dump_json(report_json(report)))]
    written: list[Path] = []
    charts: dict[str, str] = {}
    stem = output.name.removesuffix(".md")
    svg = distribution_svg(report.components, f"{report.name}: parameters by component")
    if svg is not None:
        written.append(atomic_write(output.with_name(f"{stem}.components.svg"), svg))
        charts["components"] = f"{stem}.components.svg"
    if report.efficiency is not None:
        svg = efficiency_svg(report.efficiency.rows, "Efficiency table: claimed against audited parameters")
        if svg is not None:
            written.append(atomic_write(output.with_name(f"{stem}.efficiency.svg"), svg))
            charts["efficiency"] = f"{stem}.efficiency.svg"
    if report.scaling is not None:
        at = _audited_size(report)
        title = f"{report.name}: share of the MACs by term"
        svg = scaling_svg(report.scaling.polynomial("macs"), title, at)
        if svg is not None:
            written.append(atomic_write(output.with_name(f"{stem}.scaling.svg"), svg))
            charts["scaling"] = f"{stem}.scaling.svg"
    written.append(atomic_write(output, report_markdown(report, charts, depth=depth)))
    return written


def _audited_size(report: ModelReport) -> int | None:
    """The varied dimension's size in the report's own input (30 in ``1x30x17``)."""
    entry_dims = report.inputs[0].split(":")[0].split("x") if report.inputs else []
    varied = report.scaling.inputs.shapes[0].dims if report.scaling is not None else ()
    for given, open_ in zip(entry_dims, varied, strict=False):
        if open_ is None and given.isdigit():
            return int(given)
    return None


def regenerate(directory: str | Path = "reports", *, step: Step = no_step) -> list[Path]:
    """Every reference model's report (Markdown + JSON + charts) and the baselines comparison; ``step`` is told
    which report is being built (progress)."""
    from .references import references

    directory = Path(directory)
    written: list[Path] = []
    reports = []
    for entry in references():
        if entry.published_architecture:
            step(f"building {entry.name}")
            reports.append(build_report(entry.name))
    for report in reports:
        written += write_report(report, directory / f"{report.name}.md")
        written += write_report(report, directory / f"{report.name}.json", fmt="json")
    rows = baselines(reports)
    written.append(atomic_write(directory / "baselines.md", baselines_markdown(rows)))
    written.append(atomic_write(directory / "baselines.json", dump_json(baselines_json(rows))))
    return written
