"""The cross-tool reasons are derived, not asserted: each is arithmetic on what that tool attributed to a module
against the audit's own columns for it, and "unexplained" is kept for a gap nothing accounts for.

Oracles: the tools' own per-module figures (torchinfo's leaf MACs, fvcore's by_module and unsupported_ops,
FlopCounterMode's per-module counts), read here independently of archaudit.peers, and hand arithmetic.
"""

from __future__ import annotations

import os

import torch
from torch import nn

import archaudit
from archaudit.peers import _Attribution, _mechanism, _reasons
from archaudit.records import MacCount


def _row(model: nn.Module, shape: str, name: str):
    comparison = archaudit.audit(model, shape).compare()
    return next(r for r in comparison.rows if r.name == name), comparison


def test_torchinfo_bias_adds_are_derived_from_the_bias_column():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    row, _ = _row(model, "5x3", "0")
    # ours 5*3*4 = 60; torchinfo counts (3*4 + 4) x 5 = 80: the 5*4 = 20 bias adds
    assert row.tools["torchinfo"] == 80 and row.archaudit == 60
    assert row.reasons["torchinfo"] == "Linear counts the bias adds as MACs (+20)"
    assert row.reasons["fvcore"] == "agrees"


def test_a_tool_that_names_the_op_it_cannot_count_is_quoted():
    model = nn.Sequential(nn.LSTM(4, 8))
    row, _ = _row(model, "6x1x4", "0")
    assert row.tools["fvcore"] == 0
    # ours: 6 steps x 4 gates x (4*8 + 8*8) = 2,304 MACs
    assert row.archaudit == 6 * 4 * (4 * 8 + 8 * 8)
    assert row.reasons["fvcore"] == "LSTM counts 0 (fvcore has no formula for aten::lstm) (-2,304)"


def test_torchinfo_parameters_times_batch_on_a_rank_3_linear():
    model = nn.Sequential(nn.Linear(8, 8, bias=False))
    row, _ = _row(model, "2x5x8", "0")
    # ours 2*5*8*8 = 640; torchinfo counts parameters (64) x batch 2 = 128
    assert row.tools["torchinfo"] == 128 and row.archaudit == 640
    assert row.reasons["torchinfo"] == "Linear counts parameters x 2, its output's dim 0 (the batch) (-512)"


