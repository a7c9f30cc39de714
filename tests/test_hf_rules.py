"""The rules for Hugging Face ``transformers`` layers (archaudit/formulas/hf.py), keyed by qualified name.

The properties of each rule run in the generic tests, from the strategies of tests/strategies.py (``HF_STRATEGIES``):
parameters against numel() in test_param_formulas.py, Conv1D's MACs against FlopCounterMode on meta in
test_mac_formulas.py, the bias, norm and activation columns in test_columns.py. This file holds what is particular
to name keys and to whole models. Oracles, named in each test's docstring:

* **the installed classes**: each name key is the qualified name of a class transformers defines;
* **sys.modules** in a fresh interpreter: importing archaudit imports no transformers module;
* **numel()** of real models built from small configs on meta (random weights, nothing from a hub);
* **FlopCounterMode on meta** over the same forward pass;
* **hand arithmetic**, beside each pinned figure.

Without transformers every test here is skipped, except the import check, which holds either way.
"""

from __future__ import annotations

import importlib
from typing import Any

import archaudit
import pytest
import torch
from archaudit import REGISTRY, Status
from archaudit.macs import audit_macs
from archaudit.registry import qualified_name
from fresh_process import top_level_modules_after_importing_archaudit
from oracles import flop_counter_macs
from strategies import HF_STRATEGIES
from torch import nn

HF_FAMILIES = ("hf_conv1d", "hf_rmsnorm", "hf_activation", "hf_attention")
NAME_KEYS = [key for key in REGISTRY if isinstance(key, str) and key.startswith("transformers.")]


def _transformers() -> Any:
    return pytest.importorskip("transformers", reason="transformers is not installed (no dependency of archaudit)")


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())




# --------------------------------------------------------------------------------------------- the names


def test_the_hf_rules_are_the_ones_declared() -> None:
    """Oracle: the registry's listing. Every transformers name key is in one of the four families, and the
    strategies (tests/strategies.py) list the same names, written out there independently."""
    assert sorted(NAME_KEYS) == sorted(key for family in HF_FAMILIES for key in REGISTRY.keys(family=family))
    assert sorted(NAME_KEYS) == sorted(HF_STRATEGIES)
    assert len(NAME_KEYS) == 17  # Conv1D + 5 RMSNorms + 5 activations + 6 attentions


@pytest.mark.parametrize("key", NAME_KEYS, ids=lambda key: key.rpartition(".")[2])
def test_each_name_key_is_the_qualified_name_of_an_installed_class(key: str) -> None:
    """Oracle: the installed transformers. Importing the key's module and taking its attribute gives an nn.Module
    subclass whose qualified name is the key, and the registry finds the rule for that class under it: a rename or
    a move upstream fails here instead of matching nothing."""
    _transformers()
    module_name, _, class_name = key.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    assert isinstance(cls, type) and issubclass(cls, nn.Module), f"{key} is not a class in transformers"
    assert qualified_name(cls) == key
    found = REGISTRY.lookup_rule(cls)
    assert found is not None and found[0] is cls and found[1] is dict(REGISTRY.rules())[key]


def test_importing_archaudit_imports_no_transformers() -> None:
    """Oracle: sys.modules in a fresh interpreter. Declaring the rules by name costs a user nothing: archaudit,
    its formulas and an audit import no transformers module."""
    assert "transformers" not in top_level_modules_after_importing_archaudit()


# --------------------------------------------------------------------------------------------- pinned examples


def test_conv1d_pinned() -> None:
    """Hand arithmetic; numel() and FlopCounterMode on meta agree."""
    transformers = _transformers()
    with torch.device("meta"):
        layer = transformers.pytorch_utils.Conv1D(nf=6, nx=4)
    record = archaudit.audit_params(layer).record("")
    assert (record.status, record.family, record.formula) == (Status.FORMULA, "hf_conv1d", "4*6 + 6")
    assert record.formula_params == numel(layer) == 30  # 4*6 + 6
    x = torch.empty((2, 5, 4), device="meta")
    counted = audit_macs(layer, [x], flop_counter=False).record("")
    assert counted.source == "formula"
    assert counted.macs == flop_counter_macs(layer, x) == 240  # 2*5 tokens * 4*6
    assert counted.counts.bias == 60  # 2*5 tokens * 6 outputs


