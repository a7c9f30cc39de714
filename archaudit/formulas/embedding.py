"""Embedding and EmbeddingBag: one row of ``embedding_dim`` per entry of the table."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount
from ..registry import REGISTRY


@dataclass(frozen=True)
class EmbeddingSpec:
    num_embeddings: int
    embedding_dim: int


def embedding_params(s: EmbeddingSpec) -> int:
    return s.num_embeddings * s.embedding_dim


def _embedding_expr(s: EmbeddingSpec) -> str:
    return f"{s.num_embeddings}*{s.embedding_dim}"


def embedding_spec(m: nn.Embedding | nn.EmbeddingBag) -> EmbeddingSpec:
    return EmbeddingSpec(m.num_embeddings, m.embedding_dim)


def _embedding_call(m: nn.Module, call: Call) -> MacCount:
    """A table lookup: no multiply-accumulate (EmbeddingBag's reduction over a bag is not counted either)."""
    return MacCount()


REGISTRY.rule(
    nn.Embedding,
    nn.EmbeddingBag,
    family="embedding",
    spec=embedding_spec,
    params=embedding_params,
    expression=_embedding_expr,
    macs=_embedding_call,
)
