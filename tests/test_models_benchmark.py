"""benchmarks/models.py, the table in reports/models.md, on two of its models: the figures it reports hold.

Oracles: numel() of every parameter once; FlopCounterMode on meta / 2 over the same forward pass; a budget set at
the audited figures, checked without allow_unsupported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from benchmark_scripts import load_script

# Found, not imported: importing transformers at collection would cost every pytest-xdist worker its import time.
NEEDS_TRANSFORMERS = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="transformers is a test dependency"
)
COMMITTED = Path(__file__).resolve().parents[1] / "reports" / "models.md"



def _script():
    return load_script("models")


def _committed_row(name: str) -> list[str]:
    for line in COMMITTED.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == name:
            return cells
    raise AssertionError(f"{name} has no row in {COMMITTED}")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("GPT-2", marks=NEEDS_TRANSFORMERS),
        pytest.param("Llama (GQA 4/2)", marks=NEEDS_TRANSFORMERS),
        "timm ViT blocks (torch-only)",
        "torchvision Swin and ConvNeXt blocks (torch-only)",
    ],
)
def test_a_model_of_the_table_is_counted_exactly_and_within_its_own_budget(name):
    script = _script()
    row = script.measure(name, runs=1)
    assert row.params == row.numel
    assert row.macs == row.flop_counter_macs
    assert row.macs_outcomes["unsupported"] == 0 and row.params_outcomes["unsupported"] == 0
    assert row.unsupported_ops == {}
    assert row.budget_ok
    # the committed table is not stale in its counts (its times are this machine's and are not compared)
    committed = _committed_row(name)
    fresh = [c.strip() for c in script.markdown([row]).splitlines()[-1].strip("|").split("|")]
    assert committed[:-1] == fresh[:-1]
