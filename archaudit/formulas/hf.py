"""Hugging Face ``transformers`` layers: GPT-2's ``Conv1D``, the RMSNorm family, the activation modules, and the
attention modules of Llama, Mistral, Qwen2, GPT-2 and BERT (their own products; the projections are children).

Every rule here is keyed by the class's qualified name (``"transformers.pytorch_utils.Conv1D"``), so declaring
them imports nothing: archaudit does not depend on transformers, and a user without it pays nothing. The adapters
read attributes off the module only (its ``weight`` and ``bias`` tensors), never a transformers type.
tests/test_hf_rules.py checks each name against the installed classes, so a rename upstream fails a test rather
than silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..records import Call, MacCount, numel
from ..registry import REGISTRY
from .linear import LinearSpec, linear_macs, linear_params
from .norm import ShapeNormSpec, _norm_call, _shape_norm_expr, shape_norm_params
from .zero import _activation_call


def _tensor(m: nn.Module, name: str) -> torch.Tensor:
    """``m.<name>`` as a tensor; a clear error where a module of the named class holds something else."""
    value = getattr(m, name, None)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(m).__qualname__}.{name} is not a tensor ({value!r}): not the layout this rule reads")
    return value


# --- Conv1D: a Linear whose weight is stored transposed ----------------------------------------------------------

CONV1D = "transformers.pytorch_utils.Conv1D"
"""GPT-2's projection: ``weight (nx, nf)``, ``bias (nf,)``; forward is ``addmm(bias, x.view(-1, nx), weight)``."""


def conv1d_spec(m: nn.Module) -> LinearSpec:
    """Widths from the weight's shape ``(nx, nf)``: in ``nx``, out ``nf``."""
    nx, nf = _tensor(m, "weight").shape
    return LinearSpec(nx, nf, getattr(m, "bias", None) is not None)


def _conv1d_expr(s: LinearSpec) -> str:
    return f"{s.in_features}*{s.out_features}" + (f" + {s.out_features}" if s.bias else "")


def _conv1d_call(m: nn.Module, call: Call) -> MacCount:
    """Every row of the last axis (``tokens = numel / nx``) through the ``nx x nf`` weight: ``tokens*nx*nf`` MACs,
    and one bias add per output element, ``tokens*nf``."""
    return linear_macs(conv1d_spec(m), call.input)


REGISTRY.rule(
    CONV1D, family="hf_conv1d", spec=conv1d_spec, params=linear_params, expression=_conv1d_expr, macs=_conv1d_call
)


# --- the RMSNorm family: a scale over the last axis, no shift ----------------------------------------------------

RMS_NORMS = (
    "transformers.models.llama.modeling_llama.LlamaRMSNorm",
    "transformers.models.mistral.modeling_mistral.MistralRMSNorm",
    "transformers.models.qwen2.modeling_qwen2.Qwen2RMSNorm",
    "transformers.models.gemma.modeling_gemma.GemmaRMSNorm",  # scales by (1 + weight): the same parameters
    "transformers.models.t5.modeling_t5.T5LayerNorm",
)


def hf_rms_norm_spec(m: nn.Module) -> ShapeNormSpec:
    """``weight (hidden,)`` and nothing else: the normalised shape is the weight's."""
    return ShapeNormSpec(tuple(_tensor(m, "weight").shape), True, False)


REGISTRY.rule(
    *RMS_NORMS,
    family="hf_rmsnorm",
    spec=hf_rms_norm_spec,
    params=shape_norm_params,
    expression=_shape_norm_expr,
    macs=_norm_call,
)


# --- activations: no parameters, one element through the non-linearity per input element -------------------------

ACTIVATIONS = (
    "transformers.activations.NewGELUActivation",
    "transformers.activations.GELUActivation",
    "transformers.activations.FastGELUActivation",
    "transformers.activations.QuickGELUActivation",
    "transformers.activations.SiLUActivation",
)

REGISTRY.zero(*ACTIVATIONS, family="hf_activation", macs=_activation_call)


# --- attention: the score product and the weighted sum, between the projections (its children) ------------------

LLAMA_LIKE_ATTENTIONS = (
    "transformers.models.llama.modeling_llama.LlamaAttention",
    "transformers.models.mistral.modeling_mistral.MistralAttention",
    "transformers.models.qwen2.modeling_qwen2.Qwen2Attention",
)
"""``forward(hidden_states, position_embeddings, attention_mask, ...)``; heads from ``config``, ``head_dim`` held."""

GPT2_ATTENTION = "transformers.models.gpt2.modeling_gpt2.GPT2Attention"
"""``forward(hidden_states, past_key_values, cache_position, attention_mask, head_mask, encoder_hidden_states,
...)``; ``num_heads`` and ``head_dim`` held (head pruning updates ``num_heads``)."""

BERT_SELF_ATTENTIONS = (
    "transformers.models.bert.modeling_bert.BertSelfAttention",
    "transformers.models.bert.modeling_bert.BertSdpaSelfAttention",  # a subclass with its own forward
)
"""``forward(hidden_states, attention_mask, head_mask, encoder_hidden_states, ...)``; ``num_attention_heads``,
``attention_head_size`` and ``position_embedding_type`` held."""


@dataclass(frozen=True)
class HFAttentionSpec:
    heads: int
    """Query heads: the products are per query head."""
    head_dim: int
    products: int = 2
    """``B x heads x L x S x head_dim`` products per call: Q K^T and P V, plus BERT's relative-position scores."""
    mask_arg: int | None = None
    """Positional index of ``attention_mask`` in ``forward``."""
    encoder_arg: int | None = None
    """Positional index of ``encoder_hidden_states`` (cross-attention) in ``forward``, where it has one."""


