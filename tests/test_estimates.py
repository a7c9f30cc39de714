"""The quoted transformer FLOPs estimates (archaudit/estimates.py) against the exact counts.

Oracles, named in each test's docstring:

* **the config**: the dimensions detected are the values the tiny GPT-2 and Llama configs were built with;
* **hand arithmetic**: each estimate's value is the paper's formula evaluated by hand, written out beside it;
* **audit_macs** (itself held to FlopCounterMode on meta elsewhere): the exact forward MACs; the exact training
  MACs are FlopCounterMode on meta over forward plus backward (standing in for archaudit's training count);
* **the definition**: relative error = (estimate - exact) / exact, and the named gaps plus the unexplained rest
  add up to estimate - exact; for these models the gaps explain all of it.

Models are built on meta from tiny configs (no download); one forward on input_ids 1 x 32.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from typing import Any

import pytest
import torch
from archaudit.estimates import (
    CONVENTION,
    Architecture,
    LmHead,
    Pass,
    TransformerDims,
    as_json,
    detect_dimensions,
    estimates,
)
from archaudit.macs import audit_macs
from archaudit.trace import meta_autocast
from archaudit.walker import audit_params
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None, reason="transformers is not installed (no dependency)"
)

T = 32  # the input's sequence length, batch 1


def _built(kind: str) -> nn.Module:
    import transformers

    if kind == "gpt2":
        cfg: Any = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=512, n_positions=64)
        cls: Any = transformers.GPT2LMHeadModel
    else:
        cfg = transformers.LlamaConfig(
            hidden_size=64,
            intermediate_size=172,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=512,
        )
        cls = transformers.LlamaForCausalLM
    with torch.device("meta"):
        return cls(cfg).eval()  # type: ignore[no-any-return]


def _training_macs(model: nn.Module, ids: torch.Tensor) -> int:
    """FlopCounterMode on meta over forward plus backward of the logits' sum, / 2."""
    counter = FlopCounterMode(display=False)
    with meta_autocast(), counter:
        model(input_ids=ids, use_cache=False).logits.sum().backward()
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


class Case:
    def __init__(self, kind: str) -> None:
        self.model = _built(kind)
        ids = torch.zeros(1, T, dtype=torch.int64, device="meta")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.forward_macs = audit_macs(self.model, [], keyword_inputs={"input_ids": ids}).macs
        self.training_macs = _training_macs(self.model, ids)
        self.params = audit_params(self.model).total
        dims = detect_dimensions(self.model, (1, T))
        assert dims is not None
        self.dims: TransformerDims = dims
        self.found = {
            e.name: e
            for e in estimates(
                dims,
                params_total=self.params,
                params_non_embedding=self.params - dims.embedding_params,
                exact_forward_macs=self.forward_macs,
                exact_training_macs=self.training_macs,
                tokens=T,
            )
        }


@pytest.fixture(scope="module")
def gpt2() -> Case:
    return Case("gpt2")


@pytest.fixture(scope="module")
def llama() -> Case:
    return Case("llama")


@needs_transformers
def test_gpt2_dimensions(gpt2: Case) -> None:
    """Oracle: the GPT2Config values (n_inner=None is 4 * n_embd); tied lm_head: lm_head.weight is wte.weight."""
    d = gpt2.dims
    assert d.source == "config:GPT2Config"
    assert (d.n_layer, d.d_model, d.n_heads, d.n_kv_heads, d.head_dim, d.d_ff, d.vocab) == (2, 64, 4, 4, 16, 256, 512)
    assert (d.n_ctx, d.batch, d.tokens) == (T, 1, T)
    assert d.architecture is Architecture.DECODER
    assert d.lm_head is LmHead.TIED and gpt2.model.lm_head.weight is gpt2.model.transformer.wte.weight
    assert not d.gated_mlp and not d.rotary
    assert d.embedding_params == 512 * 64 + 64 * 64  # wte + wpe
    assert gpt2.params == 136_960  # oracle: numel of every tensor once
    assert gpt2.params == sum(p.numel() for p in gpt2.model.parameters())


@needs_transformers
def test_llama_dimensions(llama: Case) -> None:
    """Oracle: the LlamaConfig values; SwiGLU (gate, up, down: 3 matrices); untied lm_head; rotary."""
    d = llama.dims
    assert d.source == "config:LlamaConfig"
    assert (d.n_layer, d.d_model, d.n_heads, d.n_kv_heads, d.head_dim, d.d_ff, d.vocab) == (2, 64, 4, 2, 16, 172, 512)
    assert d.architecture is Architecture.DECODER
    assert d.lm_head is LmHead.UNTIED and d.gated_mlp and d.rotary
    assert d.embedding_params == 512 * 64
    # 512*64 embed + 2 * (64*64 q + 2*64*32 k,v + 64*64 o + 3*64*172 mlp + 2*64 norms) + 64 norm + 64*512 lm_head
    assert llama.params == 156_480 == sum(p.numel() for p in llama.model.parameters())


