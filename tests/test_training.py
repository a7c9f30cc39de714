"""Training cost (archaudit.training): forward + backward MACs per module, and the optimizer's element-wise work.

The oracle of every property test is FlopCounterMode on meta tensors around the forward and ``loss.backward()``
(loss = the sum of every floating-point output's sum), its total FLOPs halved: it counts only the ops it has
formulas for (mm, addmm, bmm, convolution and its backward, sdpa), which is exactly the MAC work archaudit counts
(bias additions and norms are columns beside MACs, and FlopCounterMode does not count them either).

Every example runs three meta passes (the audit's two and the oracle's); the hypothesis caps below keep the file
within a few seconds on a loaded 2-core runner, where the ``ci`` profile's 100 examples per property would not.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from archaudit.errors import ArchauditError
from archaudit.inputs import InputSpec
from archaudit.training import (
    OPTIMIZER_OPS,
    Exactness,
    OptimizerError,
    TrainingAudit,
    audit_training,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# --------------------------------------------------------------------------------------------- the oracle


def _loss(value: Any) -> torch.Tensor | None:
    """Sum of the sums of every floating-point tensor in an output (a tensor, or nested tuples of them)."""
    if isinstance(value, nn.utils.rnn.PackedSequence):
        value = value.data
    if isinstance(value, torch.Tensor):
        return value.sum() if value.is_floating_point() else None
    if isinstance(value, (tuple, list)):
        parts = [p for p in (_loss(v) for v in value) if p is not None]
        return sum(parts[1:], parts[0]) if parts else None
    return None


def oracle_macs(model: nn.Module, inputs: list[torch.Tensor]) -> int:
    """FlopCounterMode's FLOPs of forward and ``loss.backward()`` on meta, halved."""
    with FlopCounterMode(display=False) as counter:
        loss = _loss(model(*inputs))
        if loss is not None and loss.requires_grad:
            loss.backward()
    return int(counter.get_total_flops()) // 2


def meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def freeze(model: nn.Module, mask: list[bool]) -> None:
    """Freeze the parameters whose mask entry is True (in ``named_parameters()`` order; a short mask repeats)."""
    for i, (_, p) in enumerate(model.named_parameters()):
        p.requires_grad_(not mask[i % len(mask)])


def check_against_oracle(model: nn.Module, inputs: list[torch.Tensor]) -> TrainingAudit:
    audit = audit_training(model, inputs)
    assert audit.total == oracle_macs(model, inputs), audit.as_json()
    assert not audit.uncounted and not audit.estimated
    return audit


_SIZE = st.integers(1, 6)
_MASK = st.lists(st.booleans(), min_size=1, max_size=12)


# --------------------------------------------------------------------------------------------- per module type


