"""archaudit's CPU and meta passes, its fake memory passes and FlopCounterMode's run on meta never import
``torch._dynamo`` (about as long as importing torch), and anything that does import it gets torch's own behaviour back before dynamo's first line.

Oracle: ``sys.modules`` of a fresh interpreter, and the ``__dynamo_disable`` attribute torch's lazy wrapper caches
on each function (``torch._compile._disable_dynamo``), read directly."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch import nn
    import archaudit
    from archaudit import trace
    from archaudit.macs import audit_macs

    facts = {}
    # the CLI on a small model: its trace runs on a zero CPU copy, which runs no Python meta kernel
    import contextlib, io
    from archaudit.cli import main
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        facts["flops_amnl_rc"] = main(["flops", "amnl", "--format", "json"])
    facts["flops_amnl_on_cpu"] = '"traced_on": "cpu"' in printed.getvalue()
    facts["dynamo_after_flops_amnl"] = "torch._dynamo" in sys.modules
    # the passes below must spare dynamo by themselves: undo what the CLI's build did
    trace.take_back_dynamo()
    trace._scanned_modules = 0
    with torch.device("meta"):
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    x = torch.empty(2, 5, 16, device="meta")
    facts["macs"] = audit_macs(layer, [x], trace_on="meta").macs
    facts["dynamo_after_meta_trace"] = "torch._dynamo" in sys.modules
    audited = archaudit.audit("amnl")
    runs = audited.run_tools("meta")
    facts["fcm_meta_total"] = runs.results["flop_counter_meta"]["__total__"]
    facts["dynamo_after_fcm_meta"] = "torch._dynamo" in sys.modules
    from archaudit.memory import audit_memory
    facts["memory_fake"] = audit_memory(layer, [x], on="fake").as_json()
    facts["dynamo_after_fake_memory"] = "torch._dynamo" in sys.modules
    lent = sys.modules.get("torch._dynamo.config")

    # a bound method wrapped by torch's lazy decorator takes no attribute: it is left as torch made it (calling it
    # fails in torch itself, with or without archaudit)
    class Holder:
        def method(self):
            return 1
    bound = torch._disable_dynamo(Holder().method)
    trace._scanned_modules = 0
    trace.spare_dynamo()
    facts["bound_method_left"] = "torch._dynamo" not in sys.modules

    spared = list(trace._spared)
    facts["spared"] = len(spared)
    facts["twins_before"] = sum(trace.spared(fn) for fn in spared)
    if sys.argv[1] == "behind-the-watch":  # dynamo arrives without the finder seeing it: each twin hands over
        sys.meta_path.remove(trace._WATCH)
        # and by a name the stand-in for torch._dynamo does not hold, which imports the real package
        held = torch._dynamo  # the stand-in, as `from torch import _dynamo` would bind it for good
        facts["stand_in_before"] = type(held) is trace._DynamoStandIn
        held.archaudit_mark = 7  # set on the real package, imported then
        facts["compiling_through_the_stand_in"] = held.is_compiling()
    import torch._dynamo
    facts["twins_after_import"] = sum(trace.spared(fn) for fn in spared)
    facts["dynamo_is_the_package"] = torch._dynamo is sys.modules["torch._dynamo"]
    facts["mark_on_the_package"] = getattr(torch._dynamo, "archaudit_mark", None) == 7
    facts["config_kept"] = lent is not None and torch._dynamo.config is lent is sys.modules["torch._dynamo.config"]
    facts["memory_fake_with_dynamo"] = audit_memory(layer, [x], on="fake").as_json()
    facts["macs_with_dynamo"] = audit_macs(layer, [x], trace_on="meta").macs
    facts["fcm_meta_total_with_dynamo"] = audited.run_tools("meta").results["flop_counter_meta"]["__total__"]
    facts["handed_over"] = sum(
        "__dynamo_disable" in vars(fn) and not trace.spared(fn) for fn in spared
    )
    trace._scanned_modules = 0
    trace.spare_dynamo()  # with dynamo imported: nothing to spare
    facts["spared_after_import"] = sum(trace.spared(fn) for fn in spared)
    print(json.dumps(facts))
    """
)


