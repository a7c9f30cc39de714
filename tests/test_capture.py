"""Shape capture: the RNN stand-in returns what the real forward returns, and auditing a model built on the
meta device allocates no parameter storage."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from archaudit import audit_params
from archaudit.trace import _rnn_shapes
from archaudit.macs import audit_macs
from strategies import recurrent_kwargs

MODES = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def shapes(value) -> list:
    if isinstance(value, torch.Tensor):
        return [tuple(value.shape)]
    if isinstance(value, nn.utils.rnn.PackedSequence):
        return [("packed", tuple(value.data.shape), tuple(value.batch_sizes.tolist()))]
    return [s for item in value for s in shapes(item)]


# The stand-in is shape arithmetic and the oracle a real CPU forward: 100 examples per mode draw every layout
# (batched, unbatched, packed), layer count, direction and projection many times over.
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@settings(max_examples=min(100, settings.default.max_examples))
@given(data=st.data())
def test_rnn_stand_in_matches_the_real_forward(mode, data):
    """Oracle: the real forward of the same module on CPU tensors of the same shapes (the same kernels' shapes as
    on meta, at a fraction of the cost of meta's per-step Python decomposition)."""
    kwargs = data.draw(recurrent_kwargs(mode))
    kwargs = {**kwargs, "input_size": min(kwargs["input_size"], 64), "hidden_size": min(kwargs["hidden_size"], 64)}
    if kwargs.get("proj_size", 0) >= kwargs["hidden_size"]:
        kwargs["proj_size"] = kwargs["hidden_size"] - 1
    module = MODES[mode](**kwargs)
    steps, batch = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    layout = data.draw(st.sampled_from(["batched", "unbatched", "packed"]))
    if layout == "unbatched":
        shape: tuple[int, ...] = (steps, kwargs["input_size"])
    else:
        first, second = (batch, steps) if module.batch_first else (steps, batch)
        shape = (first, second, kwargs["input_size"])
    lengths = None
    if layout == "packed":
        lengths = torch.tensor(sorted(data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)),
                                      reverse=True))

    def given_as(x):
        return x if lengths is None else pack_padded_sequence(x, lengths, batch_first=module.batch_first)

    stand_in = _rnn_shapes(module, given_as(torch.empty(shape, device="meta")))
    with torch.no_grad():
        real = module(given_as(torch.zeros(shape)))
    assert shapes(stand_in) == shapes(real)


def test_auditing_a_meta_model_allocates_no_parameter_storage():
    """Parameters and MACs of a billion-parameter stack built on meta: no tensor leaves the meta device and
    the process does not grow by anything like the weights' size."""
    import resource

    with torch.device("meta"):
        model = nn.Sequential(*[nn.TransformerEncoderLayer(2048, 16, 8192, batch_first=True) for _ in range(24)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = audit_params(model)
    flops = audit_macs(model, [torch.empty(1, 128, 2048, device="meta")])
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert params.total > 1_000_000_000  # 24 * (4*2048^2 + 4*2048 + 2*2048*8192 + 8192 + 2048 + 4*2048)
    assert params.total == 24 * 50_358_272
    assert flops.macs > 0
    assert all(p.is_meta for p in model.parameters()) and all(b.is_meta for b in model.buffers())
    assert grown_kib < 256 * 1024  # the weights would be 4.8 GB as float32
