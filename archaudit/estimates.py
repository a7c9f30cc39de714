"""The quoted transformer FLOPs estimates, each beside archaudit's exact count and the reasons for the gap.

Two steps, both pure once the model has been read:

* :func:`detect_dimensions` reads a transformer's dimensions from a Hugging Face ``.config`` (found duck-typed:
  a module with a ``config`` attribute naming a layer count, a width and a head count) or, without one, from a
  stack of ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer``; it returns None for a model that is
  neither (a CNN), never a guess;
* :func:`estimates` evaluates each paper's formula on those dimensions and sets it beside the exact figures the
  caller passes (archaudit's forward MACs, and training MACs where counted), with the relative error and the gap
  split into causes computed from the dimensions.

Convention, stated once: **every value is FLOPs = 2 x MACs**, over all the tokens of the audited input
(``batch x n_ctx``), as the papers count (one multiply-accumulate = 2 FLOPs). The exact value of an estimate is
``2 x`` the exact MACs passed in, so work archaudit keeps beside MACs (bias additions, norms, activations, softmax
elements) is not in it; where a formula counts such work (Chinchilla's softmax) that is one of the named gaps.

The per-token formulas, with the symbols of each paper (D = tokens = batch x n_ctx):

``6N``             6 N D, N = all parameters (the "C = 6ND" of Hoffmann et al. 2022, compared with their own
                   accounting in Appendix F, Table A4).
``kaplan_6N``      6 N D, N = non-embedding parameters: Kaplan et al. 2020, Section 2.1, "C = 6NBS" (B batch tokens,
                   S steps): forward 2N, backward twice the forward, the context-dependent term dropped.
``kaplan_forward`` C_forward = 2N + 2 n_layer n_ctx d_attn per token, N non-embedding (Kaplan et al. 2020, Table 1;
                   Eq. 2.2 writes d_model, equal to d_attn in their models). Table 1 lists the de-embedding
                   (2 d_model n_vocab) and the embedding (4 d_model) but leaves both out of the total.
``palm``           6N + 12 L H Q T per token (Chowdhery et al. 2022, Appendix B, model FLOPs for MFU): L layers,
                   H (query) heads, Q head dimension, T sequence length; N taken as all parameters (PaLM shares
                   its input and output embedding, so the table runs once, as the output matmul).
``chinchilla_forward`` / ``chinchilla_training``  Hoffmann et al. 2022, Appendix F, per sequence of ``seq_len``:
                   embeddings 2 seq_len vocab d_model; per layer: K/Q/V projections 2 x 3 seq_len d_model
                   (key_size num_heads), key @ query logits 2 seq_len^2 (key_size num_heads), softmax
                   3 num_heads seq_len^2, softmax @ value 2 seq_len^2 (key_size num_heads), final linear
                   2 seq_len (key_size num_heads) d_model, dense block 2 seq_len (d_model ffw_size + d_model
                   ffw_size); final logits 2 seq_len d_model vocab; backward = 2 x forward.
``megatron_recompute`` / ``megatron``  Narayanan et al. 2021 (Megatron-LM on GPU clusters, SC21), Section 5.1 and
                   its appendix on floating-point operations: F = 96 B s l h^2 (1 + s/6h + V/16lh) per iteration
                   with full activation recomputation (each layer's 24 B s h^2 + 4 B s^2 h forward FLOPs run four
                   times: forward, recompute, backward twice; the logit layer's 2 B s h V three times); without
                   recomputation the same derivation gives 72 B s l h^2 (1 + s/6h + V/12lh). The exact figure
                   beside the recompute variant is exact training plus the exact forward of all but the lm_head.

Causes of a gap, each a signed FLOPs contribution to (estimate - exact) computed from the dimensions and the
parameter counts; whatever they leave is ``unexplained`` (work the dimensions do not model: a BERT pooler, a
decoder's cross-attention):

``embedding_as_matmul``    an embedding table counted as a matmul weight; it is a lookup (no MACs);
``non_matmul_parameters``  biases and norm scales in N, counted as 2 FLOPs per token each; they do no MAC;
``lm_head_tied``           non-embedding N leaves out the tied table, which runs as the output matmul;
``no_lm_head``             the formula counts final logits this model does not compute;
``attention_omitted``      6N leaves out the attention scores and their weighted sum;
``attention_context``      Kaplan's context term is half the exact full T x T QK^T + PV (what causal masking would
                           leave, on a kernel that skipped masked scores; FlopCounterMode counts them all);
``gqa``                    n_kv_heads < n_heads shrinks the K/V projections, which the formula counts full;
``attention_width``        n_heads x head_dim differs from d_model (h), which the formula assumes;
``mlp``                    a gated MLP's third matrix, or d_ff other than the formula's;
``softmax``                softmax FLOPs in the formula, which archaudit counts apart from MACs;
``rotary``                 the rotary embedding's angle matmul, which no formula counts;
``backward``               the exact backward is not twice the exact forward.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

CONVENTION = "FLOPs = 2 x MACs, over all tokens of the input (batch x n_ctx)"


class Architecture(str, enum.Enum):
    ENCODER = "encoder"
    DECODER = "decoder"
    ENCODER_DECODER = "encoder-decoder"


class LmHead(str, enum.Enum):
    NONE = "none"
    TIED = "tied"
    """An output matmul whose weight is the token embedding table (one tensor)."""
    UNTIED = "untied"


class Pass(str, enum.Enum):
    FORWARD = "forward"
    TRAINING = "training"


@dataclass(frozen=True)
class TransformerDims:
    """A transformer's dimensions and the input's, as read from the model (``source`` says from where)."""

    source: str
    """``"config:GPT2Config"`` or ``"structure:TransformerEncoderLayer x2"``."""
    architecture: Architecture
    n_layer: int
    """Layers of every stack (an encoder-decoder's encoder and decoder layers together)."""
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab: int
    """0 when the model has no token embedding."""
    n_ctx: int
    """The sequence length of the audited input (not the model's maximum)."""
    batch: int
    lm_head: LmHead
    gated_mlp: bool
    """Three d_model x d_ff matrices per layer (SwiGLU, GEGLU) rather than two."""
    embedding_params: int
    """Elements of the model's ``nn.Embedding`` tables (token, position, token type), each tensor once; a tied
    lm_head's weight is the token table and is in here."""
    rotary: bool = False
    """Rotary position embedding computed in the forward pass (a module holding an ``inv_freq`` buffer): its
    angles are a (head_dim / 2) x 1 by 1 x n_ctx matmul, which FlopCounterMode counts; once per forward pass, not
    per sequence, when the position ids are shared by the batch (as Hugging Face builds them when none are given)."""
    notes: tuple[str, ...] = ()
    """Caveats of the detection (a default applied, a dimension it could not tell apart)."""

    @property
    def d_attn(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def tokens(self) -> int:
        return self.batch * self.n_ctx

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "architecture": self.architecture.value,
            "n_layer": self.n_layer,
            "d_model": self.d_model,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "d_ff": self.d_ff,
            "vocab": self.vocab,
            "n_ctx": self.n_ctx,
            "batch": self.batch,
            "lm_head": self.lm_head.value,
            "gated_mlp": self.gated_mlp,
            "embedding_params": self.embedding_params,
            "rotary": self.rotary,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Gap:
    """One cause of an estimate's difference from the exact count."""

    cause: str
    flops: int
    """Its signed contribution to ``estimate - exact``, in FLOPs."""
    text: str

    def as_json(self) -> dict[str, Any]:
        return {"cause": self.cause, "flops": self.flops, "text": self.text}


@dataclass(frozen=True)
class Estimate:
    """One paper's estimate for the audited input, in FLOPs (2 x MACs), beside the exact count."""

    name: str
    formula: str
    source: str
    covers: Pass
    value: int
    """FLOPs over all ``tokens`` of the input."""
    tokens: int
    exact: int | None
    """2 x the exact MACs of the same pass; None when no exact count was given (training not counted)."""
    gaps: tuple[Gap, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def per_token(self) -> float:
        return self.value / self.tokens

    @property
    def relative_error(self) -> float | None:
        """``(estimate - exact) / exact``."""
        if self.exact is None or self.exact == 0:
            return None
        return (self.value - self.exact) / self.exact

    @property
    def unexplained(self) -> int | None:
        """FLOPs of ``estimate - exact`` that no named gap accounts for."""
        if self.exact is None:
            return None
        return self.value - self.exact - sum(g.flops for g in self.gaps)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "formula": self.formula,
            "source": self.source,
            "pass": self.covers.value,
            "tokens": self.tokens,
            "value_flops": self.value,
            "per_token_flops": self.per_token,
            "exact_flops": self.exact,
            "relative_error": self.relative_error,
            "gaps": [g.as_json() for g in self.gaps],
            "unexplained_flops": self.unexplained,
            "notes": list(self.notes),
        }


def as_json(dims: TransformerDims, found: Sequence[Estimate]) -> dict[str, Any]:
    """The ``estimates`` block of the ``--training`` JSON: convention, dimensions, then each estimate in order."""
    return {"convention": CONVENTION, "dimensions": dims.as_json(), "estimates": [e.as_json() for e in found]}


# ---------------------------------------------------------------------------------------------------- detection


def _input_extent(shape: Sequence[int] | int, *, batch_first: bool) -> tuple[int, int]:
    """(batch, n_ctx) of the input: an int is a sequence length (batch 1); a shape is ``(batch, n_ctx, ...)``, or
    ``(n_ctx, batch, ...)`` for a torch transformer stack built without ``batch_first``."""
    if isinstance(shape, int):
        dims: tuple[int, ...] = (shape,)
    else:
        dims = tuple(shape)
    if not dims or any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in dims):
        raise ValueError(f"input shape {shape!r}: expected a positive sequence length or a shape of positive sizes")
    if len(dims) == 1:
        return 1, dims[0]
    return (dims[0], dims[1]) if batch_first else (dims[1], dims[0])


def _rotary(model: nn.Module) -> bool:
    return any("inv_freq" in m._buffers for m in model.modules())


def _embedding_params(model: nn.Module) -> int:
    tables = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding)}
    return sum(tables.values())


