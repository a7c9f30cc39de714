"""Where the trace runs: a zero CPU copy for a small model, meta otherwise, and the same counts either way.

ORACLE: the meta trace of the same model on the same shapes (``trace_on="meta"``), which every MAC-formula test
holds to FlopCounterMode on meta. The CPU trace must give the same records, field for field, for every reference
model and for hypothesis-drawn layers of every family with a MAC rule.
"""

from __future__ import annotations

import pytest
import torch
from archaudit.macs import audit_macs
from archaudit.references import references
from archaudit.render.flops import flops_json
from archaudit.trace import CPU_TRACE_MAX_BYTES, CPU_TRACE_MAX_INPUT_ELEMENTS, trace_device
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    FORMULA_STRATEGIES,
    attention_input_shapes,
    conv_input_shapes,
    linear_input_shapes,
    recurrent_inputs,
    transformer_layer_input_shapes,
)
from torch import nn


def _both(model: nn.Module, inputs: list[torch.Tensor]) -> tuple[dict, dict]:
    on_cpu = audit_macs(model, inputs, trace_on="cpu")
    on_meta = audit_macs(model, inputs, trace_on="meta")
    assert (on_cpu.traced_on, on_meta.traced_on) == ("cpu", "meta")
    cpu_json, meta_json = flops_json(on_cpu), flops_json(on_meta)
    cpu_json.pop("traced_on"), meta_json.pop("traced_on")
    return cpu_json, meta_json


def _meta(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device="meta")


BUILT = [r for r in references() if r.builder is not None]


@pytest.mark.parametrize("reference", BUILT, ids=lambda r: r.name)
def test_every_reference_model_counts_the_same_on_cpu_and_meta(reference) -> None:
    with torch.device("meta"):
        model = reference.build()
    inputs = list(reference.example_input(batch=2, device="meta"))
    cpu_json, meta_json = _both(model, inputs)
    assert cpu_json == meta_json
    assert cpu_json["macs"] > 0