@functools.cache
def _facts(way: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, way], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_flops_of_a_small_model_never_imports_dynamo() -> None:
    facts = _facts("watched")
    assert facts["flops_amnl_rc"] == 0 and facts["flops_amnl_on_cpu"] is True
    assert facts["dynamo_after_flops_amnl"] is False


def test_a_meta_trace_and_flop_counter_on_meta_never_import_dynamo() -> None:
    facts = _facts("watched")
    assert facts["dynamo_after_meta_trace"] is False
    assert facts["dynamo_after_fcm_meta"] is False
    assert facts["dynamo_after_fake_memory"] is False
    assert facts["bound_method_left"] is True
    # the functions were spared (each given archaudit's twin), not merely never called
    assert facts["spared"] == facts["twins_before"] and int(facts["twins_before"]) > 100  # type: ignore[call-overload]


def test_importing_dynamo_takes_every_twin_back() -> None:
    facts = _facts("watched")
    assert facts["twins_after_import"] == 0
    assert facts["spared_after_import"] == 0


def test_a_twin_hands_over_to_torch_when_dynamo_arrives_unseen() -> None:
    facts = _facts("behind-the-watch")
    assert facts["twins_after_import"] == facts["spared"]  # nobody took them back ...
    # ... and each one called since holds torch's own disabled function now (the trace and FlopCounterMode call many)
    assert int(facts["handed_over"]) > 10  # type: ignore[call-overload]
    assert facts["macs"] == facts["macs_with_dynamo"]


def test_the_fake_memory_audit_reads_dynamo_s_config_alone_and_dynamo_keeps_it() -> None:
    for way in ("watched", "behind-the-watch"):
        facts = _facts(way)
        assert facts["dynamo_is_the_package"] is True, way
        assert facts["config_kept"] is True, way  # one config module, loaded once: the one dynamo imports
        assert facts["memory_fake"] == facts["memory_fake_with_dynamo"], way
    behind = _facts("behind-the-watch")
    assert behind["stand_in_before"] is True and behind["compiling_through_the_stand_in"] is False
    assert behind["mark_on_the_package"] is True  # what was set on the stand-in is on the package


def test_counts_are_the_same_with_dynamo_imported() -> None:
    facts = _facts("watched")
    # TransformerEncoderLayer(16, 2, 32) on 2x5x16: in_proj 10x16x48 + out_proj 10x16x16 + scores and values
    # 2x2x5x5x8x2 + linear1 10x16x32 + linear2 10x32x16 = 7,680 + 2,560 + 1,600 + 5,120 + 5,120 = 22,080
    assert facts["macs"] == facts["macs_with_dynamo"] == 22_080
    assert facts["fcm_meta_total"] == facts["fcm_meta_total_with_dynamo"]


_LIFTING = textwrap.dedent(
    """
    import json, sys
    import torch
    from torch import nn
    from archaudit.memory import audit_memory

    class Lifting(nn.Module):  # hands the fake mode tensors it did not make: a lifted constant, a plain attribute
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(8, 8)
            self.scale = torch.ones(8)
        def forward(self, x):
            return self.linear(x) * torch.tensor(2.0) + self.scale

    model = Lifting()
    x = torch.empty(3, 8, device="meta")
    first = audit_memory(model, [x], on="fake").as_json()  # dynamo is imported during this pass, by torch
    facts = {"dynamo_imported_by_the_pass": "torch._dynamo" in sys.modules}
    facts["same_again"] = audit_memory(model, [x], on="fake").as_json() == first
    on_cpu = audit_memory(model, [x], on="cpu").as_json()
    facts["same_on_cpu"] = {k: v for k, v in on_cpu.items() if k not in ("measured_on", "notes")} == {
        k: v for k, v in first.items() if k not in ("measured_on", "notes")
    }
    print(json.dumps(facts))
    """
)


def test_a_fake_pass_that_imports_dynamo_midway_measures_what_it_measures_after() -> None:
    """A forward that hands the fake mode a tensor it did not make has torch import dynamo during the pass (the
    stand-in cannot spare that); the twins are taken back mid-pass, and the figures are those of a pass with dynamo
    imported from the start and of the CPU."""
    out = subprocess.run([sys.executable, "-c", _LIFTING], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts == {"dynamo_imported_by_the_pass": True, "same_again": True, "same_on_cpu": True}