class TokenConv1D(nn.Module):
    """GPT-2's Conv1D in miniature: a token-wise product with a (nx, nf) weight, named like a convolution."""

    def __init__(self, nx: int, nf: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nx, nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def test_torchinfo_reads_dim_1_of_a_conv_named_modules_output_as_channels():
    model = nn.Sequential(TokenConv1D(4, 6))
    row, _ = _row(model, "2x5x4", "0")
    # ours 2*5*4*6 = 240; torchinfo (by the class name) counts parameters 4*6 x output 2x5x6 without dim 1 = 24*12
    assert row.tools["torchinfo"] == 288 and row.archaudit == 240
    assert row.reasons["torchinfo"] == (
        "TokenConv1D counts parameters x 12, its output's size without dim 1 (read as channels) (+48)"
    )


def test_attention_products_missed_by_fvcore_are_put_on_the_ops_it_names():
    class Self(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, x, x, need_weights=False)[0]

    row, _ = _row(Self(), "1x5x16", "attn")
    # scores and weighted sum: 2 x L x S x E = 2*5*5*16 = 800 MACs that fvcore does not count
    assert row.archaudit - row.tools["fvcore"] == 800
    assert row.reasons["fvcore"].startswith("MultiheadAttention misses the work of ")
    assert "aten::scaled_dot_product_attention" in row.reasons["fvcore"] and row.reasons["fvcore"].endswith("(-800)")


def test_a_gap_no_arithmetic_accounts_for_stays_unexplained():
    seen = _Attribution(own={"": 7})
    record = archaudit.audit(nn.Linear(3, 4), "2x3").flops.records[0]  # 24 MACs, bias column 8
    reason = _reasons("fvcore", [(nn.Linear(3, 4), record)], 7, 24, seen)
    assert reason == "Linear differs (-17); unexplained per module"
    # a row total no module accounts for is said so, with the remainder
    assert _reasons("fvcore", [(nn.Linear(3, 4), record)], 30, 24, _Attribution(own={"": 24})) == (
        "+6 that no module accounts for (unexplained)"
    )


def test_mechanisms_are_arithmetic_on_columns_and_parameters():
    ours = MacCount(macs=100, bias=10, norm=20)
    assert _mechanism("torchinfo", ours, 0, 5, ()) == "counts 0"
    assert _mechanism("torchinfo", ours, 110, 5, ()) == "counts the bias adds as MACs"
    assert _mechanism("fvcore", ours, 140, 7, ()) == "counts normalisation as 2 MACs per element"  # 100 + 2*20
    assert _mechanism("fvcore", ours, 130, 0, ()) == "counts the bias adds and normalisation (1 per element) as MACs"
    assert _mechanism("torchinfo", ours, 35, 7, ()) == "counts parameters x 5"
    assert _mechanism("torchinfo", ours, 33, 7, ()) == "differs"


class _RefusesJitTrace(nn.Module):
    """Works eagerly and under FlopCounterMode; raises only while torch.jit.trace (fvcore's tracer) runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            raise RuntimeError("unordered_map::at")  # what transformers' vmap mask raises under torch.jit.trace
        return self.fc(x)


def test_a_tool_that_cannot_run_is_reported_with_where_and_under_what_it_failed():
    model = nn.Sequential(_RefusesJitTrace())
    _, comparison = _row(model, "2x4", "0")
    line = next(i for i, text in enumerate(open(__file__), 1) if 'raise RuntimeError("unordered_map::at")' in text)
    # derived from the traceback: the innermost frame outside torch, the tools and archaudit, and the tracer it ran in
    assert comparison.errors == {
        "fvcore": f"RuntimeError: unordered_map::at, raised under torch.jit.trace (fvcore's tracer) "
        f"in {os.path.relpath(__file__)}:{line} (forward)"
    }
    assert comparison.totals["flop_counter_cpu"] == comparison.totals["archaudit"] == 2 * 4 * 4  # batch 2, 4x4


class Gram(nn.Module):
    """Work without parameters: x @ x^T."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ x.transpose(-2, -1)


def test_torchinfo_counts_nothing_for_work_without_parameters():
    row, _ = _row(nn.Sequential(Gram()), "2x3x4", "0")
    # ours 2 x 3x4 @ 4x3 = 2*3*3*4 = 72; torchinfo's figures are parameters x output dims, and Gram owns none
    assert row.tools["torchinfo"] == 0 and row.archaudit == 72
    assert row.reasons["torchinfo"] == "Gram counts 0 (it owns no parameters) (-72)"
    assert row.reasons["flop_counter_meta"] == "agrees"


def test_the_halves_of_the_tools_runs_add_up_to_all_of_them() -> None:
    """Oracle: run_tools with no half (every tool in one process). Where no CPU copy may be made, torchinfo runs on
    meta in the meta half (the worker's), and the CPU half only says why its tools did not run."""
    from archaudit.peers import run_tools

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.empty(3, 4, device="meta")
    meta, cpu, whole = (run_tools(model, [x], None, half=half) for half in ("meta", "cpu", None))
    assert set(meta.results) == {"flop_counter_meta", "torchinfo"} and not meta.errors
    assert not cpu.results and set(cpu.errors) == {"fvcore", "flop_counter_cpu"}
    merged = meta.merged(cpu)
    assert (merged.results, merged.errors) == (whole.results, whole.errors)
    # Linear(4, 8) + Linear(8, 2) on 3 rows: 3x4x8 + 3x8x2 = 96 + 48 = 144 MACs
    assert whole.results["flop_counter_meta"]["__total__"] == 144


def test_a_tool_in_no_half_given_is_said_not_to_have_run() -> None:
    """line_up with only the CPU half: the tools of the meta half carry a reason, not a bare None."""
    audited = archaudit.audit("dcnn")
    comparison = audited.line_up(audited.run_tools("cpu"))
    assert comparison.errors["flop_counter_meta"].startswith("not run")
    assert comparison.totals["flop_counter_meta"] is None and comparison.totals["torchinfo"] is not None
