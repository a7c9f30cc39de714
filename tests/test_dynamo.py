"""archaudit's meta passes and FlopCounterMode's run on meta never import ``torch._dynamo`` (about as long as
importing torch), and anything that does import it gets torch's own behaviour back before dynamo's first line.

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
    with torch.device("meta"):
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    x = torch.empty(2, 5, 16, device="meta")
    facts["macs"] = audit_macs(layer, [x], trace_on="meta").macs
    facts["dynamo_after_meta_trace"] = "torch._dynamo" in sys.modules
    audited = archaudit.audit("amnl")
    runs = audited.run_tools("meta")
    facts["fcm_meta_total"] = runs.results["flop_counter_meta"]["__total__"]
    facts["dynamo_after_fcm_meta"] = "torch._dynamo" in sys.modules
    spared = list(trace._spared)
    facts["spared"] = len(spared)
    facts["twins_before"] = sum(vars(fn).get("__dynamo_disable") is fn for fn in spared)
    import torch._dynamo
    facts["twins_after"] = sum("__dynamo_disable" in vars(fn) and vars(fn)["__dynamo_disable"] is fn for fn in spared)
    facts["left_to_take_back"] = len(trace._spared)
    facts["macs_with_dynamo"] = audit_macs(layer, [x], trace_on="meta").macs
    facts["fcm_meta_total_with_dynamo"] = audited.run_tools("meta").results["flop_counter_meta"]["__total__"]
    print(json.dumps(facts))
    """
)


@functools.cache
def _facts() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_meta_trace_and_flop_counter_on_meta_never_import_dynamo() -> None:
    facts = _facts()
    assert facts["dynamo_after_meta_trace"] is False
    assert facts["dynamo_after_fcm_meta"] is False
    # the functions were spared (each given itself as its twin), not merely never called
    assert facts["spared"] == facts["twins_before"] and int(facts["twins_before"]) > 100  # type: ignore[call-overload]


def test_importing_dynamo_takes_every_twin_back() -> None:
    facts = _facts()
    assert facts["twins_after"] == 0 and facts["left_to_take_back"] == 0


def test_counts_are_the_same_with_dynamo_imported() -> None:
    facts = _facts()
    # TransformerEncoderLayer(16, 2, 32) on 2x5x16: in_proj 10x16x48 + out_proj 10x16x16 + scores and values
    # 2x2x5x5x8x2 + linear1 10x16x32 + linear2 10x32x16 = 7,680 + 2,560 + 1,600 + 5,120 + 5,120 = 22,080
    assert facts["macs"] == facts["macs_with_dynamo"] == 22_080
    assert facts["fcm_meta_total"] == facts["fcm_meta_total_with_dynamo"]


def test_sparing_does_nothing_once_dynamo_is_imported() -> None:
    import torch._dynamo  # noqa: F401 - the state under test

    from archaudit import trace

    before = len(trace._spared)
    trace._scanned_modules = 0  # as if modules had been imported since the last look
    trace.spare_dynamo()
    assert len(trace._spared) == before == 0