def test_rms_norms_pinned() -> None:
    """Hand arithmetic; numel() agrees. Each RMSNorm of the family: weight only; norm column = output elements."""
    _transformers()
    for key in REGISTRY.keys(family="hf_rmsnorm"):
        module_name, _, class_name = str(key).rpartition(".")
        with torch.device("meta"):
            norm = getattr(importlib.import_module(module_name), class_name)(48)
        record = archaudit.audit_params(norm).record("")
        assert (record.status, record.formula, record.formula_params) == (Status.FORMULA, "48", 48), key  # weight 48
        assert numel(norm) == 48
        counted = audit_macs(norm, [torch.empty((3, 5, 48), device="meta")], flop_counter=False).record("")
        assert (counted.source, counted.macs, counted.counts.norm) == ("formula", 0, 720), key  # 3*5*48 elements


# --------------------------------------------------------------------------------------------- whole models


def _gpt2() -> nn.Module:
    transformers = _transformers()
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    with torch.device("meta"):
        return transformers.GPT2Model(config)


def test_gpt2_parameters_end_to_end() -> None:
    """Oracle: numel() of GPT-2 built from a small config on meta (random weights). audit_params totals every
    parameter and counts all 8 Conv1D layers (4 per block) by their rule, none unsupported."""
    model = _gpt2()
    audit = archaudit.audit_params(model)
    # wte 100*64 + wpe 32*64 + ln_f 2*64 = 8,576; per block: ln_1, ln_2 2*(2*64) = 256, c_attn 64*192 + 192 = 12,480,
    # attn.c_proj 64*64 + 64 = 4,160, c_fc 64*256 + 256 = 16,640, mlp.c_proj 256*64 + 64 = 16,448: 49,984;
    # 8,576 + 2*49,984 = 108,544
    assert audit.total == numel(model) == 108_544
    assert audit.mismatches == ()
    conv1d = [r for r in audit.records if r.family == "hf_conv1d"]
    assert len(conv1d) == 8  # 2 blocks * (c_attn, attn.c_proj, c_fc, mlp.c_proj)
    assert all(r.status is Status.FORMULA for r in conv1d)
    conv1d_type = "transformers.pytorch_utils.Conv1D"
    names = {name for name, m in model.named_modules() if qualified_name(type(m)) == conv1d_type}
    assert {r.name for r in conv1d} == names
    unsupported = [r.name for r in audit.records if r.status is Status.UNSUPPORTED]
    assert not any(name in names for name in unsupported), unsupported
    assert all(r.status is Status.ZERO for r in audit.records if r.name.endswith("mlp.act"))  # NewGELUActivation


def test_gpt2_macs_end_to_end() -> None:
    """Oracle: FlopCounterMode on meta over the same forward pass. The audit's total equals it; every Conv1D is
    counted by its rule (tokens x nx x nf), and each GPT2Attention's products by the hf_attention rule."""
    model = _gpt2()
    ids = torch.zeros((2, 7), dtype=torch.long, device="meta")
    audit = audit_macs(model, [ids])
    assert audit.macs == flop_counter_macs(model, ids)
    conv1d = {r.name: r for r in audit.records if r.name.endswith(("c_attn", "c_proj", "c_fc"))}
    assert len(conv1d) == 8 and all(r.source == "formula" for r in conv1d.values())
    # 14 tokens: c_attn 14*64*192 = 172,032; attn.c_proj 14*64*64 = 57,344; c_fc and mlp.c_proj 14*64*256 = 229,376
    assert [conv1d[f"h.0.{n}"].macs for n in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")] == [
        172_032, 57_344, 229_376, 229_376,
    ]
    # the attention products per block: 2 batch * 4 heads * 2 products (QK^T, AV) * 7*7*16 = 12,544
    assert (audit.record("h.0.attn").source, audit.record("h.0.attn").macs) == ("formula", 12_544)
    # 2 blocks * (172,032 + 57,344 + 2*229,376 + 12,544) = 2 * 700,672 = 1,401,344
    assert audit.macs == 1_401_344


def test_llama_parameters_end_to_end() -> None:
    """Oracle: numel() of a small Llama (grouped-query attention, 4 heads over 2 key/value heads) built on meta.
    Its RMSNorms are counted by their rule: 2 per layer and the final one."""
    transformers = _transformers()
    config = transformers.LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=32,
    )
    with torch.device("meta"):
        model = transformers.LlamaModel(config)
    audit = archaudit.audit_params(model)
    # embed 100*64 = 6,400 + final norm 64; per layer: q 64*64, k and v 64*32 each, o 64*64 = 12,288; gate, up
    # 64*128 each and down 128*64 = 24,576; 2 norms 2*64 = 128: 36,992; 6,464 + 2*36,992 = 80,448
    assert audit.total == numel(model) == 80_448
    norms = [r for r in audit.records if r.family == "hf_rmsnorm"]
    assert len(norms) == 5 and all(r.status is Status.FORMULA and r.formula_params == 64 for r in norms)
