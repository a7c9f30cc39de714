"""Reports: the committed reports/ are what the code generates now (staleness), invariants hold on every
report, the JSON matches its schema, and files are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from archaudit.io import atomic_write
from archaudit.model_report import build_report, shares
from archaudit.regenerate import regenerate
from reference_models import references

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
SCHEMA = json.loads((ROOT / "archaudit" / "schemas" / "report.schema.json").read_text())
NAMES = [e.name for e in references() if e.published_architecture]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("reports")
    regenerate(directory)
    return directory


def test_committed_reports_are_not_stale(regenerated):
    """Golden test: regenerate every report and compare byte for byte with reports/ (run `archaudit reports`
    to refresh them)."""
    fresh = sorted(p.name for p in regenerated.iterdir())
    committed = sorted(p.name for p in REPORTS.iterdir() if p.is_file())
    assert fresh == committed, "reports/ lists different files from what `archaudit reports` writes"
    stale = [name for name in fresh if (regenerated / name).read_bytes() != (REPORTS / name).read_bytes()]
    assert stale == [], f"stale reports (regenerate with `archaudit reports`): {stale}"


@pytest.mark.parametrize("name", NAMES)
def test_report_json_matches_the_schema_and_its_invariants(regenerated, name):
    data = json.loads((regenerated / f"{name}.json").read_text())
    jsonschema.validate(data, SCHEMA)
    total = data["summary"]["total"]
    # component rows sum to the total, and so do layer-type rows
    assert sum(c["params"] for c in data["components"]) == total
    assert sum(c["params"] for c in data["layer_types"]) == total
    # percentages sum to 100 (exactly, at 0.1: largest remainder)
    assert round(sum(c["percent"] for c in data["components"]), 1) == 100.0
    assert round(sum(c["percent"] for c in data["layer_types"]), 1) == 100.0
    # every module path lies in exactly one component (a top-level child, or the root itself)
    components = {c["name"] for c in data["components"]}
    for module in data["params"]["modules"]:
        if module["name"] and module["params"]:
            owners = [c for c in components if module["name"] == c or module["name"].startswith(c + ".")]
            assert len(owners) == 1, module["name"]
    assert data["flops"]["flops"] == 2 * data["flops"]["macs"] == 2 * data["summary"]["macs"]


def test_markdown_report_has_every_section(regenerated):
    text = (regenerated / "amnl.md").read_text()
    for heading in ("## 1. Summary", "## 2. Parameter distribution", "## 3. Layers", "## 4. FLOPs cross-check",
                    "## 5. Efficiency", "## 6. Documentation claims", "## 7. Provenance"):
        assert heading in text
    assert "![parameters by component](amnl.components.svg)" in text
    assert "(20 - RMSE) / Params(M)" in text
    assert "[amnl-compact](amnl-compact.md)" in text  # the large report cites the compact one's
    svg = (regenerated / "amnl.components.svg").read_text()
    assert svg.startswith("<?xml") and "<dc:date>" not in svg  # deterministic: no timestamp


def test_baselines_report_compares_every_model(regenerated):
    data = json.loads((regenerated / "baselines.json").read_text())
    by_name = {m["name"]: m for m in data["models"]}
    assert set(by_name) == {e.name for e in references()}
    assert by_name["dcnn"]["audited_params"] == 45_372 and by_name["dcnn"]["verdict"] == "mismatch"
    assert by_name["bilstm-ed"]["audited_params"] is None
    assert by_name["bilstm-ed"]["verdict"] == "not checkable here"


def test_shares_add_to_100_by_largest_remainder():
    # 1/3 each: 33.3 + 33.3 + 33.3 = 99.9, so one tenth goes to the first of the tied remainders
    result = shares([("a", "", 1), ("b", "", 1), ("c", "", 1)], 3)
    assert [s.percent for s in result] == [33.4, 33.3, 33.3]
    result = shares([("big", "", 9_455_616), ("tiny", "", 1_536), ("rest", "", 2_897_124)], 12_354_276)
    assert round(sum(s.percent for s in result), 1) == 100.0


def test_report_to_stdout_and_to_a_file(tmp_path, capsys):
    assert main(["report", "dcnn", "--no-compare"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("# Audit report: dcnn") and "```text" in out  # text bars on stdout
    target = tmp_path / "sub" / "dcnn.md"
    assert main(["report", "dcnn", "--no-compare", "--output", str(target)]) == EXIT_OK
    assert target.read_text().startswith("# Audit report: dcnn")
    assert (tmp_path / "sub" / "dcnn.components.svg").exists()
    assert main(["report", "dcnn", "--no-compare", "--format", "json", "--output", str(tmp_path / "d.json")]) == 0
    jsonschema.validate(json.loads((tmp_path / "d.json").read_text()), SCHEMA)


def test_report_for_a_target_with_claims(tmp_path, capsys):
    fixture = ROOT / "tests" / "fixtures" / "targets.py"
    assert main(["report", f"{fixture}:small", "--input", "2x17", "--no-compare"]) == EXIT_OK
    assert "# Audit report:" in capsys.readouterr().out
    assert main(["report", f"{fixture}:small", "--no-compare"]) == EXIT_BAD_INPUT
    assert "--input" in capsys.readouterr().err
    claims = ROOT / "reference_models" / "claims" / "amnl_001.toml"
    assert main(["report", "amnl-compact", "--no-compare", "--claims", str(claims), "--strict"]) == 1


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.md"
    atomic_write(target, "old")
    with pytest.raises(TypeError):
        atomic_write(target, 12345)  # type: ignore[arg-type]  # fails mid-write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]  # no temporary left behind


def test_unknown_model_report_exits_2(capsys):
    assert main(["report", "amnl-xxl"]) == EXIT_BAD_INPUT
    assert "known:" in capsys.readouterr().err
