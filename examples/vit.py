"""A small ViT-like model for the README's tutorial: a conv patch stem, a class token held directly, positions
from a buffer, an nn.TransformerEncoder, and a classifier head whose weight is tied to a label embedding.

    archaudit report examples/vit.py:build --input 1x3x32x32 --depth 1
"""

import torch
from torch import nn


class TinyViT(nn.Module):
    def __init__(self, dim: int = 64, depth: int = 2, classes: int = 10, patch: int = 8, image: int = 32) -> None:
        super().__init__()
        tokens = (image // patch) ** 2 + 1
        self.stem = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("positions", torch.arange(tokens))
        self.pos = nn.Embedding(tokens, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=2 * dim, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.labels = nn.Embedding(classes, dim)
        self.head = nn.Linear(dim, classes, bias=False)
        self.head.weight = self.labels.weight  # tied: one tensor, two holders

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.stem(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.pos(self.positions)
        return self.head(self.encoder(tokens)[:, 0])


def build() -> TinyViT:
    return TinyViT()