def _int_attr(m: nn.Module, *path: str) -> int:
    value: object = m
    for name in path:
        value = getattr(value, name, None)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TypeError(f"{type(m).__qualname__}.{'.'.join(path)} is not a positive int ({value!r})")
    return value


def llama_attention_spec(m: nn.Module) -> HFAttentionSpec:
    return HFAttentionSpec(_int_attr(m, "config", "num_attention_heads"), _int_attr(m, "head_dim"), mask_arg=2)


def gpt2_attention_spec(m: nn.Module) -> HFAttentionSpec:
    return HFAttentionSpec(_int_attr(m, "num_heads"), _int_attr(m, "head_dim"), mask_arg=3, encoder_arg=5)


_RELATIVE_PRODUCTS = {"absolute": 0, "relative_key": 1, "relative_key_query": 2}


def bert_attention_spec(m: nn.Module) -> HFAttentionSpec:
    """``relative_key`` adds one more ``B x heads x L x S x head_dim`` product (``einsum("bhld,lrd->bhlr", q,
    distances)``), ``relative_key_query`` two (the same with the keys); ``absolute`` none."""
    kind = getattr(m, "position_embedding_type", "absolute")
    if kind not in _RELATIVE_PRODUCTS:
        raise TypeError(f"{type(m).__qualname__}.position_embedding_type {kind!r} is not one this rule knows")
    heads, head_dim = _int_attr(m, "num_attention_heads"), _int_attr(m, "attention_head_size")
    return HFAttentionSpec(heads, head_dim, 2 + _RELATIVE_PRODUCTS[kind], mask_arg=1, encoder_arg=3)


def _attention_lengths(s: HFAttentionSpec, call: Call) -> tuple[int, int, int]:
    """``(batch, L, S)`` of one call. ``L`` and the batch are ``hidden_states``' (``(B, L, hidden)``); ``S``, the key
    length, is read from the first of: the attention weights the eager path returns (``(B, heads, L, S)``: exact),
    ``encoder_hidden_states`` (cross-attention: ``(B, S, hidden)``), a 4-D ``attention_mask`` (``(B, 1, L, S)``,
    sliced to the keys by every implementation), else ``S = L``: self-attention without a cache, which is every
    forward pass archaudit runs from inputs (an sdpa decoding step over a filled cache with no mask has ``S`` in
    the cache only, which no shape of the call shows)."""
    hidden = call.arg(0, "hidden_states")
    if not isinstance(hidden, tuple) or len(hidden) < 3:
        raise ValueError(f"hidden_states is not a (batch, length, hidden) tensor ({hidden!r})")
    batch, target = numel(hidden[:-2]), hidden[-2]
    if len(call.outputs) > 1 and len(call.outputs[1]) == 4 and call.outputs[1][1:3] == (s.heads, target):
        return batch, target, call.outputs[1][3]
    encoder = call.arg(s.encoder_arg, "encoder_hidden_states") if s.encoder_arg is not None else None
    if isinstance(encoder, tuple) and len(encoder) >= 2:
        return batch, target, encoder[-2]
    mask = call.arg(s.mask_arg, "attention_mask") if s.mask_arg is not None else None
    if isinstance(mask, tuple) and len(mask) == 4:
        return batch, target, mask[-1]
    return batch, target, target


def hf_attention_macs(s: HFAttentionSpec, batch: int, target: int, source: int) -> MacCount:
    """``products x B x heads x L x S x head_dim`` MACs (Q K^T, then P V), ``B x heads x L x S`` through the softmax.

    * Per query head: grouped-query attention (Llama, Mistral, Qwen2 with ``num_key_value_heads <
      num_attention_heads``) repeats the key/value heads to the query heads (``repeat_kv``, or sdpa's
      ``enable_gqa``), so it makes the k/v projections (children) smaller but not these products: ``heads`` is
      the query heads.
    * The full ``L x S``, causal or not: a causal mask (added to the scores, a ``where``, or sdpa's ``is_causal``)
      and a sliding window discard scores after computing them, and FlopCounterMode counts them so too; on meta
      the rule equals FlopCounterMode's count of the module's own ops (children excluded), eager and sdpa alike
      (flash kernels, which skip masked blocks, do not run on meta).
    """
    scores = batch * s.heads * target * source
    return MacCount(macs=s.products * scores * s.head_dim, softmax=scores)


def _attention_rule(spec: Callable[[nn.Module], HFAttentionSpec]) -> Callable[[nn.Module, Call], MacCount]:
    def rule(m: nn.Module, call: Call) -> MacCount:
        s = spec(m)
        return hf_attention_macs(s, *_attention_lengths(s, call))

    rule.__doc__ = f"The attention products of one call, with the heads of :func:`{spec.__name__}`."
    return rule


_hf_llama_attention_call = _attention_rule(llama_attention_spec)
_hf_gpt2_attention_call = _attention_rule(gpt2_attention_spec)
_hf_bert_attention_call = _attention_rule(bert_attention_spec)

# What these modules hold themselves is no parameter (GPT2Attention holds two buffers, its causal ``bias`` and
# ``masked_bias``): their projections are children (Linear, Conv1D), counted by their own rules. Their own work is
# the two products and the softmax (hf_attention_macs); GPT-2's reorder_and_upcast_attn path (baddbmm, then
# matmul) does the same two products.
REGISTRY.zero(*LLAMA_LIKE_ATTENTIONS, family="hf_attention", macs=_hf_llama_attention_call)
REGISTRY.zero(GPT2_ATTENTION, family="hf_attention", macs=_hf_gpt2_attention_call)
REGISTRY.zero(*BERT_SELF_ATTENTIONS, family="hf_attention", macs=_hf_bert_attention_call)