@settings(max_examples=15)  # three meta passes an example; see the module docstring
@given(_SIZE, _SIZE, st.booleans(), st.lists(_SIZE, max_size=2), _MASK, st.booleans())
def test_linear_matches_flop_counter(
    in_features: int, out_features: int, bias: bool, lead: list[int], mask: list[bool], input_grad: bool
) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward). Input grad iff the input requires grad; weight grad iff
    the weight is trainable; each equals the forward."""
    model = nn.Linear(in_features, out_features, bias=bias, device="meta")
    freeze(model, mask)
    x = meta(*lead, in_features).requires_grad_(input_grad)
    audit = check_against_oracle(model, [x])
    record = audit.record("")
    assert record.backward_input == (record.forward if input_grad else 0)
    assert record.backward_weight == (record.forward if model.weight.requires_grad else 0)


_CONVS = {1: (nn.Conv1d, nn.ConvTranspose1d), 2: (nn.Conv2d, nn.ConvTranspose2d)}


@settings(max_examples=20)  # three meta passes an example; see the module docstring
@given(
    st.sampled_from([1, 2]),
    st.booleans(),
    _SIZE,
    _SIZE,
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(1, 2),
    st.booleans(),
    _MASK,
    st.booleans(),
)
def test_conv_matches_flop_counter(
    dims: int,
    transposed: bool,
    in_channels: int,
    out_channels: int,
    kernel: int,
    stride: int,
    padding: int,
    dilation: int,
    bias: bool,
    mask: list[bool],
    input_grad: bool,
) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward): Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, with
    stride, padding and dilation; groups=1 (grouped weight gradients: the next test)."""
    cls = _CONVS[dims][transposed]
    model = cls(in_channels, out_channels, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    model = model.to("meta")
    freeze(model, mask)
    size = dilation * (kernel - 1) + 1 + 3  # leaves a valid output for every drawn kernel, dilation and stride
    x = meta(2, in_channels, *(size,) * dims).requires_grad_(input_grad)
    check_against_oracle(model, [x])


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_conv_weight_gradient_is_the_forward(groups: int) -> None:
    """Oracle: FlopCounterMode on meta, with its known overcount: ``conv_backward_flop`` counts the weight gradient
    of a grouped convolution as ``conv_flop_count(t(x), t(grad_out), ...)``, whose channel product is the full
    ``C_in * C_out`` rather than ``C_in * C_out / groups`` (torch/utils/flop_counter.py), i.e. ``groups`` times the
    forward. archaudit counts the weight gradient as the forward's size, so the oracle is ours plus
    ``(groups - 1)`` weight gradients."""
    model = nn.Conv2d(2 * groups, 3 * groups, 3, groups=groups, device="meta")
    x = meta(2, 2 * groups, 5, 5).requires_grad_(True)
    audit = audit_training(model, [x])
    record = audit.record("")
    assert record.backward_weight == record.backward_input == record.forward
    assert oracle_macs(model, [x]) == audit.total + (groups - 1) * record.backward_weight


@settings(max_examples=15)  # three meta passes an example (~150 ms); see the module docstring
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.sampled_from([None, 2, 3]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    _SIZE,
    _SIZE,
    _MASK,
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_multihead_attention_matches_flop_counter(
    heads: int,
    head_dim: int,
    kv_dim: int | None,
    add_bias_kv: bool,
    add_zero_attn: bool,
    batch_first: bool,
    need_weights: bool,
    target: int,
    source: int,
    mask: list[bool],
    input_grads: list[bool],
) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward), on the bmm path (``need_weights=True``) and the sdpa path,
    packed and separate projections, any subset of parameters frozen and of query/key/value requiring grad."""
    e = heads * head_dim
    model = nn.MultiheadAttention(
        e, heads, kdim=kv_dim, vdim=kv_dim, add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn,
        batch_first=batch_first, device="meta",
    )  # fmt: skip
    freeze(model, mask)
    batch = 2

    def shape(length: int, width: int) -> tuple[int, ...]:
        return (batch, length, width) if batch_first else (length, batch, width)

    query = meta(*shape(target, e)).requires_grad_(input_grads[0])
    key = meta(*shape(source, kv_dim or e)).requires_grad_(input_grads[1])
    value = meta(*shape(source, kv_dim or e)).requires_grad_(input_grads[2])

    class Call(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = model

        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
            return self.attention(q, k, v, need_weights=need_weights)

    check_against_oracle(Call(), [query, key, value])


def test_self_attention_with_everything_trainable() -> None:
    """Pinned: nn.MultiheadAttention(8, 2), self-attention, L=3, N=2, all trainable, input without grad."""
    audit = audit_training(nn.MultiheadAttention(8, 2, device="meta"), [meta(3, 2, 8)] * 3)
    record = audit.record("")
    # forward: N * (3 projections L*E*E + 2 products L*L*E + out_proj L*E*E) = 2 * (3*192 + 2*72 + 192) = 1824
    assert record.forward == 1824
    # inputs: N * (4 products dQ dK dA dV, L*L*E each + out_proj's dx L*E*E) = 2 * (4*72 + 192) = 960
    assert record.backward_input == 960
    # weights: N * (3 projections + out_proj, L*E*E each) = 2 * 4*192 = 1536
    assert record.backward_weight == 1536


@settings(max_examples=8)  # a whole layer, three meta passes an example (~250 ms); see the module docstring
@given(st.integers(1, 2), st.integers(1, 3), _SIZE, st.booleans(), st.booleans(), _MASK, _SIZE)
def test_transformer_encoder_layer_matches_flop_counter(
    heads: int, head_dim: int, feedforward: int, norm_first: bool, batch_first: bool, mask: list[bool], length: int
) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward), any subset of parameters frozen."""
    d = heads * head_dim
    model = nn.TransformerEncoderLayer(
        d, heads, feedforward, dropout=0.0, norm_first=norm_first, batch_first=batch_first, device="meta"
    )
    freeze(model, mask)
    check_against_oracle(model, [meta(2, length, d)])


@settings(max_examples=15)  # three meta passes an example; see the module docstring
@given(st.integers(2, 9), _SIZE, st.booleans(), st.lists(_SIZE, min_size=1, max_size=2), st.booleans())
def test_embedding_backward_has_no_macs(num: int, dim: int, frozen: bool, lead: list[int], then_linear: bool) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward): an embedding's weight gradient is a scatter-add (no MACs),
    and its output needs a gradient iff its weight is trainable, which decides the next Linear's input gradient."""
    model = nn.Sequential(nn.Embedding(num, dim), *([nn.Linear(dim, 3)] if then_linear else [])).to("meta")
    model[0].weight.requires_grad_(not frozen)
    ids = torch.zeros(lead, dtype=torch.long, device="meta")
    audit = check_against_oracle(model, [ids])
    assert audit.record("0").backward == 0
    if then_linear:
        record = audit.record("1")
        assert record.backward_input == (0 if frozen else record.forward)


