"""archaudit.diff and its renderer: module paths added, removed and changed between two audits or an audit and a
committed baseline, totals and their growth, and the baseline loader's refusals.

Oracles: ``numel()`` of the real modules for parameters, :func:`archaudit.macs.audit_macs` run on its own for
MACs, and hand-built snapshots whose figures are written out for the threshold arithmetic."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from torch import nn

from archaudit.audit import audit
from archaudit.diff import (
    MAX_BASELINE_BYTES,
    BaselineError,
    Change,
    DiffError,
    ModuleFigures,
    Snapshot,
    diff,
    load_baseline,
    snapshot,
)
from archaudit.errors import ArchauditError
from archaudit.macs import audit_macs
from archaudit.render.diff import diff_json, diff_markdown
from archaudit.render.flops import flops_json


class Before(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.ReLU()
        self.old = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.old(self.act(self.fc1(x))))


class After(nn.Module):
    """``fc1`` widened (16 -> 32 outputs), ``old`` removed, ``new`` added; ``act`` and ``head`` as they were."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.act = nn.ReLU()
        self.new = nn.Linear(32, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.new(self.act(self.fc1(x))))


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs_of(model: nn.Module, shape: tuple[int, ...], name: str) -> int:
    """The oracle for MACs: audit_macs on its own, outside archaudit.diff."""
    return audit_macs(model, [torch.empty(shape, device="meta")]).record(name).macs


def side(model: nn.Module, shape: str = "1x8") -> Snapshot:
    a = audit(model, shape)
    return snapshot(a.params, a.flops)


def hand(modules: list[tuple[str, str, int | None, int | None]], inputs: tuple[str, ...] | None = ("1x8",)) -> Snapshot:
    """A snapshot from (path, type, params, MACs); trainable = params."""
    return Snapshot("M", "hand", inputs, tuple(ModuleFigures(p, t, k, k, m) for p, t, k, m in modules))


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return Before(), After()


def test_added_removed_widened_against_numel_and_audit_macs(models):
    before, after = models
    d = diff(side(before), side(after))
    assert [(m.path, m.change) for m in d.modules] == [
        ("new", Change.ADDED),
        ("old", Change.REMOVED),
        ("", Change.CHANGED),  # the root's class: Before -> After, its figures (0 parameters, 0 MACs) the same
        ("fc1", Change.CHANGED),
    ]
    assert d.unchanged == 2  # act, head: on both sides with the same type and figures
    new, old, root, fc1 = d.modules
    assert root.type_changed and root.type == "Before -> After" and root.params.change == root.macs.change == 0
    # oracle: numel() of the real modules
    assert (new.params.before, new.params.after) == (None, numel(after.new))
    assert (old.params.before, old.params.after) == (numel(before.old), None)
    assert fc1.params.change == numel(after.fc1) - numel(before.fc1) == 288 - 144  # (8*32 + 32) - (8*16 + 16)
    assert fc1.trainable.change == fc1.params.change
    # oracle: audit_macs on each model
    assert new.macs.after == macs_of(after, (1, 8), "new") == 32 * 16
    assert old.macs.before == macs_of(before, (1, 8), "old") == 16 * 16
    assert fc1.macs.change == macs_of(after, (1, 8), "fc1") - macs_of(before, (1, 8), "fc1") == 8 * 32 - 8 * 16
    assert not fc1.type_changed and fc1.type == "Linear"
    params = d.total("params")
    assert (params.before, params.after) == (numel(before), numel(after)) == (484, 884)  # 144+272+68, 288+528+68
    assert params.percent == pytest.approx(400 / 484 * 100)
    macs = d.total("macs")
    assert macs.before == audit_macs(before, [torch.empty(1, 8, device="meta")]).macs == 128 + 256 + 64
    assert macs.after == audit_macs(after, [torch.empty(1, 8, device="meta")]).macs == 256 + 512 + 64
    assert d.total("memory").before is None and d.incomparable == () and not d.inputs_differ
    assert [t.name for t in d.grown_over(82)] == ["params", "trainable", "macs"]  # +82.6% and +85.7%
    assert [t.name for t in d.grown_over(85)] == ["macs"]  # 384 / 448 = 85.71%


def test_a_model_against_itself_has_no_changes_and_zero_growth(models):
    before, _ = models
    d = diff(side(before), side(before))
    assert d.modules == () and d.unchanged == len(list(before.named_modules())) == 5
    for total in d.totals:
        if total.name != "memory":  # not measured on either side: None, not 0
            assert total.change == 0 and total.percent == 0.0, total
    assert d.total("memory").change is None
    assert d.grown_over(0) == []  # a growth of 0 is not over 0%