def _config_owner(model: nn.Module) -> tuple[nn.Module, Any] | None:
    """The first module (the root first) whose ``config`` names a layer count, a width and a head count."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is None:
            continue
        if all(_first(config, *names) is not None for names in (_LAYERS, _WIDTH, _HEADS)) or (
            _first(config, *_WIDTH) is not None and _encoder_decoder_layers(config) is not None
        ):
            return module, config
    return None


_LAYERS = ("num_hidden_layers", "n_layer", "num_layers")
_WIDTH = ("hidden_size", "n_embd", "d_model")
_HEADS = ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads")
_FF = ("intermediate_size", "n_inner", "d_ff", "ffn_dim", "encoder_ffn_dim")


def _first(config: Any, *names: str) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def _encoder_decoder_layers(config: Any) -> int | None:
    """Encoder plus decoder layers of a config that names both (T5: num_layers + num_decoder_layers; BART,
    Whisper: encoder_layers + decoder_layers), else None."""
    for encoder, decoder in (("num_layers", "num_decoder_layers"), ("encoder_layers", "decoder_layers")):
        enc, dec = getattr(config, encoder, None), getattr(config, decoder, None)
        if isinstance(enc, int) and isinstance(dec, int):
            return enc + dec
    return None


def _matrices(model: nn.Module, a: int, b: int) -> int:
    """2-D parameters of shape a x b or b x a, each tensor once."""
    found = {id(p) for p in model.parameters() if p.dim() == 2 and tuple(sorted(p.shape)) == tuple(sorted((a, b)))}
    return len(found)


def _gated(model: nn.Module, config: Any, d_model: int, d_ff: int, n_layer: int) -> tuple[bool, str | None]:
    """Whether the MLP is gated: the config's own flag (T5's ``is_gated_act``), else three d_model x d_ff
    matrices per layer rather than two. Returns a caveat when the shapes cannot tell (d_ff equal to d_model or to
    3 d_model, the width of a fused QKV)."""
    flag = getattr(config, "is_gated_act", None) if config is not None else None
    if isinstance(flag, bool):
        return flag, None
    if d_ff in (d_model, 3 * d_model):
        return False, f"d_ff = {d_ff} cannot be told from other matrices of the layer: MLP taken as ungated"
    return _matrices(model, d_model, d_ff) >= 3 * n_layer, None


def _lm_head(owner: nn.Module) -> LmHead:
    """From ``get_output_embeddings()`` / ``get_input_embeddings()`` where the module has them (duck-typed)."""
    get_out = getattr(owner, "get_output_embeddings", None)
    out = get_out() if callable(get_out) else None
    if not isinstance(out, nn.Module) or getattr(out, "weight", None) is None:
        return LmHead.NONE
    get_in = getattr(owner, "get_input_embeddings", None)
    table = get_in() if callable(get_in) else None
    return LmHead.TIED if table is not None and getattr(table, "weight", None) is out.weight else LmHead.UNTIED


def _from_config(model: nn.Module, owner: nn.Module, config: Any, shape: Sequence[int] | int) -> TransformerDims:
    notes: list[str] = []
    both = bool(getattr(config, "is_encoder_decoder", False))
    layers = _encoder_decoder_layers(config) if both else None
    n_layer = int(layers if layers is not None else _first(config, *_LAYERS))
    d_model = int(_first(config, *_WIDTH))
    n_heads = int(_first(config, *_HEADS))
    n_kv = _first(config, "num_key_value_heads")
    head_dim = _first(config, "head_dim", "d_kv")
    if head_dim is None:
        if d_model % n_heads:
            raise ValueError(f"{type(config).__name__}: d_model {d_model} is not a multiple of n_heads {n_heads}")
        head_dim = d_model // n_heads
    d_ff = _first(config, *_FF)
    if d_ff is None:
        d_ff = 4 * d_model
        notes.append(f"d_ff not in {type(config).__name__} (GPT-2's n_inner=None): 4 * d_model = {d_ff}")
    gated, caveat = _gated(model, config, d_model, int(d_ff), n_layer)
    if caveat:
        notes.append(caveat)
    causal = bool(getattr(config, "is_decoder", False)) or any(
        getattr(m, "is_causal", False) is True for m in model.modules()
    )
    architecture = Architecture.ENCODER_DECODER if both else Architecture.DECODER if causal else Architecture.ENCODER
    batch, n_ctx = _input_extent(shape, batch_first=True)
    return TransformerDims(
        source=f"config:{type(config).__name__}",
        architecture=architecture,
        n_layer=n_layer,
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=int(n_kv if n_kv is not None else n_heads),
        head_dim=int(head_dim),
        d_ff=int(d_ff),
        vocab=int(_first(config, "vocab_size") or 0),
        n_ctx=n_ctx,
        batch=batch,
        lm_head=_lm_head(owner),
        gated_mlp=gated,
        embedding_params=_embedding_params(model),
        rotary=_rotary(model),
        notes=tuple(notes),
    )


_TORCH_LAYERS = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def _layers(model: nn.Module) -> Iterator[nn.TransformerEncoderLayer | nn.TransformerDecoderLayer]:
    for module in model.modules():
        if isinstance(module, _TORCH_LAYERS):
            yield module


def _from_structure(model: nn.Module, shape: Sequence[int] | int) -> TransformerDims | None:
    layers = list(_layers(model))
    if not layers:
        return None
    shapes = {(m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features) for m in layers}
    if len(shapes) != 1:
        return None  # layers of different widths: not one transformer's dimensions
    ((d_model, n_heads, d_ff),) = shapes
    kinds = {type(m) for m in layers}
    encoders = sum(isinstance(m, nn.TransformerEncoderLayer) for m in layers)
    decoders = len(layers) - encoders
    architecture = (
        Architecture.ENCODER_DECODER
        if encoders and decoders
        else Architecture.DECODER
        if decoders
        else Architecture.ENCODER
    )
    notes = []
    if decoders:
        notes.append("TransformerDecoderLayer's cross-attention over the memory is not modelled by the formulas")
    if architecture is Architecture.ENCODER:
        notes.append("a causal mask is passed at call time, not held by the layers: attention taken as bidirectional")
    inside = {id(p) for m in layers for p in m.parameters()}
    tables = [m for m in model.modules() if isinstance(m, nn.Embedding) and m.embedding_dim == d_model]
    heads = [
        m
        for m in model.modules()
        if isinstance(m, nn.Linear) and m.in_features == d_model and id(m.weight) not in inside
    ]
    vocab, lm_head = 0, LmHead.NONE
    if tables:
        token = max(tables, key=lambda m: m.num_embeddings)
        vocab = token.num_embeddings
        outputs = [m for m in heads if m.out_features == vocab]
        if any(m.weight is token.weight for m in outputs):
            lm_head = LmHead.TIED
        elif outputs:
            lm_head = LmHead.UNTIED
    batch, n_ctx = _input_extent(shape, batch_first=bool(layers[0].self_attn.batch_first))
    return TransformerDims(
        source=f"structure:{' + '.join(sorted(k.__name__ for k in kinds))} x{len(layers)}",
        architecture=architecture,
        n_layer=len(layers),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        head_dim=layers[0].self_attn.head_dim,
        d_ff=d_ff,
        vocab=vocab,
        n_ctx=n_ctx,
        batch=batch,
        lm_head=lm_head,
        gated_mlp=False,
        embedding_params=_embedding_params(model),
        rotary=_rotary(model),
        notes=tuple(notes),
    )


def detect_dimensions(model: nn.Module, shape: Sequence[int] | int) -> TransformerDims | None:
    """The transformer dimensions of ``model`` for an input of ``shape`` (``(batch, n_ctx)`` token ids, or a
    sequence length for batch 1), or None when it is not a transformer.

    Read from the first module holding a Hugging Face-style ``config`` (layer count, width, heads, and where given
    key/value heads, head_dim, d_ff, vocab_size, is_encoder_decoder), else from a stack of ``torch.nn``
    transformer layers of one width. The architecture is a decoder when the config says ``is_decoder`` or an
    attention module has ``is_causal = True``; the lm_head is what ``get_output_embeddings()`` returns, tied when
    its weight is the input embedding's tensor; the MLP is gated when each layer has three d_model x d_ff matrices.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"detect_dimensions takes an nn.Module, not {type(model).__name__}")
    found = _config_owner(model)
    if found is not None:
        return _from_config(model, *found, shape)
    return _from_structure(model, shape)