# Hand arithmetic, D = 32 tokens. GPT-2: N = 136,960, non-embedding N = 136,960 - 36,864 = 100,096; Llama:
# N = 156,480, non-embedding 156,480 - 32,768 = 123,712. Both: L = 2, H = 4, Q = 16, d = h = 64, V = 512, s = 32.
# Chinchilla per sequence: embeddings 2*32*512*64 = 2,097,152; attention per layer 2*3*32*64*64 = 786,432 QKV
# + 2*32*32*64 = 131,072 logits + 3*4*32*32 = 12,288 softmax + 131,072 softmax@value + 2*32*64*64 = 262,144
# projection = 1,323,008; dense 2*32*(64*ff + 64*ff); final logits 2*32*64*512 = 2,097,152.
# Megatron: 96*1*32*2*64^2 = 25,165,824 x (1 + 32/(6*64) + 512/(16*2*64)) = x (1 + 1/12 + 1/4) = 33,554,432;
# 72*1*32*2*64^2 = 18,874,368 x (1 + 1/12 + 512/(12*2*64) = 1/3) = 26,738,688.
GPT2_VALUES = {
    "6N": 6 * 136_960 * 32,  # 26,296,320
    "kaplan_6N": 6 * 100_096 * 32,  # 19,218,432
    "kaplan_forward": 2 * 100_096 * 32 + 2 * 2 * 32 * 64 * 32,  # 6,406,144 + 262,144 context
    "palm": 6 * 136_960 * 32 + 12 * 2 * 4 * 16 * 32 * 32,  # 26,296,320 + 1,572,864
    # 2,097,152 + 2 * (1,323,008 + 2*32*(64*256*2) = 2,097,152) + 2,097,152
    "chinchilla_forward": 11_034_624,
    "chinchilla_training": 3 * 11_034_624,
    "megatron_recompute": 33_554_432,
    "megatron": 26_738_688,
}
LLAMA_VALUES = {
    "6N": 6 * 156_480 * 32,  # 30,044,160
    "kaplan_6N": 6 * 123_712 * 32,  # 23,752,704
    "kaplan_forward": 2 * 123_712 * 32 + 2 * 2 * 32 * 64 * 32,  # 7,917,568 + 262,144
    "palm": 6 * 156_480 * 32 + 12 * 2 * 4 * 16 * 32 * 32,  # 30,044,160 + 1,572,864
    # 2,097,152 + 2 * (1,323,008 + 2*32*(64*172*2) = 1,409,024) + 2,097,152: Chinchilla counts K/V at full width
    # and two MLP matrices
    "chinchilla_forward": 9_658_368,
    "chinchilla_training": 3 * 9_658_368,
    "megatron_recompute": 33_554_432,  # Megatron reads h, l, s, V only: the same as GPT-2's
    "megatron": 26_738_688,
}


@needs_transformers
@pytest.mark.parametrize(("case", "values"), [("gpt2", GPT2_VALUES), ("llama", LLAMA_VALUES)])
def test_values_are_the_formulas(case: str, values: dict[str, int], request: pytest.FixtureRequest) -> None:
    """Oracle: hand arithmetic of each paper's formula (above), FLOPs over the 32 tokens."""
    found = request.getfixturevalue(case).found
    assert {name: e.value for name, e in found.items()} == values
    assert all(e.per_token == e.value / 32 for e in found.values())


@needs_transformers
@pytest.mark.parametrize("case", ["gpt2", "llama"])
def test_relative_errors_against_exact(case: str, request: pytest.FixtureRequest) -> None:
    """Oracle: exact = 2 x audit_macs (forward) or 2 x FlopCounterMode fwd+bwd (training), 2 x (training + forward
    less the lm_head) with recomputation; relative error = (estimate - exact) / exact; gaps sum to the difference."""
    c: Case = request.getfixturevalue(case)
    head = 32 * 64 * 512  # lm_head MACs: tokens x d_model x vocab
    for e in c.found.values():
        expected = {
            Pass.FORWARD: 2 * c.forward_macs,
            Pass.TRAINING: 2 * c.training_macs + (2 * c.forward_macs - 2 * head) * (e.name == "megatron_recompute"),
        }[e.covers]
        assert e.exact == expected, e.name
        assert e.relative_error == (e.value - expected) / expected, e.name
        assert sum(g.flops for g in e.gaps) + e.unexplained == e.value - expected, e.name
        assert e.unexplained == 0, (e.name, e.gaps)  # the dimensions explain every FLOP of these two models
    assert c.forward_macs == {"gpt2": 4_456_448, "llama": 4_210_944}[case]  # audit_macs, pinned


