"""Three honest outcomes, decided by the work rather than by the Python class (issue #14).

Oracles: ``numel()`` for direct parameters; FlopCounterMode on meta / 2 for the matrix work a module without a rule
does itself; element counts by hand for the column ops it runs; the op's own name for work nothing counts.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import archaudit
from archaudit.inputs import InputSpec
from archaudit.macs import audit_macs
from archaudit.records import Status
from archaudit.walker import audit_params


class LayerScaleBlock(nn.Module):
    """Plain parameters held by the module itself (ViT's class token, a LayerScale gamma), and a child Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, 8))
        self.gamma = nn.Parameter(torch.ones(8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * self.proj(torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1))


def test_parameters_a_module_holds_itself_are_direct_and_exact():
    model = LayerScaleBlock()
    audit = audit_params(model)
    root = audit.record("")
    assert root.status is Status.DIRECT and audit.unsupported == ()
    assert root.direct == (("class_token", (1, 1, 8)), ("gamma", (8,)))
    assert root.params == 1 * 1 * 8 + 8 == model.class_token.numel() + model.gamma.numel()
    assert root.note == "direct parameters: class_token (1x1x8), gamma (8)"
    assert audit.record("proj").status is Status.FORMULA
    assert audit.total == sum(p.numel() for p in model.parameters())  # numel(), each tensor once


class Attention(nn.Module):
    """Matrix work of its own, no rule: q @ k^T, then scaled_dot_product_attention."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(x, x.transpose(-1, -2))
        q = x.view(x.shape[0], x.shape[1], 2, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape)
        return out + scores.sum(-1, keepdim=True)


def _flop_counter_macs(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops()) // 2


def test_matrix_work_of_a_module_without_a_rule_is_counted_op_by_op():
    x = torch.empty(2, 6, 8, device="meta")
    record = audit_macs(Attention(), [x]).record("")
    assert (record.status, record.source, record.unsupported_ops) == (Status.OPS, "ops", ())
    assert record.macs == _flop_counter_macs(Attention(), x)
    # 2 x 6x8 @ 8x6, then per head (2 heads of 4) scores and values: 2 * 2 * (6*4*6 + 6*6*4)
    assert record.macs == 2 * 6 * 8 * 6 + 2 * 2 * (6 * 4 * 6 + 6 * 6 * 4)
    assert record.counts.softmax == 2 * 2 * 6 * 6  # batch x heads x queries x keys


class Columns(nn.Module):
    """Column work of its own, no rule: tanh, gelu, softmax, layer_norm, rms_norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(x) + F.gelu(x)
        s = x.softmax(-1)
        n = F.layer_norm(x, (x.shape[-1],)) + F.rms_norm(x, (x.shape[-1],))
        return a + s + n


def test_column_work_of_a_module_without_a_rule_is_counted_by_elements():
    audit = audit_macs(Columns(), [InputSpec((2, 3, 8))])
    record = audit.record("")
    assert (record.status, record.source) == (Status.OPS, "ops")
    elements = 2 * 3 * 8
    assert record.counts.activation == 2 * elements  # tanh and gelu, one element each
    assert record.counts.softmax == elements
    assert record.counts.norm == 2 * elements  # layer_norm and rms_norm
    assert record.macs == 0 and audit.unsupported == ()


class Spectral(nn.Module):
    """Its own work is an FFT and a matrix inverse: no FLOP formula counts them, and neither is free."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(torch.fft.fft(x).real)
        return y @ torch.linalg.inv(y.transpose(-1, -2) @ y)


def test_work_nothing_counts_is_unsupported_and_names_the_op():
    x = torch.empty(2, 4, 4, device="meta")
    Spectral().to("meta")(x)  # both ops run on meta
    audit = audit_macs(Spectral(), [x])
    record = audit.record("")
    assert record.status is Status.UNSUPPORTED and record.source == "ops"
    assert dict(record.unsupported_ops) == {"aten._fft_r2c": 1, "aten.linalg_inv_ex": 1}
    assert "aten._fft_r2c" in record.note and "aten.linalg_inv_ex" in record.note
    assert audit.unsupported_ops == {"aten._fft_r2c": 1, "aten.linalg_inv_ex": 1}
    assert [r.name for r in audit.unsupported] == [""]
    # what the matmuls did is still counted: y^T @ y (2 x 4x4 @ 4x4), then y @ inverse
    assert record.macs == 2 * (4 * 4 * 4) * 2
    assert audit.record("proj").status is Status.FORMULA


def test_a_budget_passes_with_direct_and_op_counted_modules_and_fails_on_a_real_unknown():
    model = nn.Sequential(LayerScaleBlockNoCat(), Columns())
    assert archaudit.assert_budget(model, params=1_000, macs=10_000, input="2x3x8").ok
    with pytest.raises(archaudit.BudgetExceeded, match=r"allow_unsupported=true to accept") as failed:
        archaudit.assert_budget(Spectral(), params=1_000, macs=10_000, input="2x4x4")
    assert "aten._fft_r2c" in str(failed.value) and "FAIL" in str(failed.value)
    assert archaudit.assert_budget(Spectral(), params=1_000, macs=10_000, input="2x4x4", allow_unsupported=True).ok


class LayerScaleBlockNoCat(nn.Module):
    """A LayerScale: gamma held directly, around a child Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.proj(x)


def test_fused_attention_counts_its_scores_not_its_output():
    """Oracle: the score matrix by hand. On meta the math path runs (its _safe_softmax is counted as is); a fused
    kernel (CUDA's flash or efficient attention) returns the output, so its softmax elements come from q and k."""
    from archaudit.trace import _elements

    q = torch.empty(2, 3, 5, 4, device="meta")  # batch, heads, queries, head dim
    k = torch.empty(2, 3, 7, 4, device="meta")  # 7 keys
    out = (torch.empty(2, 3, 5, 4, device="meta"),)
    assert _elements("aten._scaled_dot_product_flash_attention", (q, k, k), out) == 2 * 3 * 5 * 7
    assert _elements("aten.tanh", (q,), q) == 2 * 3 * 5 * 4
