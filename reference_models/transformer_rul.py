"""A plain ``nn.TransformerEncoder`` regressor standing for the documents' generic "Transformer-based" row.

17 features -> Linear to ``d_model`` -> sinusoidal positions (a buffer) -> ``num_layers`` encoder layers ->
mean over time -> Linear(d_model, 1). The dimensions are builder arguments.
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import sinusoidal_positions
from ._registry import Assumption, ReferenceModel, register


class TransformerRUL(nn.Module):
    def __init__(
        self,
        in_features: int = 17,
        d_model: int = 512,
        nhead: int = 8,
        num_layers: int = 4,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        max_len: int = 512,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(in_features, d_model)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.positions[: x.shape[1]]
        return self.head(self.encoder(h).mean(dim=1))


def build_transformer_rul(**kwargs) -> TransformerRUL:
    return TransformerRUL(**kwargs)


register(
    ReferenceModel(
        name="transformer-rul",
        description="Plain Transformer-encoder RUL regressor (the documents' generic 'Transformer-based' row)",
        citation="stands for the documents' 'Transformer-based' comparison row, which names no paper; layer design of "
        "Vaswani et al. 2017 (nn.TransformerEncoderLayer)",
        input_shape=(1, 30, 17),
        sequence_dim=1,
        builder=build_transformer_rul,
        provenance=(
            Assumption(
                "d_model, nhead, dim_feedforward",
                (512, 8, 2048),
                "the row names no model; Transformer-base widths (Vaswani et al. 2017)",
            ),
            Assumption(
                "num_layers",
                4,
                "chosen so the count lands in the row's own '~12-15M' range: 4 layers give 12,619,265; "
                "3 give 9.47M and 5 give 15.77M",
            ),
        ),
        notes="A stand-in, not a published model: its count is in range by construction and proves nothing about "
        "the row.",
        fitted_to=("amnl-000:cmp_transformer_params",),
    )
)