@needs_transformers
def test_gpt2_gaps_explained(gpt2: Case) -> None:
    """Oracle: the tied lm_head (512 x 64, run as the output matmul) is what Kaplan's non-embedding N misses:
    2 * 32,768 * 32 = 2,097,152 FLOPs forward; the full-context attention is twice Kaplan's context term."""
    kaplan = {g.cause: g for g in gpt2.found["kaplan_forward"].gaps}
    assert kaplan["lm_head_tied"].flops == -2 * 512 * 64 * 32
    assert "lm_head tied" in kaplan["lm_head_tied"].text
    assert kaplan["attention_context"].flops == -(2 * 2 * 32 * 64 * 32)  # Kaplan's term, the other half of 4 L T d
    assert "causal" in kaplan["attention_context"].text
    # biases and norms: per layer 192 + 64 + 256 + 64 biases + 4 * 64 norms, twice, + 128 final norm = 1,792
    assert kaplan["non_matmul_parameters"].flops == 2 * 1_792 * 32
    six = {g.cause: g.flops for g in gpt2.found["6N"].gaps}
    assert six["embedding_as_matmul"] == 6 * 64 * 64 * 32  # only wpe: the tied wte table runs as the lm_head
    assert any("lm_head tied" in n for n in gpt2.found["6N"].notes)
    chin = {g.cause: g.flops for g in gpt2.found["chinchilla_forward"].gaps}
    assert chin == {"embedding_as_matmul": 2 * 32 * 512 * 64, "softmax": 3 * 2 * 4 * 32 * 32}
    assert gpt2.found["megatron"].relative_error == 0.0  # GPT-2 is Megatron's model: 4h MLP, full attention
    assert any(n.startswith("causal masking") for n in gpt2.found["palm"].notes)


@needs_transformers
def test_llama_gaps_explained(llama: Case) -> None:
    """Oracle: GQA with 2 of 4 KV heads saves 2 * 64 * (4 - 2) * 16 = 4,096 K/V weights per layer, which Chinchilla
    and Megatron count; SwiGLU's third matrix (64 x 172) Chinchilla's dense block lacks."""
    chin = {g.cause: g.flops for g in llama.found["chinchilla_forward"].gaps}
    assert chin["gqa"] == 2 * 32 * 2 * 4_096  # 2 FLOPs x tokens x layers x saved weights
    assert chin["mlp"] == -2 * 32 * 2 * 64 * 172  # one matrix of 64 x 172 per layer
    # inv_freq (8) x positions (32), a matmul FlopCounterMode counts (once: the batch shares the position ids)
    assert chin["rotary"] == -2 * 8 * 32
    mega = {g.cause: g.flops for g in llama.found["megatron"].gaps}
    assert mega["gqa"] == 3 * 2 * 32 * 2 * 4_096
    # Megatron's 16 B s h^2 per layer against 2 x 32 x 3*64*172 MACs: 16*32*4096 - 2*32*33,024 = -16,384 per layer,
    # x 2 layers x 3 passes
    assert mega["mlp"] == 3 * 2 * -16_384
    assert "GQA" in next(g.text for g in llama.found["megatron"].gaps if g.cause == "gqa")
    six = {g.cause: g.flops for g in llama.found["6N"].gaps}
    assert six["embedding_as_matmul"] == 6 * 512 * 64 * 32  # the untied input table: a lookup