def test_type_change_at_one_path_is_a_change_that_says_so():
    d = diff(hand([("", "M", 0, 0), ("x", "Linear", 10, 5)]), hand([("", "M", 0, 0), ("x", "Conv1d", 10, 5)]))
    (x,) = d.modules
    assert x.change is Change.CHANGED and x.type_changed and x.type == "Linear -> Conv1d"
    assert x.params.change == 0 and d.unchanged == 1


def test_differing_inputs_are_stated(models):
    before, _ = models
    d = diff(side(before, "1x8"), side(before, "2x8"))
    assert d.inputs_differ and any("not like for like" in note for note in d.notes)
    # oracle: audit_macs on batch 2; every Linear's MACs double
    assert d.total("macs").after == audit_macs(before, [torch.empty(2, 8, device="meta")]).macs == 2 * 448
    assert "not like for like" in diff_markdown(d)


def test_memory_figures_and_a_path_the_model_lacks(models):
    before, _ = models
    a = audit(before, "1x8")
    paths = [r.name for r in a.params.records]
    with_memory = snapshot(a.params, a.flops, dict.fromkeys(paths, 100))
    more = snapshot(a.params, a.flops, {**dict.fromkeys(paths, 100), "fc1": 164})
    d = diff(with_memory, more)
    assert [(m.path, m.memory.change) for m in d.modules] == [("fc1", 64)]
    assert d.total("memory").before == 100 * 5 and d.total("memory").percent == pytest.approx(64 / 500 * 100)
    assert diff(snapshot(a.params, a.flops), with_memory).incomparable == ("memory",)
    partial = snapshot(a.params, a.flops, {"fc1": 1})
    assert partial.total("memory") is None  # a partial sum is no total
    with pytest.raises(DiffError, match="'nope'"):
        snapshot(a.params, a.flops, {"nope": 1})
    with pytest.raises(DiffError, match=r"'fc1'.*-1"):
        snapshot(a.params, a.flops, {"fc1": -1})