# ---------------------------------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class _Model:
    """Exact forward MACs of the matmuls the dimensions determine, over all tokens (the gaps' reference)."""

    qkv: int
    proj: int
    attention: int
    """QK^T and PV over the full n_ctx x n_ctx, every query head."""
    mlp: int
    lm_head: int
    weights: int
    """Parameters of the per-token matmuls of the layers (the lm_head apart)."""

    @property
    def forward(self) -> int:
        return self.qkv + self.proj + self.attention + self.mlp + self.lm_head


def _model(d: TransformerDims) -> _Model:
    n, t, layer = d.tokens, d.n_ctx, d.n_layer
    qkv_w = d.d_model * (d.n_heads + 2 * d.n_kv_heads) * d.head_dim
    proj_w = d.d_attn * d.d_model
    mlp_w = d.mlp_matrices * d.d_model * d.d_ff
    return _Model(
        qkv=n * layer * qkv_w,
        proj=n * layer * proj_w,
        attention=2 * d.batch * layer * d.n_heads * t * t * d.head_dim,
        mlp=n * layer * mlp_w,
        lm_head=n * d.d_model * d.vocab if d.lm_head is not LmHead.NONE else 0,
        weights=layer * (qkv_w + proj_w + mlp_w),
    )


class _Gaps:
    """Collects gaps, writing each one's share of the exact count into its text."""

    def __init__(self, exact: int | None) -> None:
        self.exact = exact
        self.items: list[Gap] = []

    def add(self, cause: str, flops: int, text: str) -> None:
        if flops == 0:
            return
        share = f" ({flops / self.exact:+.2%} of the exact count)" if self.exact else ""
        self.items.append(Gap(cause, flops, f"{text}: {flops:+,} FLOPs{share}"))