@settings(max_examples=10)  # three meta passes an example; see the module docstring
@given(st.sampled_from(["layer", "batch", "group", "rms"]), st.integers(1, 4), _SIZE, _MASK)
def test_norms_backward_has_no_macs(kind: str, channels: int, length: int, mask: list[bool]) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward): a norm between two Linears adds no MACs either way, and
    its trainable affine parameters make the next Linear's input need a gradient."""
    width = 2 * channels
    norm: nn.Module = {
        "layer": lambda: nn.LayerNorm(width),
        "batch": lambda: nn.BatchNorm1d(length),
        "group": lambda: nn.GroupNorm(2, length) if length % 2 == 0 else nn.GroupNorm(1, length),
        "rms": lambda: nn.RMSNorm(width),
    }[kind]()
    model = nn.Sequential(nn.Linear(3, width), norm, nn.Linear(width, 2)).to("meta")
    freeze(model, mask)
    audit = check_against_oracle(model, [meta(2, length, 3)])
    assert audit.record("1").backward == 0


_RECURRENT = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


@settings(max_examples=12)  # the oracle runs the recurrence's decomposition step by step; see the module docstring
@given(
    st.sampled_from(sorted(_RECURRENT)),
    st.integers(1, 4),
    st.integers(2, 4),
    st.integers(1, 2),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 1),
    _MASK,
    st.integers(1, 3),
    st.booleans(),
)
def test_recurrent_matches_flop_counter(
    mode: str,
    input_size: int,
    hidden: int,
    layers: int,
    bidirectional: bool,
    batch_first: bool,
    bias: bool,
    proj: int,
    mask: list[bool],
    length: int,
    input_grad: bool,
) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward), which runs torch's decomposition of the recurrence (one
    product per gate block per step) where the audit's trace stubs it; any subset of parameters frozen."""
    kwargs: dict[str, Any] = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    if mode == "LSTM" and proj:
        kwargs["proj_size"] = hidden - 1
    model = _RECURRENT[mode](input_size, hidden, bias=bias, device="meta", **kwargs)
    freeze(model, mask)
    x = meta(2, length, input_size).requires_grad_(input_grad)
    check_against_oracle(model, [x])