def write_json(tmp_path: Path, data: object, name: str = "baseline.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


def test_flops_json_baseline_loads_back_with_no_mac_change(models, tmp_path):
    before, _ = models
    a = audit(before, "1x8")
    baseline = load_baseline(write_json(tmp_path, flops_json(a.flops)))
    # the flops JSON holds no parameters: absent, not 0
    assert all(m.params is None and m.trainable is None for m in baseline.modules)
    assert baseline.total("params") is None and baseline.inputs == ("1x8",)
    d = diff(baseline, snapshot(a.params, a.flops))
    assert d.total("macs").change == 0 and d.total("macs").before == a.flops.macs  # oracle: the audit it was taken from
    assert d.modules == () and d.unchanged == 5
    assert d.incomparable == ("params", "trainable")
    assert any("parameters not compared" in note for note in d.notes)
    assert d.grown_over(0) == []  # parameters cannot fail a gate they are not compared on


def test_audit_json_baseline_carries_parameters(models, tmp_path):
    before, after = models
    a = audit(before, "1x8")
    baseline = load_baseline(write_json(tmp_path, json.loads(a.to_json())))
    assert baseline.total("params") == numel(before) and baseline.total("macs") == a.flops.macs
    d = diff(baseline, side(after))
    assert d.incomparable == () and d.total("params").change == numel(after) - numel(before) == 400


def test_grown_over_exactly_at_the_percentage_passes_just_above_fails():
    def grown(b: int, a: int, pct: float | str | Fraction) -> list[str]:
        return [t.name for t in diff(hand([("x", "L", None, b)]), hand([("x", "L", None, a)])).grown_over(pct)]

    assert grown(1000, 1100, 10) == []  # +100 is 10% of 1,000 exactly
    assert grown(1000, 1101, 10) == ["macs"]  # +10.1%
    assert grown(1000, 1100, 9.99) == ["macs"]
    assert grown(1000, 1003, 0.3) == []  # +0.3% exactly: 0.3 read as 3/10, not as the float just below it
    assert grown(1000, 1003, "0.3") == [] and grown(1000, 1004, Fraction(3, 10)) == ["macs"]
    assert grown(1000, 900, 0) == []  # shrinking never fails
    assert grown(0, 1, 10**6) == ["macs"]  # from 0, growth is over every percentage
    zero = diff(hand([("x", "L", None, 0)]), hand([("x", "L", None, 1)])).total("macs")
    assert zero.percent is None and zero.change == 1
    for bad in (-1, "5%", float("nan"), float("inf"), True):
        with pytest.raises(DiffError, match="--fail-over"):
            grown(1, 2, bad)  # type: ignore[arg-type]


def test_markdown_totals_first_and_cells_escaped():
    before = hand([("", "Root", 0, 0), ("a|b", "X*Y", 10, 5), ("gone", "[link](x)", 1, 1)])
    after = hand([("", "Root", 0, 0), ("a|b", "X*Y", 20, 5), ("`new`", "N_", 3, 0)])
    text = diff_markdown(diff(before, after), title="t|itle")
    assert text.startswith("# Diff: t\\|itle\n")
    assert text.index("| total") < text.index("## Added") < text.index("## Removed") < text.index("## Changed")
    assert "a\\|b" in text and "X\\*Y" in text and "\\[link\\](x)" in text and "\\`new\\`" in text and "N\\_" in text
    assert "10 → 20 (+10)" in text and "| parameters " in text and "+109.09%" in text  # (23 - 11) / 11
    # every table row has as many unescaped cell separators as its header
    for block in text.split("\n\n"):
        rows = [r.replace("\\|", "") for r in block.splitlines() if r.startswith("|")]
        assert len({r.count("|") for r in rows}) <= 1, block
    assert "memory" not in text  # measured on neither side: no column


def test_json_is_plain_and_in_a_fixed_order(models):
    before, after = models
    data = diff_json(diff(side(before), side(after)))
    assert list(data) == [
        "before",
        "after",
        "inputs_differ",
        "incomparable",
        "notes",
        "totals",
        "counts",
        "added",
        "removed",
        "changed",
    ]
    assert list(data["totals"]) == ["params", "trainable", "macs", "memory"]
    assert data["totals"]["params"] == {"before": 484, "after": 884, "change": 400, "percent": 400 / 484 * 100}
    assert data["counts"] == {"added": 1, "removed": 1, "changed": 2, "unchanged": 2}
    assert data["changed"][1]["path"] == "fc1" and data["changed"][1]["macs"] == {
        "before": 128,
        "after": 256,
        "change": 128,
    }
    assert json.dumps(data) == json.dumps(diff_json(diff(side(before), side(after))))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{not json", ":1: not valid JSON"),
        ("[1, 2]", "(top level): expected an object, got a list"),
        ('{"model": "M"}', "modules: missing"),
        (
            '{"model": "M", "inputs": [], "macs": 0, "modules": [{"name": "", "type": "M", "macs": "12"}]}',
            'modules[0].macs: expected a non-negative integer, got "12"',
        ),
        (
            '{"model": "M", "inputs": [], "macs": 0, "modules": [{"name": "", "type": "M", "macs": true}]}',
            "modules[0].macs: expected a non-negative integer, got true",
        ),
        ('{"model": "M", "inputs": [], "macs": 0, "modules": [{"name": "", "type": "M"}]}', "modules[0].macs: missing"),
        ('{"model": "M", "inputs": [3], "macs": 0, "modules": []}', "inputs[0]: expected a shape string"),
        (
            '{"model": "M", "inputs": [], "macs": 7, "modules": [{"name": "", "type": "M", "macs": 5}]}',
            "macs: is 7 but the modules' figures sum to 5",
        ),
        (
            '{"model": "M", "inputs": [], "macs": 0, "modules": [{"name": "a", "type": "M", "macs": 0}, '
            '{"name": "a", "type": "M", "macs": 0}]}',
            "modules[1].name: path 'a' appears twice",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"macs": 1' + "0" * 5000 + "}", "not valid JSON here"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_malformed_baselines_give_one_line_naming_file_and_key(tmp_path, text, where):
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BaselineError) as caught:
        load_baseline(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:") and where in message and "\n" not in message
    assert isinstance(caught.value, ArchauditError) and isinstance(caught.value, ValueError)


def test_huge_missing_and_non_regular_baselines_are_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(MAX_BASELINE_BYTES + 1)  # sparse: its size is known without writing 16 MiB
    with pytest.raises(BaselineError, match=rf"huge.json: is {MAX_BASELINE_BYTES + 1:,} bytes"):
        load_baseline(huge)
    with pytest.raises(BaselineError, match="at most 10 bytes"):
        load_baseline(write_json(tmp_path, {"model": "M"}), max_bytes=10)
    with pytest.raises(BaselineError, match="no such baseline file"):
        load_baseline(tmp_path / "absent.json")
    with pytest.raises(BaselineError, match="not a regular file"):
        load_baseline(tmp_path)