def test_torch_encoder_detected_by_structure() -> None:
    """Oracle: the constructor arguments of a torch-only stack (3 encoder layers of width 32, 4 heads, d_ff 64,
    vocab 100 with a tied output); the dimensions explain every FLOP of audit_macs's count."""

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(100, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
            self.encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
            self.head = nn.Linear(32, 100, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.encoder(self.embed(ids)))  # type: ignore[no-any-return]

    with torch.device("meta"):
        model = Tiny().eval()
    d = detect_dimensions(model, (2, 8))
    assert d is not None
    assert d.source == "structure:TransformerEncoderLayer x3"
    assert (d.n_layer, d.d_model, d.n_heads, d.head_dim, d.d_ff, d.vocab, d.batch, d.n_ctx) == (
        3,
        32,
        4,
        8,
        64,
        100,
        2,
        8,
    )
    assert d.architecture is Architecture.ENCODER and d.lm_head is LmHead.TIED and not d.gated_mlp
    macs = audit_macs(model, [torch.zeros(2, 8, dtype=torch.int64, device="meta")]).macs
    params = sum(p.numel() for p in model.parameters())
    found = {
        e.name: e
        for e in estimates(d, params_total=params, params_non_embedding=params - 3_200, exact_forward_macs=macs)
    }
    assert found["chinchilla_forward"].unexplained == 0
    assert found["kaplan_forward"].unexplained == 0
    assert "encoder attends over the full" in next(
        g.text for g in found["kaplan_forward"].gaps if g.cause == "attention_context"
    )
    assert found["palm"].exact is None and found["palm"].relative_error is None  # no training count given


def test_cnn_is_not_a_transformer() -> None:
    """Oracle: a CNN has no config and no transformer layers: None, not a guess."""
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    assert detect_dimensions(cnn, (1, 32)) is None


@needs_transformers
def test_json_is_stable_and_plain(gpt2: Case) -> None:
    """Oracle: json.dumps of the block twice is identical, and reads back the properties' values."""
    block = as_json(gpt2.dims, list(gpt2.found.values()))
    text = json.dumps(block)
    assert text == json.dumps(as_json(gpt2.dims, list(gpt2.found.values())))
    back = json.loads(text)
    assert back["convention"] == CONVENTION and back["dimensions"]["lm_head"] == "tied"
    assert [e["name"] for e in back["estimates"]] == list(GPT2_VALUES)
    first = back["estimates"][0]
    assert list(first) == ["name", "formula", "source", "pass", "tokens", "value_flops", "per_token_flops",
                           "exact_flops", "relative_error", "gaps", "unexplained_flops", "notes"]  # fmt: skip
    assert first["relative_error"] == gpt2.found["6N"].relative_error


@needs_transformers
def test_bad_arguments_are_refused(gpt2: Case) -> None:
    """Oracle: each message names the offending value."""
    with pytest.raises(ValueError, match="tokens=64"):
        estimates(gpt2.dims, params_total=10, params_non_embedding=5, exact_forward_macs=1, tokens=64)
    with pytest.raises(ValueError, match="params_non_embedding=20"):
        estimates(gpt2.dims, params_total=10, params_non_embedding=20, exact_forward_macs=1)
    with pytest.raises(ValueError, match=r"\(1, 0\)"):
        detect_dimensions(gpt2.model, (1, 0))


@needs_transformers
def test_encoder_decoder_and_headless_models() -> None:
    """Oracle: the T5Config values (2 + 2 layers, head_dim = d_kv = 8, gated-gelu: is_gated_act) and GPT2Model's
    missing lm_head, whose logits Chinchilla counts anyway: 2 x 32 tokens x 64 x 512 FLOPs."""
    import transformers

    with torch.device("meta"):
        t5 = transformers.T5ForConditionalGeneration(
            transformers.T5Config(
                vocab_size=100, d_model=64, d_kv=8, d_ff=128, num_layers=2, num_heads=4, feed_forward_proj="gated-gelu"
            )
        )
        headless = transformers.GPT2Model(
            transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=512, n_positions=64)
        ).eval()
    d = detect_dimensions(t5, 16)
    assert d is not None
    assert (d.source, d.architecture, d.n_layer, d.head_dim, d.d_ff, d.gated_mlp, d.lm_head) == (
        "config:T5Config",
        Architecture.ENCODER_DECODER,
        4,
        8,
        128,
        True,
        LmHead.TIED,
    )
    assert (d.batch, d.n_ctx) == (1, 16)
    h = detect_dimensions(headless, (1, T))
    assert h is not None and h.lm_head is LmHead.NONE
    ids = torch.zeros(1, T, dtype=torch.int64, device="meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs = audit_macs(headless, [], keyword_inputs={"input_ids": ids}).macs
    params = sum(p.numel() for p in headless.parameters())
    (chin,) = (
        e
        for e in estimates(
            h, params_total=params, params_non_embedding=params - h.embedding_params, exact_forward_macs=macs
        )
        if e.name == "chinchilla_forward"
    )
    assert {g.cause: g.flops for g in chin.gaps}["no_lm_head"] == 2 * 32 * 64 * 512
    assert chin.unexplained == 0
