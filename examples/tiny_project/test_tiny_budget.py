"""The example project's own tests: budgets stated in one line with archaudit's pytest plugin."""

import pytest
import torch

import archaudit
from tiny_model import build


@pytest.fixture
def model():
    return build()


# 5,508 parameters (see tiny_model.py); MACs per sample 16*64 + 64*64 + 64*4 = 5,376
@pytest.mark.budget(params=6_000, macs=(5_000, 6_000), input="1x16")
def test_forward_shape_and_budget(model):
    assert model(torch.zeros(1, 16)).shape == (1, 4)


def test_budget_fixture(budget):
    budget(build(), params=(5_000, 6_000), size_mb=0.1)  # 5,508 float32 parameters = 0.022 MB


def test_a_grown_model_fails_with_a_readable_table():
    grown = torch.nn.Sequential(build(), torch.nn.Linear(4, 1024))
    with pytest.raises(archaudit.BudgetExceeded, match=r"params\s+<= 6,000\s+10,628") as info:
        archaudit.assert_budget(grown, params=6_000)
    assert "OVER" in str(info.value)
