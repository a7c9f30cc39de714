"""Unrolled reference implementations: independent oracles for MAC formulas that FlopCounterMode cannot check
directly.

Each reference reproduces a fused PyTorch layer's output from the layer's own parameters using nothing but
matrix products (``F.linear``, ``torch.mm``, ``torch.bmm``) and elementwise work, so that

* its output can be compared with the fused layer's (the reference is right), and
* FlopCounterMode, run on CPU over the reference, counts exactly the matrix work the layer does, which is
  what archaudit's analytic MACs claim (FlopCounterMode ignores the bias of ``addmm``, as archaudit does).

``unrolled_rnn`` stands for ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (fused ``aten::lstm`` and friends, which
FlopCounterMode does not see on CPU); ``unrolled_bilinear`` for ``nn.Bilinear`` (``aten::_trilinear``, which
FlopCounterMode counts as 0 everywhere).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

Weights = tuple[list[tuple[Tensor, Tensor | None]], list[tuple[Tensor, Tensor | None]], Tensor | None]
"""Per gate block ``(weight, bias)`` for the input and for the hidden state, and ``weight_hr`` (or None)."""


def _blocks(weight: Tensor, bias: Tensor | None, gates: int) -> list[tuple[Tensor, Tensor | None]]:
    """A stacked gate weight ``(gates*hidden, width)`` split into one ``(hidden, width)`` block per gate."""
    rows = weight.shape[0] // gates
    return [(weight[j * rows:(j + 1) * rows], None if bias is None else bias[j * rows:(j + 1) * rows])
            for j in range(gates)]


def _weights(module: nn.RNNBase, layer: int, reverse: bool) -> Weights:
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    gates = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}[module.mode]
    bias_ih = getattr(module, "bias_ih" + suffix) if module.bias else None
    bias_hh = getattr(module, "bias_hh" + suffix) if module.bias else None
    weight_hr = getattr(module, "weight_hr" + suffix) if getattr(module, "proj_size", 0) else None
    return (_blocks(getattr(module, "weight_ih" + suffix), bias_ih, gates),
            _blocks(getattr(module, "weight_hh" + suffix), bias_hh, gates), weight_hr)


def _gate(x: Tensor, h: Tensor, ih: tuple[Tensor, Tensor | None], hh: tuple[Tensor, Tensor | None]) -> Tensor:
    return F.linear(x, *ih) + F.linear(h, *hh)


Step = Callable[[Tensor, Tensor, Tensor | None, Weights], tuple[Tensor, Tensor | None]]


def _rnn_step(activation: Callable[[Tensor], Tensor]) -> Step:
    def step(x: Tensor, h: Tensor, c: Tensor | None, w: Weights) -> tuple[Tensor, Tensor | None]:
        ih, hh, _ = w
        return activation(_gate(x, h, ih[0], hh[0])), None

    return step


def _lstm_step(x: Tensor, h: Tensor, c: Tensor | None, w: Weights) -> tuple[Tensor, Tensor | None]:
    ih, hh, weight_hr = w
    i, f, g, o = (_gate(x, h, ih[j], hh[j]) for j in range(4))  # PyTorch's gate order: i, f, g, o
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return (h if weight_hr is None else F.linear(h, weight_hr)), c


def _gru_step(x: Tensor, h: Tensor, c: Tensor | None, w: Weights) -> tuple[Tensor, Tensor | None]:
    ih, hh, _ = w
    r = torch.sigmoid(_gate(x, h, ih[0], hh[0]))  # PyTorch's gate order: r, z, n
    z = torch.sigmoid(_gate(x, h, ih[1], hh[1]))
    n = torch.tanh(F.linear(x, *ih[2]) + r * F.linear(h, *hh[2]))
    return (1 - z) * n + z * h, None


_STEPS: dict[str, Step] = {
    "RNN_TANH": _rnn_step(torch.tanh), "RNN_RELU": _rnn_step(torch.relu), "LSTM": _lstm_step, "GRU": _gru_step,
}


def _direction(
    step: Step, weights: Weights, inputs: list[Tensor], h: Tensor, c: Tensor | None, reverse: bool,
) -> tuple[list[Tensor], Tensor, Tensor | None]:
    """One direction of one layer over per-time-step inputs ``(batch_t, width)``, ``batch_t`` non-increasing
    (a PackedSequence's batch sizes; constant when padded).

    Only the first ``batch_t`` sequences step at time ``t``; the others keep their state, which is each
    sequence's last real step going forward and the initial state, until it starts, going backward.
    """
    outputs: list[Tensor | None] = [None] * len(inputs)
    order = range(len(inputs) - 1, -1, -1) if reverse else range(len(inputs))
    for t in order:
        x = inputs[t]
        rows = x.shape[0]
        h_new, c_new = step(x, h[:rows], None if c is None else c[:rows], weights)
        outputs[t] = h_new
        h = torch.cat([h_new, h[rows:]])
        if c is not None:
            c = torch.cat([c_new, c[rows:]])
    return outputs, h, c  # type: ignore[return-value]


def unrolled_rnn(
    module: nn.RNNBase, input: Tensor | PackedSequence,
) -> tuple[Tensor | PackedSequence, Tensor | tuple[Tensor, Tensor]]:
    """``module(input)`` (zero initial state) for nn.RNN/LSTM/GRU, one ``F.linear`` per gate block, time step,
    layer and direction, from the module's own ``weight_ih_l{k}{_reverse}``, ``weight_hh_l{k}{_reverse}``,
    ``bias_ih``/``bias_hh`` and ``weight_hr`` (``proj_size``).

    Handles ``num_layers``, ``bidirectional``, ``bias``, ``proj_size``, ``batch_first``, ``nonlinearity``,
    unbatched ``(L, H)`` inputs and PackedSequence inputs (only real time steps of each sequence are computed).
    Returns what the module returns: ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM.
    """
    if module.mode not in _STEPS:
        raise ValueError(f"unrolled_rnn: {type(module).__name__} mode={module.mode!r} is not supported")
    if module.training and module.dropout > 0 and module.num_layers > 1:
        raise ValueError(f"unrolled_rnn: dropout={module.dropout} between layers is random in training mode; "
                         "call .eval() or build with dropout=0")
    packed = isinstance(input, PackedSequence)
    if packed:
        batch_sizes = [int(b) for b in input.batch_sizes]
        steps = list(torch.split(input.data, batch_sizes))
        unbatched = False
    else:
        if input.dim() not in (2, 3):
            raise ValueError(f"unrolled_rnn: expected a 2-D or 3-D input, got shape {tuple(input.shape)}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if module.batch_first else input)
        steps = list(x.unbind(0))
    batch = steps[0].shape[0]
    width = getattr(module, "proj_size", 0) or module.hidden_size
    is_lstm = module.mode == "LSTM"
    step = _STEPS[module.mode]
    directions = 2 if module.bidirectional else 1
    zeros = steps[0].new_zeros
    h_n, c_n = [], []
    for layer in range(module.num_layers):
        per_direction = []
        for d in range(directions):
            outputs, h, c = _direction(step, _weights(module, layer, reverse=d == 1), steps, zeros(batch, width),
                                       zeros(batch, module.hidden_size) if is_lstm else None, reverse=d == 1)
            per_direction.append(outputs)
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        steps = [torch.cat(parts, dim=-1) for parts in zip(*per_direction)]
    hidden = torch.stack(h_n)
    cell = torch.stack(c_n) if is_lstm else None
    if packed:
        if input.unsorted_indices is not None:
            hidden = hidden.index_select(1, input.unsorted_indices)
            cell = None if cell is None else cell.index_select(1, input.unsorted_indices)
        output: Tensor | PackedSequence = PackedSequence(
            torch.cat(steps), input.batch_sizes, input.sorted_indices, input.unsorted_indices)
    else:
        output = torch.stack(steps)
        if unbatched:
            output, hidden = output.squeeze(1), hidden.squeeze(1)
            cell = None if cell is None else cell.squeeze(1)
        elif module.batch_first:
            output = output.transpose(0, 1)
    return output, ((hidden, cell) if is_lstm else hidden)


def unrolled_bilinear(module: nn.Bilinear, input1: Tensor, input2: Tensor) -> Tensor:
    """``module(input1, input2)`` in two matrix products, whatever the leading dimensions (N rows in all):

    1. one ``mm``: ``x1 (N, in1) @ A (in1, out*in2)``, where ``A[i, o*in2 + j] = weight[o, i, j]``:
       ``N * in1 * out * in2`` MACs;
    2. one ``bmm`` of ``(N*out, 1, in2) @ (N*out, in2, 1)``: each output's dot product with ``x2``,
       ``N * out * in2`` MACs.
    """
    in1, in2, out = module.in1_features, module.in2_features, module.out_features
    lead = input1.shape[:-1]
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    rows = x1.shape[0]
    stacked = module.weight.permute(1, 0, 2).reshape(in1, out * in2)
    projected = torch.mm(x1, stacked).reshape(rows * out, 1, in2)
    paired = x2.unsqueeze(1).expand(rows, out, in2).reshape(rows * out, in2, 1)
    y = torch.bmm(projected, paired).reshape(rows, out)
    if module.bias is not None:
        y = y + module.bias
    return y.reshape(*lead, out)


__all__ = ["unrolled_bilinear", "unrolled_rnn"]


def flop_counter_macs(fn: Callable[..., object], *args: object) -> int:
    """FlopCounterMode's total over ``fn(*args)``, in MACs (its FLOPs are 2 x MACs, bias excluded): the oracle of
    every MAC property test that runs a module as it is."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args)
    flops = counter.get_total_flops()
    assert flops % 2 == 0, f"FlopCounterMode counted an odd {flops} FLOPs"
    return flops // 2
