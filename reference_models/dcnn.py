"""DCNN of Li, Ding and Sun, "Remaining useful life estimation in prognostics using deep convolution neural
networks", Reliability Engineering & System Safety 172 (2018) 1-11.

Input: a window of N_tw time steps x 14 sensors (N_tw = 30/20/30/15 for FD001/FD002/FD003/FD004), as one
channel. Four Conv2D layers of 10 filters with kernel (10, 1), same padding, tanh; one Conv2D of 1 filter with
kernel (3, 1), same padding, tanh; flatten; dropout 0.5; Dense(100, tanh); Dense(1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._registry import Assumption, ReferenceModel, register

SENSORS = 14
WINDOWS = {"FD001": 30, "FD002": 20, "FD003": 30, "FD004": 15}


def _same_padding(kernel: int) -> list[nn.Module]:
    """Keras "same" padding along time: an even kernel pads one more step below than above (10: 4 and 5)."""
    total = kernel - 1
    return [nn.ZeroPad2d((0, 0, total // 2, total - total // 2))]


class DCNN(nn.Module):
    def __init__(
        self, subset: str = "FD001", filters: int = 10, filter_length: int = 10, hidden: int = 100, dropout: float = 0.5
    ) -> None:
        super().__init__()
        if subset not in WINDOWS:
            raise ValueError(f"subset must be one of {', '.join(WINDOWS)}, got {subset!r}")
        self.window = WINDOWS[subset]
        layers: list[nn.Module] = []
        channels = 1
        for _ in range(4):
            layers += [*_same_padding(filter_length), nn.Conv2d(channels, filters, (filter_length, 1)), nn.Tanh()]
            channels = filters
        layers += [*_same_padding(3), nn.Conv2d(channels, 1, (3, 1)), nn.Tanh()]
        self.features = nn.Sequential(*layers)
        self.regressor = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(self.window * SENSORS, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N_tw, 14) -> one channel, the time axis as height, sensors as width (Keras: N_tw x 14 x 1)
        out: torch.Tensor = self.regressor(self.features(x.unsqueeze(1)))
        return out


def build_dcnn(subset: str = "FD001", **kwargs: Any) -> DCNN:  # DCNN's keyword hyperparameters
    return DCNN(subset, **kwargs)


register(
    ReferenceModel(
        name="dcnn",
        description="DCNN (Li, Ding and Sun 2018): 4 conv (10 filters, 10x1) + 1 conv (1 filter, 3x1), tanh, "
        "Dense 100, Dense 1",
        citation="X. Li, Q. Ding, J.-Q. Sun, Reliability Engineering & System Safety 172 (2018) 1-11, "
        "doi:10.1016/j.ress.2017.11.021",
        input_shape=(1, WINDOWS["FD001"], SENSORS),
        sequence_dim=1,
        builder=build_dcnn,
        variants=tuple((subset, {"subset": subset}) for subset in WINDOWS),
        provenance=(
            Assumption("subset", "FD001", "a builder argument: N_tw = 30/20/30/15 for FD001..FD004 (published)"),
            Assumption(
                "dropout placement",
                "on the flattened map, before Dense(100)",
                "published description; independent write-ups agree",
            ),
        ),
        notes="45,372 parameters for FD001/FD003, 31,372 for FD002, 24,372 for FD004: the documents' '~2M' is about "
        "44 to 82 times too large.",
    )
)