LAYERS = [
    (nn.Linear, lambda m: [linear_input_shapes(m.in_features)]),
    (nn.Conv1d, lambda m: [conv_input_shapes(m)]),
    (nn.Conv2d, lambda m: [conv_input_shapes(m)]),
    (nn.ConvTranspose2d, lambda m: [conv_input_shapes(m)]),
    (nn.TransformerEncoderLayer, lambda m: None),
    (nn.TransformerDecoderLayer, lambda m: None),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("layer_type", [t for t, _ in LAYERS], ids=lambda t: t.__name__)
@settings(max_examples=20)
@given(st.data())
def test_drawn_layers_count_the_same_on_cpu_and_meta(layer_type, data) -> None:
    module = data.draw(FORMULA_STRATEGIES[layer_type], label="module")
    if layer_type in (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer):
        shapes = data.draw(transformer_layer_input_shapes(module), label="inputs")
    else:
        shapes = (data.draw(dict(LAYERS)[layer_type](module)[0], label="input"),)
    inputs = [_meta(s) for s in shapes]
    if trace_device(module, inputs) != "cpu":
        return  # too large for a CPU trace: nothing to compare (the choice itself is tested below)
    module.train(data.draw(st.booleans(), label="train"))
    cpu_json, meta_json = _both(module, inputs)
    assert cpu_json == meta_json


@settings(max_examples=20)
@given(st.data())
def test_drawn_attention_and_recurrent_layers_count_the_same_on_cpu_and_meta(data) -> None:
    attention = data.draw(FORMULA_STRATEGIES[nn.MultiheadAttention], label="attention")
    shapes = data.draw(attention_input_shapes(attention), label="query, key, value")
    inputs = [_meta(s) for s in shapes]
    if trace_device(attention, inputs) == "cpu":
        cpu_json, meta_json = _both(attention, inputs)
        assert cpu_json == meta_json
    rnn = data.draw(FORMULA_STRATEGIES[nn.LSTM], label="lstm")
    shape, _ = data.draw(recurrent_inputs(rnn, max_steps=4), label="input")
    if trace_device(rnn, [_meta(shape)]) == "cpu":
        cpu_json, meta_json = _both(rnn, [_meta(shape)])
        assert cpu_json == meta_json


def test_the_choice_goes_by_weights_inputs_and_work() -> None:
    small = nn.Linear(64, 64)
    assert trace_device(small, [_meta((2, 64))]) == "cpu"
    assert trace_device(small, [_meta((CPU_TRACE_MAX_INPUT_ELEMENTS // 64 + 1, 64))]) == "meta"
    # 4-byte floats: one element past the byte bound
    with torch.device("meta"):
        large = nn.Linear(CPU_TRACE_MAX_BYTES // 4 // 1024, 1024)
    assert trace_device(large, [_meta((1, large.in_features))]) == "meta"
    # few weights but much work: 2**20 input elements times 2**17 weights is past 2**36
    wide = nn.Conv1d(16, 64, 128)  # 16*64*128 + 64 = 131,136 parameters
    assert trace_device(wide, [_meta((1, 16, 2**16))]) == "meta"
    assert trace_device(wide, [_meta((1, 16, 2**12))]) == "cpu"  # 2**16 elements: 2**33
    assert trace_device(nn.LazyLinear(4), [_meta((1, 4))]) == "meta"


def test_a_token_id_counts_as_sixteen_elements_of_work() -> None:
    # A token model's MACs are about its weights times its tokens: the bound is tight there, where a float input's
    # elements overstate the positions by the feature width. 2**20 weights: 2**15 float elements are 2**35 of work
    # (CPU); 2**15 token ids are 16 x 2**35 = 2**39 (meta); 2**12 of them are 2**20 x 16 x 2**12 = 2**36, the bound
    # itself (CPU), and one more is past it (meta).
    with torch.device("meta"):
        lm = nn.Sequential(nn.Embedding(2**10, 2**9), nn.Linear(2**9, 2**9, bias=False))  # 2**19 + 2**18 weights ...
        lm.append(nn.Linear(2**9, 2**9, bias=False))  # ... + 2**18: 2**20
    assert sum(p.numel() for p in lm.parameters()) == 2**20
    assert trace_device(lm, [_meta((1, 2**15))]) == "cpu"
    tokens = torch.empty(1, 2**15, dtype=torch.int64, device="meta")
    assert trace_device(lm, [tokens]) == "meta"
    assert trace_device(lm, [tokens[:, : 2**12]]) == "cpu"
    assert trace_device(lm, [tokens[:, : 2**12 + 1]]) == "meta"


class _Routes(nn.Module):
    """Takes a branch on a value: on meta that fails, on a zero CPU copy it would silently pick one branch."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) if bool(x.sum() > 0) else self.b(x)


def test_a_forward_that_branches_on_values_is_traced_on_meta_and_fails_there() -> None:
    from archaudit.errors import ForwardError

    with pytest.raises(ForwardError, match=r"forward on meta inputs \[2x4\] failed in module '\(root\)' \(_Routes\): .*item"):
        audit_macs(_Routes(), [_meta((2, 4))])


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x[x[:, 0] == 0])  # a boolean mask: its shape depends on the values


def test_boolean_masks_are_values_the_cpu_trace_does_not_trust() -> None:
    from archaudit.errors import ForwardError

    with pytest.raises(ForwardError, match="forward on meta inputs"):
        audit_macs(_Masked(), [_meta((3, 4))])


@pytest.mark.parametrize("copy_on", ["cpu", "meta"])
def test_a_copy_keeps_a_module_activation_a_child(copy_on: str) -> None:
    """nn.TransformerDecoderLayer's __setstate__ sets activation = F.relu in a deep copy when the activation is a
    module; the copies the traces run on undo it, so the module is still called and charged."""
    from archaudit.trace import on_cpu, on_meta

    layer = nn.TransformerDecoderLayer(8, 2, 16, activation=nn.GELU())  # built on the CPU: both copies deep-copy
    twin = (on_cpu if copy_on == "cpu" else on_meta)(layer)
    assert "activation" not in vars(twin) and isinstance(twin.activation, nn.GELU)
    x = torch.empty(3, 2, 8, device="meta")
    found = audit_macs(layer, [x, x], trace_on=copy_on)
    assert found.record("activation").calls == 1 and found.record("activation").counts.activation == 3 * 2 * 16


@pytest.mark.parametrize("reference", BUILT, ids=lambda r: r.name)
def test_the_training_audit_counts_the_same_on_cpu_and_meta(reference, monkeypatch: pytest.MonkeyPatch) -> None:
    import archaudit.training as training

    with torch.device("meta"):
        model = reference.build()
    model.requires_grad_(False)
    next(model.parameters()).requires_grad_(True)  # one trainable tensor: gradients stop upstream of it
    inputs = list(reference.example_input(batch=2, device="meta"))
    passes: list[tuple[str, bool]] = []
    grad_pass = training._grad_pass

    def spy(model, inputs, keywords, *, guard):  # noqa: ANN001, ANN202
        found = grad_pass(model, inputs, keywords, guard=guard)
        passes.append((inputs[0].device.type, found is not None))
        return found

    monkeypatch.setattr(training, "_grad_pass", spy)
    on_cpu = training.audit_training(model, inputs)
    assert passes == [("cpu", True)]  # the CPU pass ran and answered: no fall-back to meta
    monkeypatch.setattr(training, "trace_device", lambda model, inputs: "meta")
    on_meta = training.audit_training(model, inputs)
    assert on_cpu.records == on_meta.records
    assert on_cpu.backward > 0


@pytest.mark.parametrize("reference", BUILT, ids=lambda r: r.name)
def test_every_reference_models_memory_is_the_same_on_a_zero_cpu_copy_and_on_fake_tensors(reference) -> None:
    """ORACLE: the fake-tensor measurement (which tests/test_memory.py holds to real CPU runs), for the whole
    reference models: an LSTM on oneDNN, attention, convolutions and norms in one pass, in training and inference."""
    from archaudit.inputs import InputSpec
    from archaudit.memory import audit_memory

    model = reference.build()
    inputs = [InputSpec(tuple(t.shape), t.dtype) for t in reference.example_input(batch=2)]
    on_cpu = audit_memory(model, inputs, on="cpu").as_json()
    on_fake = audit_memory(model, inputs, on="fake").as_json()
    assert (on_cpu.pop("measured_on"), on_fake.pop("measured_on")) == ("cpu", "fake")
    on_cpu.pop("notes"), on_fake.pop("notes")
    assert on_cpu == on_fake


class _ReadsValues(nn.Module):
    """Reads a value without an op (tolist): the dispatch-level guard cannot see it, the wrapped readers do."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) if x.abs().sum().tolist() == 0 else self.linear(self.linear(x))


def test_a_value_read_without_an_op_is_caught_too() -> None:
    from archaudit.errors import ForwardError

    with pytest.raises(ForwardError, match="forward on meta inputs"):
        audit_macs(_ReadsValues(), [_meta((2, 4))])
    assert torch.Tensor.tolist.__qualname__ == "TensorBase.tolist"  # the guard put the original back


@pytest.mark.parametrize("model", [_Routes(), _Masked(), _ReadsValues()], ids=lambda m: type(m).__name__)
def test_memory_of_a_model_that_reads_values_is_measured_on_fake_tensors_and_fails_there(model) -> None:
    """The zero CPU copy would take one branch silently; the memory audit does what the MAC audit does: the fake
    pass, which fails naming the module, as it does when fake is asked for."""
    from archaudit.errors import ForwardError
    from archaudit.inputs import InputSpec
    from archaudit.memory import audit_memory

    shape = InputSpec((3, 4))
    with pytest.raises(ForwardError, match="memory pass on fake CPU inputs") as auto:
        audit_memory(model, [shape])
    with pytest.raises(ForwardError) as fake:
        audit_memory(model, [shape], on="fake")
    assert str(auto.value) == str(fake.value)


def test_a_cpu_pass_leaves_the_random_state_as_it_found_it() -> None:
    from archaudit.inputs import InputSpec
    from archaudit.memory import audit_memory

    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5)).train()
    before = torch.get_rng_state()
    found = audit_macs(model, [_meta((4, 8))])
    memory = audit_memory(model, [InputSpec((4, 8))])
    assert (found.traced_on, memory.measured_on) == ("cpu", "cpu")
    assert torch.equal(torch.get_rng_state(), before)