@pytest.mark.parametrize("cls", [nn.LSTMCell, nn.GRUCell, nn.RNNCell])
@pytest.mark.parametrize("mask", [[False], [True, False], [False, True, True, False]])
def test_cells_match_flop_counter(cls: type[nn.RNNCellBase], mask: list[bool]) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward)."""
    model = cls(3, 4, device="meta")
    freeze(model, mask)
    check_against_oracle(model, [meta(2, 3)])


# --------------------------------------------------------------------------------------------- whole models


def _mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 8), nn.LayerNorm(8), nn.Linear(8, 5)
    ).to("meta")


_FREEZES = {
    "first": ["0"],
    "middle": ["3", "4"],
    "all_but_head": ["0", "3", "4"],
    "none": [],
    "all": ["0", "3", "4", "5"],
}


@pytest.mark.parametrize("frozen", sorted(_FREEZES))
def test_whole_model_with_frozen_parts(frozen: str) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward), on a small model with parts frozen; no weight gradient
    for a frozen module, and no input gradient upstream of the first trainable module."""
    model = _mlp()
    for name in _FREEZES[frozen]:
        model.get_submodule(name).requires_grad_(False)
    audit = check_against_oracle(model, [meta(2, 3, 8)])
    owners = [name for name in ("0", "3", "4", "5") if name not in _FREEZES[frozen]]
    first = owners[0] if owners else None
    upstream = True
    for record in audit.records:  # named_modules() order is call order here
        if record.name in _FREEZES[frozen]:
            assert record.backward_weight == 0
        if upstream:
            assert record.backward_input == 0, record
        upstream = upstream and record.name != first
    assert audit.record("0").backward_input == 0  # the model input needs no gradient


def test_freezing_the_first_layer_removes_its_weight_gradient() -> None:
    """Pinned against the unfrozen audit: freezing conv ``0`` takes exactly its weight gradient off, and nothing
    else changes (it was already first: no input gradient either way)."""
    trainable = audit_training(_mlp(), [InputSpec((2, 3, 8))])
    model = _mlp()
    model[0].requires_grad_(False)
    frozen = audit_training(model, [InputSpec((2, 3, 8))])
    # conv 0: 2 * 4 * 6 outputs * 3 * 3 = 432 MACs forward, and so its weight gradient
    assert trainable.record("0").backward_weight == 432
    assert frozen.record("0").backward_weight == 0
    # Linear 3's input gradient: 2 * 24 * 8 = 384, needed only while conv 0 is trainable
    assert trainable.record("3").backward_input == 384
    assert frozen.record("3").backward_input == 0
    assert trainable.total - frozen.total == 432 + 384


def test_input_that_requires_grad_gets_a_gradient() -> None:
    """Pinned: with a model input that requires grad, the first Linear's input gradient is counted even when the whole
    model is frozen: 2*3 rows * 4 * 5 = 120 MACs, as FlopCounterMode (on meta) counts."""
    model = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 1)).to("meta").requires_grad_(False)
    x = meta(2, 3, 4).requires_grad_(True)
    audit = check_against_oracle(model, [x])
    assert audit.record("0").backward_input == 120
    assert audit.backward_weight == 0


def test_pinned_linear() -> None:
    """Pinned: Linear(768, 3072) on 1x128x768, all trainable: forward 128*768*3072 = 301,989,888 MACs; the weight
    gradient the same; no input gradient (the input needs none)."""
    audit = audit_training(nn.Linear(768, 3072, device="meta"), [InputSpec((1, 128, 768))])
    assert (audit.forward, audit.backward_input, audit.backward_weight) == (301_989_888, 0, 301_989_888)
    assert audit.total == 603_979_776  # 2 * 301,989,888
    assert audit.flops == 1_207_959_552


