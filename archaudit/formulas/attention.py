"""MultiheadAttention, and the Transformer encoder/decoder layers built from it.

MultiheadAttention owns its input projection itself (``in_proj_weight``/``in_proj_bias``, or separate
``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim``/``vdim`` differ from ``embed_dim``), plus
``bias_k``/``bias_v`` with ``add_bias_kv``; the output projection is a child ``Linear``. The formula counts
all of it, so a leaf-only counter that skips non-leaf modules misses ``3*E*E + 3*E`` per attention.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount, numel
from ..registry import REGISTRY
from .linear import LinearSpec, linear_params
from .norm import ShapeNormSpec, shape_norm_params

# --- MultiheadAttention ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionSpec:
    embed_dim: int
    num_heads: int
    kdim: int
    vdim: int
    bias: bool = True
    add_bias_kv: bool = False

    @property
    def packed(self) -> bool:
        """True when q, k and v share one ``in_proj_weight`` (``kdim == vdim == embed_dim``)."""
        return self.kdim == self.embed_dim and self.vdim == self.embed_dim


def attention_in_proj_params(s: AttentionSpec) -> int:
    """What the attention module owns itself (``recurse=False``): input projections and bias_k/bias_v."""
    e = s.embed_dim
    count = e * (e + s.kdim + s.vdim)
    if s.bias:
        count += 3 * e
    if s.add_bias_kv:
        count += 2 * e
    return count


def attention_params(s: AttentionSpec) -> int:
    return attention_in_proj_params(s) + linear_params(LinearSpec(s.embed_dim, s.embed_dim, s.bias))


def _attention_expr(s: AttentionSpec) -> str:
    e = s.embed_dim
    if s.packed:
        text = f"4*{e}*{e}" + (f" + 4*{e}" if s.bias else "")
    else:
        text = f"{e}*({e} + {s.kdim} + {s.vdim}) + {e}*{e}" + (f" + 4*{e}" if s.bias else "")
    return text + (f" + 2*{e}" if s.add_bias_kv else "")


def attention_spec(m: nn.MultiheadAttention) -> AttentionSpec:
    return AttentionSpec(
        embed_dim=m.embed_dim,
        num_heads=m.num_heads,
        kdim=m.kdim,
        vdim=m.vdim,
        bias=m.in_proj_bias is not None,
        add_bias_kv=m.bias_k is not None,
    )


def attention_macs(
    s: AttentionSpec, batch: int, target_len: int, source_len: int, add_zero_attn: bool = False
) -> MacCount:
    """Projections, scores (Q K^T) and the weighted sum (A V), and the output projection.

    ``source_len`` is the key/value length; ``bias_k``/``bias_v`` and ``add_zero_attn`` each add one key position
    to the scores and the weighted sum (not to the projections).
    """
    e = s.embed_dim
    keys = source_len + int(s.add_bias_kv) + int(add_zero_attn)
    projections = target_len * e * e + source_len * (s.kdim + s.vdim) * e + target_len * e * e
    products = 2 * target_len * keys * e  # Q K^T and A V over all heads: H * L * S * (E / H) each
    bias = (2 * target_len * e + 2 * source_len * e) if s.bias else 0
    return MacCount(
        macs=batch * (projections + products), bias=batch * bias, softmax=batch * s.num_heads * target_len * keys
    )


def _attention_call(m: nn.MultiheadAttention, call: Call) -> MacCount:
    query, key = call.arg(0, "query"), call.arg(1, "key")
    if len(query) == 2:  # unbatched (L, E)
        batch, target, source = 1, query[0], key[0]
    elif m.batch_first:
        batch, target, source = query[0], query[1], key[1]
    else:
        batch, target, source = query[1], query[0], key[0]
    return attention_macs(attention_spec(m), batch, target, source, m.add_zero_attn)


REGISTRY.rule(
    nn.MultiheadAttention,
    family="attention",
    spec=attention_spec,
    params=attention_params,
    expression=_attention_expr,
    macs=_attention_call,
)


# --- TransformerEncoderLayer, TransformerDecoderLayer ------------------------------------------------------------


@dataclass(frozen=True)
class TransformerLayerSpec:
    d_model: int
    nhead: int
    dim_feedforward: int
    bias: bool = True
    decoder: bool = False


def transformer_layer_params(s: TransformerLayerSpec) -> int:
    d, f = s.d_model, s.dim_feedforward
    attn = attention_params(AttentionSpec(d, s.nhead, d, d, s.bias))
    feedforward = linear_params(LinearSpec(d, f, s.bias)) + linear_params(LinearSpec(f, d, s.bias))
    norm = shape_norm_params(ShapeNormSpec((d,), True, s.bias))
    if s.decoder:
        return 2 * attn + feedforward + 3 * norm
    return attn + feedforward + 2 * norm


def _transformer_layer_expr(s: TransformerLayerSpec) -> str:
    d, f = s.d_model, s.dim_feedforward
    attn = "2*attention" if s.decoder else "attention"
    norms = 3 if s.decoder else 2
    b = "" if s.bias else " (bias=False)"
    return f"{attn}({d}) + {d}*{f} + {f} + {f}*{d} + {d} + {norms}*LayerNorm({d}){b}"


def transformer_layer_spec(m: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer) -> TransformerLayerSpec:
    return TransformerLayerSpec(
        d_model=m.self_attn.embed_dim,
        nhead=m.self_attn.num_heads,
        dim_feedforward=m.linear1.out_features,
        bias=m.linear1.bias is not None,
        decoder=isinstance(m, nn.TransformerDecoderLayer),
    )


def _transformer_layer_call(m: nn.TransformerEncoderLayer | nn.TransformerDecoderLayer, call: Call) -> MacCount:
    """The layer's own work: its attention, linear, norm and dropout children are counted where they are called.

    On the meta device the layer never takes the fused inference path (``_transformer_encoder_layer_fwd``), so
    its children are always called as modules. What the layer does itself is the feed-forward activation when
    that is a plain function (a module activation is a child and counted there).
    """
    if isinstance(m.activation, nn.Module):
        return MacCount()
    return MacCount(activation=numel(call.output[:-1]) * m.linear1.out_features)


REGISTRY.rule(
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    family="transformer_layer",
    spec=transformer_layer_spec,
    params=transformer_layer_params,
    expression=_transformer_layer_expr,
    macs=_transformer_layer_call,
)
