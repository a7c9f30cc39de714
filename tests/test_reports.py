"""Reports: the committed reports/ are what the code generates now (staleness), invariants hold on every
report, the JSON matches its schema, and files are written atomically."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from archaudit.output import atomic_write
from archaudit.report_data import shares
from archaudit.regenerate import regenerate
from reference_models import references

# One worker runs this file's tests, after one another: the regeneration they share (a subprocess) would otherwise
# hold a second worker idle at its lock while the other regenerates.
pytestmark = pytest.mark.xdist_group("reports")

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
TIMED = ("benchmarks.md", "models.md")
"""Reports with machine-specific timings, written by the benchmark scripts rather than by `archaudit reports`."""
OWN_SCRIPT = ("estimates.md", "estimates.json", "estimates-cost.svg")
"""Written by ``python benchmarks/estimates.py`` (it needs transformers), and checked by its own staleness test,
tests/test_estimates_report.py."""
SCHEMA = json.loads((ROOT / "archaudit" / "schemas" / "report.schema.json").read_text())
NAMES = [e.name for e in references() if e.published_architecture]



# What numpy dispatches to on a CPU without AVX-512, as named by the report of a machine that has it: the committed
# reports must come out the same on both (a sort or partition may break ties by kernel).
RESTRICTED_DISPATCH = "X86_V4 AVX512_ICL AVX512_SPR"

_REGENERATE_ELSEWHERE = """
import json, sys
from archaudit.cli import main
code = main(["reports", sys.argv[1]])
json.dump({"code": code, "modules": sorted(sys.modules)}, open(sys.argv[2], "w"))
"""


def _restriction_changes_dispatch() -> bool:
    """Whether this CPU has a feature RESTRICTED_DISPATCH turns off: without one, numpy dispatches the same kernels
    either way and a restricted run could only repeat the unrestricted one."""
    from numpy._core._multiarray_umath import __cpu_features__

    return any(__cpu_features__.get(name) for name in RESTRICTED_DISPATCH.split())


def _regenerate_twice(where: Path) -> dict:
    """The reports regenerated in a fresh process (which also says which modules the installed command imports),
    with numpy's CPU dispatch restricted where that changes anything; and then, at the same time, here without the
    restriction (what this machine's CPU gives). Without a feature to turn off, the one unrestricted run in the
    fresh process is both, and the restricted comparison is skipped."""
    elsewhere, facts = where / "fresh-process", where / "fresh-process.json"
    elsewhere.mkdir()
    restricted = _restriction_changes_dispatch()
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": RESTRICTED_DISPATCH} if restricted else dict(os.environ)
    process = subprocess.Popen([sys.executable, "-c", _REGENERATE_ELSEWHERE, str(elsewhere), str(facts)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        directory = elsewhere
        if restricted:
            directory = where / "here"
            regenerate(directory)
        _, err = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return {"here": str(directory), "restricted": str(elsewhere) if restricted else None,
            "facts": json.loads(facts.read_text())}


@pytest.fixture(scope="session")
def regenerated_twice(tmp_path_factory) -> tuple[Path, Path | None, dict]:
    """:func:`_regenerate_twice`, done once per test run: pytest-xdist workers share it through a file lock in
    their common temporary directory (the first to arrive regenerates, the others read its result)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / "archaudit-reports.json"
    with open(shared / "archaudit-reports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            where = shared / "archaudit-reports"
            where.mkdir()
            done.write_text(json.dumps(_regenerate_twice(where)))
        result = json.loads(done.read_text())
    restricted = result["restricted"]
    return Path(result["here"]), Path(restricted) if restricted else None, result["facts"]


@pytest.fixture(scope="session")
def regenerated(regenerated_twice) -> Path:
    return regenerated_twice[0]


@pytest.fixture(scope="session")
def regenerated_elsewhere(regenerated_twice) -> tuple[Path | None, dict]:
    return regenerated_twice[1], regenerated_twice[2]


def test_committed_reports_are_not_stale(regenerated):
    """Golden test: regenerate every report and compare byte for byte with reports/ (run `archaudit reports`
    to refresh them)."""
    fresh = sorted(p.name for p in regenerated.iterdir())
    # benchmarks.md and models.md hold machine-specific timings, regenerated by `python benchmarks/run.py` and
    # `python benchmarks/models.py`, not by this command
    committed = sorted(p.name for p in REPORTS.iterdir() if p.is_file() and p.name not in TIMED + OWN_SCRIPT)
    assert fresh == committed, "reports/ lists different files from what `archaudit reports` writes"
    stale = [name for name in fresh if (regenerated / name).read_bytes() != (REPORTS / name).read_bytes()]
    assert stale == [], f"stale reports (regenerate with `archaudit reports`): {stale}"


def test_committed_reports_come_out_the_same_with_numpy_dispatch_restricted(regenerated_elsewhere):
    directory, facts = regenerated_elsewhere
    assert facts["code"] == EXIT_OK
    if directory is None:
        pytest.skip(f"this CPU has none of {RESTRICTED_DISPATCH}: numpy dispatches the same kernels with the "
                    "restriction, so a restricted run would only repeat the staleness test's run")
    committed = sorted(p.name for p in REPORTS.iterdir() if p.is_file() and p.name not in TIMED + OWN_SCRIPT)
    assert sorted(p.name for p in directory.iterdir()) == committed
    differ = [name for name in committed if (directory / name).read_bytes() != (REPORTS / name).read_bytes()]
    assert differ == [], f"with NPY_DISABLE_CPU_FEATURES={RESTRICTED_DISPATCH!r} these reports differ: {differ}"


def _requirement_closure(root: str, extras: set[str]) -> set[str]:
    """Distribution names (normalised) that installing ``root[extras]`` brings in, following every requirement
    whose environment marker holds here."""
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    seen: set[str] = set()
    pending = [(root, frozenset(extras))]
    while pending:
        name, wanted = pending.pop()
        if norm(name) in seen:
            continue
        seen.add(norm(name))
        for text in metadata.requires(name) or []:
            requirement, _, marker = text.partition(";")
            requested = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(\[[^\]]*\])?", requirement)
            assert requested, text
            marker = marker.strip()
            extra = re.search(r"extra\s*==\s*[\"']([^\"']+)[\"']", marker)
            if extra and extra.group(1) not in wanted:
                continue
            if marker and not extra and not _marker_holds(marker):
                continue
            nested = frozenset(e.strip() for e in (requested.group(2) or "[]")[1:-1].split(",") if e.strip())
            pending.append((requested.group(1), nested))
    return seen


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def test_reports_import_nothing_that_the_first_readme_command_does_not_install(regenerated_elsewhere):
    """The README's first command installs ``archaudit[charts]``: ``archaudit reports`` may import only what that
    brings in (hypothesis, pytest and jsonschema are test dependencies)."""
    _, facts = regenerated_elsewhere
    installed = _requirement_closure("archaudit", {"charts"})
    owners = metadata.packages_distributions()
    imported = {module.split(".")[0] for module in facts["modules"]} - set(sys.stdlib_module_names)
    outside = sorted(
        f"{module} ({', '.join(owners[module])})" for module in imported
        if module in owners and not any(re.sub(r"[-_.]+", "-", d).lower() in installed for d in owners[module])
    )
    assert outside == [], f"imported at run time but not a runtime dependency: {outside}"


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
                    "## 5. Training, memory and scaling", "## 6. Efficiency", "## 7. Documentation claims", "## 8. Provenance"):
        assert heading in text
    assert "![parameters by component](amnl.components.svg)" in text
    assert "(20 - rmse) / params" in text
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


def test_reports_name_no_checkout_or_machine_path(regenerated):
    """A committed report must read the same from any checkout: no absolute path of this one in it."""
    for path in regenerated.iterdir():
        text = path.read_text(errors="replace")
        assert str(ROOT) not in text, path.name
        assert "/tmp/" not in text, path.name