def _causal_note(d: TransformerDims) -> tuple[str, ...]:
    if d.architecture is Architecture.ENCODER:
        return ()
    t = d.n_ctx
    skipped = 2 * 2 * d.batch * d.n_layer * d.n_heads * d.head_dim * (t * (t - 1) // 2)
    return (
        f"causal masking: the exact count (FlopCounterMode's convention) includes the full {t} x {t} attention "
        f"scores and weighted sum; a kernel that skipped the {t * (t - 1) // 2:,} masked scores per head would do "
        f"{skipped:,} FLOPs fewer per forward pass",
    )


def _two_stack_note(d: TransformerDims) -> tuple[str, ...]:
    if d.architecture is not Architecture.ENCODER_DECODER:
        return ()
    return (
        "encoder-decoder: the formulas assume one stack over one sequence; the encoder's and decoder's lengths and "
        "the decoder's cross-attention are not modelled, and are left in the unexplained remainder",
    )


def _tied_note(d: TransformerDims, in_n: bool) -> tuple[str, ...]:
    if d.lm_head is not LmHead.TIED:
        return ()
    if in_n:
        return (
            "lm_head tied: N counts the shared vocab x d_model table once, and it runs once per token as the "
            "output matmul (the input lookup is free), so that part of N is right",
        )
    return ()


def _rotary_gap(gaps: _Gaps, d: TransformerDims, passes: int) -> None:
    """The rotary angles' matmul, ``(head_dim / 2) x n_ctx`` MACs (position ids shared by the batch), in
    ``passes`` forward passes."""
    if d.rotary:
        gaps.add(
            "rotary",
            -passes * 2 * (d.head_dim // 2) * d.n_ctx,
            "the rotary embedding's angles (inverse frequencies x positions, a matmul the exact count includes)",
        )


def _backward_gap(gaps: _Gaps, forward: int, training: int | None) -> None:
    """The exact backward's departure from 2 x the exact forward: ``3 x forward - training`` (FLOPs)."""
    if training is None or forward == 0:
        return
    ratio = (training - forward) / forward
    gaps.add(
        "backward",
        3 * forward - training,
        f"the exact backward is {ratio:.5f} x the exact forward, not 2 x (parameter-free ops such as a rotary "
        "embedding's angles have no backward; archaudit's training count decides)",
    )


def _weights_gaps(
    gaps: _Gaps, d: TransformerDims, m: _Model, n: int, per_param: int, *, tables: int, non_embedding: int
) -> None:
    """Gaps of a ``per_param x N`` term against the exact weight matmuls, N = ``non_embedding`` (+ ``tables``)."""
    untied_head = d.d_model * d.vocab if d.lm_head is LmHead.UNTIED else 0
    other = non_embedding - m.weights - untied_head
    gaps.add(
        "non_matmul_parameters",
        per_param * other * n,
        f"N includes {other:,} parameters that are no per-token matmul weight (biases, norm scales, ...), "
        f"{per_param} FLOPs per token each; they do no multiply-accumulate",
    )
    if tables:
        lookup = tables - (d.d_model * d.vocab if d.lm_head is LmHead.TIED else 0)
        gaps.add(
            "embedding_as_matmul",
            per_param * lookup * n,
            f"N counts {lookup:,} embedding-table parameters (token and position tables not used as the lm_head) as "
            f"matmul weights, {per_param} FLOPs per token each; a table lookup does no multiply-accumulate",
        )
    elif d.lm_head is LmHead.TIED:
        gaps.add(
            "lm_head_tied",
            -per_param * d.d_model * d.vocab * n,
            f"lm_head tied to the embedding: non-embedding N leaves out the shared {d.vocab} x {d.d_model} table, "
            f"but it runs as the output matmul ({per_param} FLOPs per token per element)",
        )


def estimates(
    dims: TransformerDims,
    *,
    params_total: int,
    params_non_embedding: int,
    exact_forward_macs: int,
    exact_training_macs: int | None = None,
    tokens: int | None = None,
) -> tuple[Estimate, ...]:
    """Every estimate for the audited input, in FLOPs (2 x MACs), beside 2 x the exact MACs.

    ``params_total``: every parameter once (archaudit's ``audit_params(...).total``). ``params_non_embedding``:
    ``params_total`` less the embedding tables (``dims.embedding_params``: token, position and type tables, a tied
    lm_head's weight with them since it is the token table; an untied lm_head stays in, being a matmul weight).
    ``exact_forward_macs``: archaudit's MACs of one forward pass on the input the dimensions were read for;
    ``exact_training_macs``: of forward plus backward on it, or None (the training estimates then have no exact
    value). ``tokens``: the tokens those counts cover, when given it must be ``dims.batch * dims.n_ctx``.
    """
    if tokens is not None and tokens != dims.tokens:
        raise ValueError(f"tokens={tokens} but the dimensions were read for {dims.batch} x {dims.n_ctx} tokens")
    if params_non_embedding < 0 or params_non_embedding > params_total:
        raise ValueError(f"params_non_embedding={params_non_embedding} must lie in [0, params_total={params_total}]")
    for name, value in (("exact_forward_macs", exact_forward_macs), ("exact_training_macs", exact_training_macs)):
        if value is not None and value < 0:
            raise ValueError(f"{name}={value} is negative")
    d, m, n = dims, _model(dims), dims.tokens
    fwd = 2 * exact_forward_macs
    train = 2 * exact_training_macs if exact_training_macs is not None else None
    tables = params_total - params_non_embedding
    causal, two = _causal_note(d), _two_stack_note(d)
    found: list[Estimate] = []

    # 6N, N = all parameters
    g = _Gaps(train)
    _weights_gaps(g, d, m, n, 6, tables=tables, non_embedding=params_non_embedding)
    g.add("attention_omitted", -6 * m.attention, "6N leaves out the attention scores QK^T and their weighted sum PV")
    _rotary_gap(g, d, 3)
    _backward_gap(g, fwd, train)
    found.append(
        Estimate(
            "6N",
            "6 N D, N = all parameters",
            "Hoffmann et al. 2022 (Chinchilla), C = 6ND, set against their own accounting in Appendix F (Table A4)",
            Pass.TRAINING,
            6 * params_total * n,
            n,
            train,
            tuple(g.items),
            _tied_note(d, True) + two,
        )
    )

    # Kaplan's 6N, N = non-embedding parameters
    g = _Gaps(train)
    _weights_gaps(g, d, m, n, 6, tables=0, non_embedding=params_non_embedding)
    g.add("attention_omitted", -6 * m.attention, "6N leaves out the attention scores QK^T and their weighted sum PV")
    _rotary_gap(g, d, 3)
    _backward_gap(g, fwd, train)
    found.append(
        Estimate(
            "kaplan_6N",
            "6 N D, N = non-embedding parameters (forward 2N + backward 4N per token)",
            "Kaplan et al. 2020, Section 2.1, C = 6NBS",
            Pass.TRAINING,
            6 * params_non_embedding * n,
            n,
            train,
            tuple(g.items),
            two,
        )
    )

    # Kaplan's forward, with the context term
    g = _Gaps(fwd)
    _weights_gaps(g, d, m, n, 2, tables=0, non_embedding=params_non_embedding)
    context = 2 * d.n_layer * d.n_ctx * d.d_attn * n
    why = (
        "it is about what a causal kernel skipping the masked scores would do (each query attends to (T+1)/2 keys on "
        "average), and FlopCounterMode counts the full T x T"
        if d.architecture is not Architecture.ENCODER
        else "this encoder attends over the full T x T"
    )
    g.add(
        "attention_context",
        context - 2 * m.attention,
        f"Kaplan's context term 2 n_layer n_ctx d_attn per token is half the exact QK^T + PV "
        f"(4 n_layer n_ctx d_attn per token over the full T x T): {why}",
    )
    _rotary_gap(g, d, 1)
    found.append(
        Estimate(
            "kaplan_forward",
            "2N + 2 n_layer n_ctx d_attn per token, N = non-embedding parameters",
            "Kaplan et al. 2020, Table 1 and Eq. 2.2",
            Pass.FORWARD,
            2 * params_non_embedding * n + context,
            n,
            fwd,
            tuple(g.items),
            two,
        )
    )

    # PaLM
    g = _Gaps(train)
    _weights_gaps(g, d, m, n, 6, tables=tables, non_embedding=params_non_embedding)
    palm_attention = 12 * d.n_layer * d.n_heads * d.head_dim * d.n_ctx * n
    g.add("attention_context", palm_attention - 6 * m.attention, "12 L H Q T differs from 3 x the exact QK^T + PV")
    _rotary_gap(g, d, 3)
    _backward_gap(g, fwd, train)
    found.append(
        Estimate(
            "palm",
            "6N + 12 L H Q T per token, N = all parameters",
            "Chowdhery et al. 2022 (PaLM), Appendix B",
            Pass.TRAINING,
            6 * params_total * n + palm_attention,
            n,
            train,
            tuple(g.items),
            _tied_note(d, True) + causal + two,
        )
    )

    # Chinchilla, Appendix F
    chinchilla = _chinchilla_forward(d)
    for covers, factor, exact in ((Pass.FORWARD, 1, fwd), (Pass.TRAINING, 3, train)):
        g = _Gaps(exact)
        _chinchilla_gaps(g, d, m, factor)
        _rotary_gap(g, d, factor)
        if covers is Pass.TRAINING:
            _backward_gap(g, fwd, train)
        found.append(
            Estimate(
                f"chinchilla_{covers.value}",
                "embeddings + n_layer (QKV + logits + softmax + softmax@value + projection + dense) + final logits"
                + ("; backward = 2 x forward" if factor == 3 else ""),
                "Hoffmann et al. 2022 (Chinchilla), Appendix F",
                covers,
                factor * chinchilla,
                n,
                exact,
                tuple(g.items),
                causal + two,
            )
        )

    # Megatron
    for name, passes, text in (
        ("megatron_recompute", 4, "96 B s l h^2 (1 + s/6h + V/16lh), with activation recomputation"),
        ("megatron", 3, "72 B s l h^2 (1 + s/6h + V/12lh), without activation recomputation"),
    ):
        exact = train
        if train is not None and passes == 4:
            exact = train + fwd - 2 * m.lm_head  # recomputation reruns every layer's forward, not the logit layer's
        g = _Gaps(exact)
        _megatron_gaps(g, d, m, passes)
        _rotary_gap(g, d, passes)
        _backward_gap(g, fwd, train)
        found.append(
            Estimate(
                name,
                text,
                "Narayanan et al. 2021 (Megatron-LM, SC21), Section 5.1 and appendix (floating-point operations)",
                Pass.TRAINING,
                _megatron(d, passes),
                n,
                exact,
                tuple(g.items),
                causal + two,
            )
        )
    return tuple(found)


def _chinchilla_forward(d: TransformerDims) -> int:
    """Hoffmann et al. 2022, Appendix F, per sequence of seq_len = n_ctx, times the batch."""
    s, h, kn = d.n_ctx, d.d_model, d.d_attn  # key_size x num_heads
    embeddings = 2 * s * d.vocab * h
    attention = 2 * 3 * s * h * kn + 2 * s * s * kn + 3 * d.n_heads * s * s + 2 * s * s * kn + 2 * s * kn * h
    dense = 2 * s * (h * d.d_ff + h * d.d_ff)
    logits = 2 * s * h * d.vocab
    return d.batch * (embeddings + d.n_layer * (attention + dense) + logits)


def _chinchilla_gaps(g: _Gaps, d: TransformerDims, m: _Model, factor: int) -> None:
    n, s, h = d.tokens, d.n_ctx, d.d_model
    g.add(
        "embedding_as_matmul",
        factor * 2 * n * d.vocab * h,
        "Chinchilla counts the embeddings as a matmul (2 seq_len vocab d_model); they are a lookup",
    )
    g.add(
        "gqa",
        factor * 2 * (n * d.n_layer * 3 * h * d.d_attn - m.qkv),
        f"GQA: n_kv_heads = {d.n_kv_heads} < n_heads = {d.n_heads} shrinks the K/V projections, which Chinchilla "
        "counts at full width (3 d_model key_size num_heads)",
    )
    g.add(
        "softmax",
        factor * 3 * d.batch * d.n_layer * d.n_heads * s * s,
        "Chinchilla counts 3 FLOPs per softmax element (3 num_heads seq_len^2 per layer); archaudit keeps softmax "
        "elements in their own column, not in MACs",
    )
    g.add(
        "mlp",
        factor * 2 * (n * d.n_layer * 2 * h * d.d_ff - m.mlp),
        f"gated MLP: {d.mlp_matrices} matrices of d_model x d_ff per layer; Chinchilla's dense block counts 2",
    )
    if d.lm_head is LmHead.NONE:
        g.add(
            "no_lm_head",
            factor * 2 * n * h * d.vocab,
            "this model has no lm_head, and Chinchilla counts the final logits (2 seq_len d_model vocab)",
        )


def _megatron(d: TransformerDims, passes: int) -> int:
    """``passes x l (24 B s h^2 + 4 B s^2 h) + 6 B s h V``: 96 B s l h^2 (1 + s/6h + V/16lh) at four passes,
    72 B s l h^2 (1 + s/6h + V/12lh) at three."""
    b, s, h, layer = d.batch, d.n_ctx, d.d_model, d.n_layer
    return passes * layer * (24 * b * s * h * h + 4 * b * s * s * h) + 6 * b * s * h * d.vocab


def _megatron_gaps(g: _Gaps, d: TransformerDims, m: _Model, passes: int) -> None:
    n, b, s, h, layer = d.tokens, d.batch, d.n_ctx, d.d_model, d.n_layer
    full = d.d_model * 3 * d.d_attn  # Q, K and V at full width, as Megatron's 6 B s h^2 takes them
    gqa = n * layer * (full - d.d_model * (d.n_heads + 2 * d.n_kv_heads) * d.head_dim)
    width = (6 * n * h * h + 4 * b * s * s * h + 2 * n * h * h) * layer - 2 * (n * layer * full + m.attention + m.proj)
    g.add(
        "attention_width",
        passes * width,
        f"n_heads x head_dim = {d.d_attn} differs from h = {h}, which Megatron's attention terms assume",
    )
    g.add(
        "gqa",
        passes * 2 * gqa,
        f"GQA: n_kv_heads = {d.n_kv_heads} < n_heads = {d.n_heads} shrinks the K/V projections, which Megatron "
        "counts at full width (6 B s h^2)",
    )
    what = f"gated MLP: 3 matrices of h x {d.d_ff} per layer" if d.gated_mlp else f"d_ff = {d.d_ff} per layer"
    g.add("mlp", passes * (16 * n * h * h * layer - 2 * m.mlp), f"{what}; Megatron assumes 2 matrices of h x 4h")
    if d.lm_head is LmHead.NONE:
        g.add(
            "no_lm_head",
            6 * n * h * d.vocab,
            "this model has no lm_head, and Megatron counts the logit layer (6 B s h V)",
        )


__all__ = [
    "CONVENTION",
    "Architecture",
    "Estimate",
    "Gap",
    "LmHead",
    "Pass",
    "TransformerDims",
    "as_json",
    "detect_dimensions",
    "estimates",
]
