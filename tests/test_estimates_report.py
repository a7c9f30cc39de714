"""benchmarks/estimates.py: the committed reports/estimates.md, reports/estimates.json and reports/estimates-cost.svg
are what the script writes now (staleness, byte for byte), and the figures in them hold.

Oracles: numel() of every parameter once; hand arithmetic of the formulas, written beside each check; the dimensions
of the config (the MAC polynomial's T^2 coefficient); audit_macs at T = 1024 (the polynomial's value there);
FlopCounterMode on meta over forward plus backward (the small Llama's training MACs).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from benchmark_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
FILES = ("estimates.md", "estimates.json", "estimates-cost.svg")

# Found, not imported: importing transformers at collection would cost every pytest-xdist worker its import time.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None or importlib.util.find_spec("matplotlib") is None,
    reason="transformers (a test dependency) and matplotlib (the charts extra) write this report",
)


def _script() -> Any:
    return load_script("estimates")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, list[Any]]:
    """The script, the directory it wrote into, and its audited rows: one regeneration for the whole module."""
    script = _script()
    where = tmp_path_factory.mktemp("estimates")
    rows = script.write(where)
    return script, where, rows


@pytest.fixture(scope="module")
def data(written: tuple[Any, Path, list[Any]]) -> dict[str, Any]:
    return json.loads((written[1] / "estimates.json").read_text())  # type: ignore[no-any-return]


def _model(data: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [m for m in data["models"] if m["key"] == key]
    return found  # type: ignore[no-any-return]


def _estimate(model: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [e for e in model["estimates"]["estimates"] if e["name"] == name]
    return found  # type: ignore[no-any-return]


def test_committed_files_are_what_the_script_writes(written: tuple[Any, Path, list[Any]]) -> None:
    """Golden test: regenerate into a temporary directory and compare byte for byte with reports/ (run
    `python benchmarks/estimates.py` to refresh them)."""
    _, where, _ = written
    assert sorted(p.name for p in where.iterdir()) == sorted(FILES)
    stale = [name for name in FILES if (where / name).read_bytes() != (REPORTS / name).read_bytes()]
    assert stale == [], f"stale (regenerate with `python benchmarks/estimates.py`): {stale}"


def test_parameters_are_numel(written: tuple[Any, Path, list[Any]], data: dict[str, Any]) -> None:
    """Oracle: numel() of every parameter once (``parameters()`` yields a tied tensor once)."""
    _, _, rows = written
    numel = {r.spec.key: sum(p.numel() for p in r.model.parameters()) for r in rows}
    assert numel == {"gpt2": 124_439_808, "llama": 54_927_872}
    for key, count in numel.items():
        assert _model(data, key)["exact"]["parameters"] == count
    # Llama by hand: 32000*512 embedding + 8 * (512*512 q + 2*512*128 k, v + 512*512 o + 3*512*1376 MLP + 2*512
    # norms) + 512 final norm + 512*32000 untied lm_head
    layer = 2 * 512 * 512 + 2 * 512 * 128 + 3 * 512 * 1376 + 2 * 512  # 2,769,920
    assert 32000 * 512 + 8 * layer + 512 + 512 * 32000 == 54_927_872


def test_gpt2_figures_are_the_formulas(data: dict[str, Any]) -> None:
    """Oracle: hand arithmetic, D = 1024 tokens. N = 124,439,808; embeddings wte 50257*768 = 38,597,376 + wpe
    1024*768 = 786,432, so non-embedding N = 85,056,000."""
    gpt2 = _model(data, "gpt2")
    assert _estimate(gpt2, "6N")["value_flops"] == 6 * 124_439_808 * 1024  # 764,558,180,352
    assert _estimate(gpt2, "kaplan_6N")["value_flops"] == 6 * 85_056_000 * 1024
    # 2N + 2 n_layer n_ctx d_attn per token: 2*85,056,000*1024 + 2*12*1024*768*1024
    assert _estimate(gpt2, "kaplan_forward")["value_flops"] == 174_194_688_000 + 19_327_352_832
    six_n = _estimate(gpt2, "6N")
    exact = 2 * gpt2["exact"]["training_macs"]
    assert six_n["exact_flops"] == exact == 874_944_921_600
    assert six_n["relative_error"] == (764_558_180_352 - exact) / exact  # -12.62%
    # Megatron's 72 B s l h^2 (1 + s/6h + V/12lh) with B=1, s=1024, l=12, h=768, V=50257 is GPT-2's exact count
    megatron = _estimate(gpt2, "megatron")
    assert megatron["value_flops"] == 3 * 12 * (24 * 1024 * 768**2 + 4 * 1024**2 * 768) + 6 * 1024 * 768 * 50257
    assert megatron["value_flops"] == megatron["exact_flops"]


def test_llama_cost_polynomial(data: dict[str, Any]) -> None:
    """Oracles: the config's dimensions give the T^2 coefficient (QK^T and PV: 2 * 8 layers * 8 heads * 64 head_dim)
    and the T coefficient (per-token weights); audit_macs at T = 1024 is the polynomial's value there."""
    macs = data["cost_against_sequence_length"]["macs"]
    layers = 8 * (512 * (8 + 2 * 2) * 64 + 512 * 512 + 3 * 512 * 1376)  # 22,151,168: QKV, output, gate/up/down
    assert macs["coefficients"] == {"2": 2 * 8 * 8 * 64, "1": layers + 512 * 32000 + 64 // 2}
    forward = _model(data, "llama")["exact"]["forward_macs"]
    assert 8192 * 1024**2 + 38_535_200 * 1024 == forward == 48_049_979_392
    # 8192 T^2 >= 38,535,200 T from T = ceil(38,535,200 / 8192) = ceil(4704.00...) = 4705
    assert macs["crossovers"] == [{"higher": 2, "lower": 1, "at": 4705}]


def test_llama_training_macs_against_flop_counter(written: tuple[Any, Path, list[Any]], data: dict[str, Any]) -> None:
    """Oracle: FlopCounterMode on meta over forward plus backward of the logits' sum / 2 equals archaudit's training
    MACs, so the rotary embedding's uncounted backward is truly 0, as the report says."""
    import torch
    from archaudit.trace import meta_autocast
    from torch.utils.flop_counter import FlopCounterMode

    script = written[0]
    (spec,) = [s for s in script.MODELS if s.key == "llama"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = script.build(spec)
    counter = FlopCounterMode(display=False)
    with meta_autocast(), counter:
        model(input_ids=torch.zeros(1, 1024, dtype=torch.int64, device="meta")).logits.sum().backward()
    exact = _model(data, "llama")["exact"]
    assert counter.get_total_flops() == 2 * exact["training_macs"] == 2 * 144_149_872_640
    assert exact["uncounted_modules"] == ["model.rotary_emb"]


def test_markdown_and_chart(written: tuple[Any, Path, list[Any]]) -> None:
    _, where, _ = written
    text = (where / "estimates.md").read_text()
    assert text.startswith("# The quoted transformer FLOPs estimates, audited\n")
    assert "`python benchmarks/estimates.py`" in text
    assert "forward MACs: 8,192*T^2 + 38,535,200*T: 8,192*T^2 dominates from T=4,705" in text
    assert "![forward MACs of the small Llama against T, terms stacked](estimates-cost.svg)" in text
    assert "| 6N                  | training |                      -12.62% |" in text
    assert str(ROOT) not in text and "/tmp/" not in text  # reads the same from any checkout
    svg = (where / "estimates-cost.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<dc:date>" not in svg  # deterministic metadata: no date in the file
