"""benchmarks/models.py, the table in reports/models.md, on two of its models: the figures it reports hold.

Oracles: numel() of every parameter once; FlopCounterMode on meta / 2 over the same forward pass; a budget set at
the audited figures, checked without allow_unsupported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# Found, not imported: importing transformers at collection would cost every pytest-xdist worker its import time.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is a test dependency")

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "models.py"


def _script():
    spec = importlib.util.spec_from_file_location("benchmarks_models", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["GPT-2", "Llama (GQA 4/2)"])
def test_a_model_of_the_table_is_counted_exactly_and_within_its_own_budget(name):
    row = _script().measure(name, runs=1)
    assert row.params == row.numel
    assert row.macs == row.flop_counter_macs
    assert row.macs_outcomes["unsupported"] == 0 and row.params_outcomes["unsupported"] == 0
    assert row.unsupported_ops == {}
    assert row.budget_ok
