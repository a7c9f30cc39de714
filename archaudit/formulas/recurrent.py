"""RNN, LSTM, GRU (num_layers, bidirectional, bias, proj_size) and their cells.

Per layer and direction, with ``g`` gate blocks (RNN 1, GRU 3, LSTM 4), hidden size ``h`` and recurrent width
``r`` (``proj_size`` when set, else ``h``)::

    g*h*x + g*h*r  (+ 2*g*h with bias: bias_ih and bias_hh)  (+ r*h for the projection weight_hr)

where ``x`` is ``input_size`` for the first layer and ``r * directions`` for every later one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..records import Call, MacCount, Packed
from ..registry import REGISTRY

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


@dataclass(frozen=True)
class RecurrentSpec:
    mode: str  # "RNN" | "GRU" | "LSTM"
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    proj_size: int = 0

    @property
    def gates(self) -> int:
        return GATES[self.mode]

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def recurrent_width(self) -> int:
        return self.proj_size or self.hidden_size

    def layer_input(self, layer: int) -> int:
        return self.input_size if layer == 0 else self.recurrent_width * self.directions


def recurrent_layer_params(s: RecurrentSpec, layer: int) -> int:
    """Parameters of one direction of one layer."""
    g, h, r = s.gates, s.hidden_size, s.recurrent_width
    count = g * h * s.layer_input(layer) + g * h * r
    if s.bias:
        count += 2 * g * h
    if s.proj_size:
        count += r * h
    return count


def recurrent_params(s: RecurrentSpec) -> int:
    return s.directions * sum(recurrent_layer_params(s, layer) for layer in range(s.num_layers))


def _recurrent_expr(s: RecurrentSpec) -> str:
    g, h, r = s.gates, s.hidden_size, s.recurrent_width
    terms = []
    for layer in range(s.num_layers):
        body = f"{g}*{h}*({s.layer_input(layer)} + {r})"
        if s.bias:
            body += f" + 2*{g}*{h}"
        if s.proj_size:
            body += f" + {r}*{h}"
        terms.append(f"{s.directions}*({body})" if s.directions > 1 else body)
    return " + ".join(terms)


def recurrent_spec(m: nn.RNNBase) -> RecurrentSpec:
    return RecurrentSpec(
        mode="LSTM" if m.mode == "LSTM" else "GRU" if m.mode == "GRU" else "RNN",
        input_size=m.input_size,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        bidirectional=m.bidirectional,
        bias=m.bias,
        proj_size=getattr(m, "proj_size", 0),
    )


ACTIVATIONS_PER_STEP = {"RNN": 1, "GRU": 3, "LSTM": 5}
"""Non-linearities per hidden unit and step: RNN tanh; GRU 2 sigmoid + tanh; LSTM 3 sigmoid + 2 tanh."""


def recurrent_step_macs(s: RecurrentSpec, layer: int) -> int:
    """MACs of one direction of one layer for one sequence element at one time step."""
    g, h, r = s.gates, s.hidden_size, s.recurrent_width
    return g * h * (s.layer_input(layer) + r) + (r * h if s.proj_size else 0)


def recurrent_macs(s: RecurrentSpec, steps: int) -> MacCount:
    """``steps`` = sequences x real time steps (a PackedSequence's ``sum(batch_sizes)``)."""
    per_step = sum(recurrent_step_macs(s, layer) for layer in range(s.num_layers))
    units = steps * s.directions * s.num_layers * s.hidden_size
    return MacCount(
        macs=steps * s.directions * per_step,
        bias=2 * s.gates * units if s.bias else 0,
        activation=ACTIVATIONS_PER_STEP[s.mode] * units,
    )


def recurrent_steps(input_arg: object, batch_first: bool) -> int:
    """Sequences x time steps of an RNN input: (L, N, H), (N, L, H) with batch_first, (L, H) unbatched, or packed."""
    if isinstance(input_arg, Packed):
        return sum(input_arg.batch_sizes)
    if not isinstance(input_arg, tuple):
        raise ValueError(f"unexpected RNN input {input_arg!r}")
    steps: int = input_arg[0] if len(input_arg) == 2 else input_arg[0] * input_arg[1]
    return steps


def _recurrent_call(m: nn.RNNBase, call: Call) -> MacCount:
    return recurrent_macs(recurrent_spec(m), recurrent_steps(call.arg(0, "input"), m.batch_first))


REGISTRY.rule(
    nn.RNN,
    nn.LSTM,
    nn.GRU,
    family="recurrent",
    spec=recurrent_spec,
    params=recurrent_params,
    expression=_recurrent_expr,
    macs=_recurrent_call,
)


# --- RNNCell, LSTMCell, GRUCell ----------------------------------------------------------------------------------


def cell_params(s: RecurrentSpec) -> int:
    return recurrent_layer_params(s, 0)


def _cell_expr(s: RecurrentSpec) -> str:
    g, h = s.gates, s.hidden_size
    return f"{g}*{h}*({s.input_size} + {h})" + (f" + 2*{g}*{h}" if s.bias else "")


_CELL_MODES = {nn.RNNCell: "RNN", nn.GRUCell: "GRU", nn.LSTMCell: "LSTM"}


def cell_spec(m: nn.RNNCellBase) -> RecurrentSpec:
    mode = next(mode for cls, mode in _CELL_MODES.items() if isinstance(m, cls))
    return RecurrentSpec(mode=mode, input_size=m.input_size, hidden_size=m.hidden_size, bias=m.bias)


def cell_macs(s: RecurrentSpec, batch: int) -> MacCount:
    return recurrent_macs(s, batch)


def _cell_call(m: nn.RNNCellBase, call: Call) -> MacCount:
    shape = call.input
    return cell_macs(cell_spec(m), shape[0] if len(shape) == 2 else 1)


REGISTRY.rule(
    nn.RNNCell,
    nn.LSTMCell,
    nn.GRUCell,
    family="recurrent_cell",
    spec=cell_spec,
    params=cell_params,
    expression=_cell_expr,
    macs=_cell_call,
)