def test_custom_module_with_matmul_is_uncounted() -> None:
    """A module counted op by op in the forward has no backward rule: the record and the audit say so."""

    class Scores(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ x.transpose(-1, -2)

    model = nn.Sequential(nn.Linear(4, 4), Scores()).to("meta")
    audit = audit_training(model, [meta(2, 3, 4)])
    assert [r.name for r in audit.uncounted] == ["1"]
    assert audit.record("1").exactness is Exactness.UNCOUNTED
    assert "not counted" in audit.record("1").note
    assert audit.record("1").forward == 2 * 3 * 3 * 4  # bmm of (2, 3, 4) by (2, 4, 3)


def test_bilinear_is_estimated() -> None:
    audit = audit_training(nn.Bilinear(2, 3, 4, device="meta"), [meta(5, 2), meta(5, 3)])
    record = audit.record("")
    assert record.exactness is Exactness.ESTIMATED and "_trilinear" in record.note
    assert record.backward_weight == 5 * 4 * 2 * 3  # rows * out * in1 * in2
    assert record.backward_input == 0


def test_caller_model_untouched() -> None:
    model = nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    audit_training(model, [torch.zeros(4, 3)])
    assert model.weight.device.type == "cpu"
    assert model.weight.requires_grad and not model.bias.requires_grad
    assert model.weight.grad is None


# --------------------------------------------------------------------------------------------- optimizer and records


@pytest.mark.parametrize(("name", "per_element"), [("sgd", 2), ("momentum", 4), ("adam", 13), ("adamw", 14)])
def test_optimizer_elementwise(name: str, per_element: int) -> None:
    """Tied weights counted once, frozen ones not: Embedding(10, 4) tied to Linear(4, 10)'s weight (40 elements),
    the Linear's bias (10) and a frozen Linear(4, 4) (20): 50 trainable elements."""
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 10)).to("meta")
    model[2].weight = model[0].weight
    model[1].requires_grad_(False)
    audit = audit_training(model, [torch.zeros(2, 3, dtype=torch.long)], optimizer=name)
    assert audit.trainable_elements == 50
    assert audit.optimizer_elementwise == per_element * 50 == OPTIMIZER_OPS[name] * 50
    assert audit.as_json()["optimizer_elementwise"] == per_element * 50


def test_unknown_optimizer() -> None:
    with pytest.raises(OptimizerError, match=r"unknown optimizer 'lion': one of sgd, momentum, adam, adamw") as info:
        audit_training(nn.Linear(2, 2), [InputSpec((1, 2))], optimizer="lion")
    assert isinstance(info.value, ArchauditError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


def test_json_totals_are_sums_of_the_records() -> None:
    audit = audit_training(_mlp(), [InputSpec((2, 3, 8))], optimizer="sgd")
    data = audit.as_json()
    assert list(data) == ["forward", "backward", "total", "optimizer", "optimizer_elementwise", "modules"]
    modules = data["modules"]
    assert [m["name"] for m in modules] == [name for name, _ in _mlp().named_modules()]
    assert data["forward"] == sum(m["forward"] for m in modules) == audit.forward > 0
    assert data["backward"] == sum(m["backward_input"] + m["backward_weight"] for m in modules) > 0
    assert data["total"] == data["forward"] + data["backward"]
    text = {"name", "type", "note", "exactness"}
    assert all(isinstance(v, int) for m in modules for k, v in m.items() if k not in text)


@pytest.mark.parametrize("length", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_projected_lstm_with_only_its_projection_trainable(length: int, bidirectional: bool) -> None:
    """Oracle: FlopCounterMode on meta (forward + backward). Only W_hr trains: a sequence's first step needs no
    gradient of its hidden state (nothing before it trains: the initial state is a constant), every later one does,
    to reach W_hr through the previous step's projected state (found by the property test above:
    LSTM(1, 2, proj_size=1, bias=False), 2 steps of 1 sequence, counted 2 MACs over)."""
    model = nn.LSTM(1, 2, bias=False, proj_size=1, bidirectional=bidirectional, device="meta")
    freeze(model, [True, True, False])  # weight_ih, weight_hh frozen; weight_hr trains
    check_against_oracle(model, [meta(length, 2, 1)])
