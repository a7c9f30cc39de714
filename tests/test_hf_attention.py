"""The attention rules for Hugging Face modules (archaudit/formulas/hf.py, family ``hf_attention``).

Each rule counts the module's own call: ``B x heads x L x S x head_dim`` for the scores (Q K^T) and as much again
for the weighted sum (P V), per query head (grouped-query attention repeats its key/value heads), over the full
``L x S`` (a causal mask discards scores after computing them); BERT's relative position scores add one or two
products of the same size; softmax ``B x heads x L x S``. Oracles, named in each test's docstring:

* **FlopCounterMode on meta**, restricted to the attention module: its count for the module less its children's
  (the projections), over the same forward pass, eager and sdpa, with and without a 4-D attention mask;
* **hand arithmetic**, beside each pinned figure (the softmax column: FlopCounterMode counts no softmax).

The modules are driven by a small wrapper that hands them what their model would (hidden states, a mask, and for
Llama, Mistral and Qwen2 the rotary cos/sin): the rotary embedding of those models runs under
``torch.autocast(device_type=...)``, which FlopCounterMode's pass on meta cannot enter. GPT-2 runs whole.
"""

from __future__ import annotations

import importlib.util

import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import HF_ATTENTIONS, HF_LLAMA_LIKE_ATTENTIONS, MODULE_STRATEGIES, key_name
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archaudit import REGISTRY, Status
from archaudit.macs import audit_macs

# Found, not imported: importing transformers at collection would cost every pytest-xdist worker its import time.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed (no dependency of archaudit)")


def _width(attn: nn.Module) -> int:
    """The hidden width the module takes: its query projection's input."""
    for name in ("q_proj", "query"):
        if hasattr(attn, name):
            return int(getattr(attn, name).in_features)
    return int(attn.c_attn.weight.shape[0])  # GPT-2's Conv1D: weight (nx, nf)


class Drive(nn.Module):
    """Calls ``attn`` as its model does, by keyword: hidden states, an optional 4-D additive mask ``(B, 1, L, L)``,
    and rotary cos/sin ``(B, L, head_dim)`` for the Llama-like modules."""

    def __init__(self, attn: nn.Module, masked: bool) -> None:
        super().__init__()
        self.attn = attn
        self.masked = masked

    def forward(self, x: torch.Tensor) -> Any:
        batch, length, _ = x.shape
        kwargs: dict[str, Any] = {"attention_mask": x.new_zeros(batch, 1, length, length) if self.masked else None}
        if hasattr(self.attn, "num_key_value_groups"):  # Llama, Mistral, Qwen2
            dim = self.attn.head_dim
            kwargs["position_embeddings"] = (x.new_ones(batch, length, dim), x.new_zeros(batch, length, dim))
        return self.attn(hidden_states=x, **kwargs)[0]


