"""archaudit.audit(): one build and one trace feed the parameters, the MACs and the peer tools.

Oracles: numel() for parameters; the analytic MACs of a Linear (batch x in x out); the number of times the
user's builder runs, counted by the builder itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archaudit
import archaudit.targets
from archaudit.errors import ArchauditError, TargetError

BUILDER = '''
import torch
from torch import nn
from pathlib import Path

CALLS = Path(__file__).with_suffix(".calls")

def build():
    CALLS.write_text(CALLS.read_text() + "x" if CALLS.exists() else "x")
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
'''


def test_an_nn_module_is_audited_as_given():
    model = nn.Linear(3, 4)
    audited = archaudit.audit(model, "2x3")
    assert audited.target.model is model and audited.target.device == "cpu"
    assert audited.params.total == sum(p.numel() for p in model.parameters()) == 3 * 4 + 4
    assert audited.flops is not None and audited.flops.macs == 2 * 3 * 4  # batch 2 x in 3 x out 4


def test_every_peer_tool_runs_on_a_module_given_on_the_cpu():
    comparison = archaudit.audit(nn.Linear(3, 4), "2x3").compare()
    assert comparison.errors == {}
    # fvcore and FlopCounterMode count weight MACs: 2*3*4; torchinfo adds the bias: + 2*4 outputs
    assert comparison.totals == {
        "archaudit": 24,
        "torchinfo": 32,
        "fvcore": 24,
        "flop_counter_meta": 24,
        "flop_counter_cpu": 24,
    }


def test_a_target_is_built_once_for_the_audit_and_once_for_the_cpu_tools(tmp_path: Path, monkeypatch):
    path = tmp_path / "model.py"
    path.write_text(BUILDER)
    resolved = []
    resolve = archaudit.targets._resolve_callable
    monkeypatch.setattr(archaudit.targets, "_resolve_callable", lambda t: resolved.append(t) or resolve(t))
    audited = archaudit.audit(f"{path}:build", "5x3")
    assert audited.target.device == "meta"
    assert audited.params.total == (3 * 4 + 4) + (4 * 2 + 2)
    assert audited.flops is not None and audited.flops.macs == 5 * (3 * 4 + 4 * 2)
    audited.compare()
    assert path.with_suffix(".calls").read_text() == "xx"  # on meta for the audit, on the CPU for the peers
    assert resolved == [f"{path}:build"]  # the TARGET string is resolved once, never handed to a tool


def test_a_meta_module_gets_a_reproducible_cpu_copy_for_the_tools():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    audited = archaudit.audit(model, "2x3")
    assert audited.target.cpu_copy is not None
    first, second = audited.target.cpu_copy(), audited.target.cpu_copy()
    assert all(not t.is_meta for t in first.state_dict().values())
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name  # re-initialised under a fixed seed
    assert torch.equal(first[1].running_var, torch.ones(4))  # reset_running_stats, not uninitialised memory
    assert audited.compare().errors == {}


def test_a_model_that_is_not_a_reference_needs_its_input():
    with pytest.raises(TargetError, match="no example input: give its input shapes"):
        archaudit.audit(nn.Linear(3, 4))


def test_parameters_only_needs_no_input_and_compares_nothing():
    audited = archaudit.audit(nn.Linear(3, 4), macs=False)
    assert audited.flops is None and audited.params.total == 16
    with pytest.raises(ArchauditError, match="no MACs were counted"):
        audited.compare()


def test_a_reference_model_brings_its_example_input():
    audited = archaudit.audit("dcnn")
    assert audited.target.reference is not None and audited.target.device == "meta"
    assert audited.params.total == 45_372  # as tests/test_reference_models.py pins it for FD001
    assert audited.flops is not None and audited.flops.inputs == ("1x30x14",)


def test_a_copied_registry_is_used_for_every_count():
    registry = archaudit.REGISTRY.copy()
    _, linear = registry.lookup_rule(nn.Linear) or (None, None)
    assert linear is not None
    import dataclasses

    from archaudit.records import MacCount

    registry.add(dataclasses.replace(linear, macs=lambda m, call: MacCount(macs=7)), nn.Linear, override=True)
    audited = archaudit.audit(nn.Linear(3, 4), "2x3", registry=registry)
    assert audited.flops is not None and audited.flops.macs == 7
    assert archaudit.audit(nn.Linear(3, 4), "2x3").flops.macs == 24  # REGISTRY itself is untouched


def _seven_mac_linear() -> archaudit.FormulaRegistry:
    import dataclasses

    from archaudit.records import MacCount

    registry = archaudit.REGISTRY.copy()
    _, linear = registry.lookup_rule(nn.Linear) or (None, None)
    assert linear is not None
    registry.add(dataclasses.replace(linear, macs=lambda m, call: MacCount(macs=7)), nn.Linear, override=True)
    return registry


def test_a_budget_counts_with_the_registry_it_is_given():
    registry = _seven_mac_linear()
    assert archaudit.check_budget(nn.Linear(3, 4), input="2x3", macs=7, registry=registry).ok
    assert not archaudit.check_budget(nn.Linear(3, 4), input="2x3", macs=7).ok  # 24 with REGISTRY's rule
    archaudit.assert_budget(nn.Linear(3, 4), input="2x3", macs=(7, 7), registry=registry)


def test_a_report_counts_with_the_registry_it_is_given():
    from archaudit.report_data import build_report

    ours = build_report("dcnn", compare=False, registry=_seven_mac_linear())
    stock = build_report("dcnn", compare=False)
    linears = [r for r in ours.flops.records if r.type == "Linear"]
    assert linears and all(r.macs == 7 for r in linears)
    assert ours.flops.macs != stock.flops.macs and ours.params.total == stock.params.total


def test_with_inputs_is_a_flag_and_an_input_of_that_name_is_refused():
    """archaudit's own keyword is a bool: a shape passed under its name would be swallowed silently otherwise."""
    with pytest.raises(TypeError, match=r"with_inputs='1x8'.*keyword_inputs"):
        archaudit.audit(nn.Linear(8, 2), with_inputs="1x8")