def own_flop_counter_macs(model: nn.Module, path: str, *inputs: torch.Tensor) -> int:
    """FlopCounterMode's MACs for the module at ``path`` (``"Drive.attn"``) less those of its children."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    totals = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    depth = path.count(".") + 1
    children = sum(v for name, v in totals.items() if name.startswith(path + ".") and name.count(".") == depth)
    flops = totals.get(path, 0) - children
    assert flops % 2 == 0, flops
    return flops // 2


def _audit(model: nn.Module, *inputs: torch.Tensor) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return audit_macs(model, list(inputs))


def _heads_and_dim(attn: nn.Module) -> tuple[int, int]:
    if hasattr(attn, "num_key_value_groups"):
        return attn.config.num_attention_heads, attn.head_dim
    if hasattr(attn, "num_heads"):
        return attn.num_heads, attn.head_dim
    return attn.num_attention_heads, attn.attention_head_size


def test_every_attention_key_is_tested_here() -> None:
    """Oracle: the registry's listing. The family's keys are the attention names the strategies list."""
    assert sorted(map(str, REGISTRY.keys(family="hf_attention"))) == sorted(HF_ATTENTIONS)
    assert len(HF_ATTENTIONS) == 6  # Llama, Mistral, Qwen2, GPT2, BertSelfAttention, BertSdpaSelfAttention


@pytest.mark.parametrize("key", HF_ATTENTIONS, ids=key_name)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_attention_rule_equals_flop_counter_on_meta(key: str, data: st.DataObject) -> None:
    """Oracle: FlopCounterMode on meta, restricted to the attention module (children excluded), eager and sdpa,
    masked or not; the softmax column against hand arithmetic ``B x heads x L x L``. Its parameters: none of its
    own (known zero), its projections counted at their own paths."""
    attn = data.draw(MODULE_STRATEGIES[key], label="attention")
    masked = data.draw(st.booleans(), label="4-D mask")
    batch, length = data.draw(st.integers(1, 3), label="B"), data.draw(st.integers(1, 6), label="L")
    model = Drive(attn, masked)
    x = torch.empty((batch, length, _width(attn)), device="meta")
    record = _audit(model, x).record("attn")
    assert (record.status, record.source) == (Status.FORMULA, "formula")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert record.macs == own_flop_counter_macs(model, "Drive.attn", x)
    heads, _ = _heads_and_dim(attn)
    assert record.counts.softmax == batch * heads * length * length
    assert sum(p.numel() for p in attn.parameters(recurse=False)) == 0


# --------------------------------------------------------------------------------------------- pinned examples


def _llama_like(key: str, implementation: str, **config: Any) -> nn.Module:
    import transformers

    module_name, _, class_name = key.rpartition(".")
    cls = getattr(__import__(module_name, fromlist=[class_name]), class_name)
    settings_ = getattr(transformers, HF_LLAMA_LIKE_ATTENTIONS[key])(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1, intermediate_size=128,
        vocab_size=100, **config,
    )
    settings_._attn_implementation = implementation
    with torch.device("meta"):
        return cls(settings_, layer_idx=0)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("key", list(HF_LLAMA_LIKE_ATTENTIONS), ids=key_name)
def test_grouped_query_attention_pinned(key: str, implementation: str) -> None:
    """Hand arithmetic; FlopCounterMode on meta agrees. 4 query heads over 2 key/value heads, head_dim 16."""
    attn = _llama_like(key, implementation)
    model, x = Drive(attn, masked=False), torch.empty((2, 7, 64), device="meta")
    record = _audit(model, x).record("attn")
    # per query head, GQA or not: 2 products * B 2 * heads 4 * L 7 * S 7 * head_dim 16 = 12,544
    assert record.macs == own_flop_counter_macs(model, "Drive.attn", x) == 12_544
    assert record.counts.softmax == 392  # 2 * 4 * 7 * 7
    # head_dim 8 apart from hidden / heads = 16: 2 * 2 * 4 * 7 * 7 * 8 = 6,272
    attn = _llama_like(key, implementation, head_dim=8)
    model = Drive(attn, masked=True)
    assert _audit(model, x).record("attn").macs == own_flop_counter_macs(model, "Drive.attn", x) == 6_272


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_gpt2_attention_in_the_whole_model_pinned(implementation: str) -> None:
    """Hand arithmetic; FlopCounterMode on meta over the whole GPT-2 agrees, block by block."""
    import transformers

    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100, n_positions=32)
    with torch.device("meta"):
        model = transformers.GPT2Model._from_config(config, attn_implementation=implementation)
    ids = torch.zeros((3, 5), dtype=torch.long, device="meta")
    audit = _audit(model, ids)
    for block in ("h.0.attn", "h.1.attn"):
        record = audit.record(block)
        assert (record.status, record.source) == (Status.FORMULA, "formula")
        # causal, counted whole: 2 products * B 3 * heads 4 * L 5 * S 5 * head_dim 16 = 9,600
        assert record.macs == own_flop_counter_macs(model, f"GPT2Model.{block}", ids) == 9_600
        assert record.counts.softmax == 300  # 3 * 4 * 5 * 5


@pytest.mark.parametrize(
    ("position", "expected"),
    # (2 + relative products) * B 2 * heads 4 * L 7 * S 7 * head_dim 16: 2 -> 12,544; 3 -> 18,816; 4 -> 25,088
    [("absolute", 12_544), ("relative_key", 18_816), ("relative_key_query", 25_088)],
)
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_bert_self_attention_pinned(position: str, expected: int, implementation: str) -> None:
    """Hand arithmetic; FlopCounterMode on meta agrees. Relative position scores are one more product each."""
    import transformers
    from transformers.models.bert import modeling_bert

    config = transformers.BertConfig(
        hidden_size=64, num_attention_heads=4, num_hidden_layers=1, intermediate_size=128, vocab_size=100,
        position_embedding_type=position,
    )
    config._attn_implementation = implementation
    with torch.device("meta"):
        attn = modeling_bert.BERT_SELF_ATTENTION_CLASSES[implementation](config)
    model, x = Drive(attn, masked=True), torch.empty((2, 7, 64), device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = _audit(model, x).record("attn")
        assert record.macs == own_flop_counter_macs(model, "Drive.attn", x) == expected
    assert record.counts.softmax == 392  # 2 * 4 * 7 * 7
