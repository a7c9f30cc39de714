"""Memory audit: saved activations against a real CPU run, weights/gradients/optimizer against tensors that exist.

ORACLES
* saved activations: ``torch.autograd.graph.saved_tensors_hooks`` on a REAL CPU run of the same model and shapes,
  holding every saved tensor and counting the bytes of the distinct storages (by ``data_ptr``) that are not
  parameters' or buffers' storages (:func:`cpu_saved_bytes`);
* weights / buffers: ``numel() * element_size()`` over ``parameters()`` / ``buffers()`` (ties once);
* gradients: the bytes of every ``.grad`` after a real backward;
* optimizer state: the bytes of every tensor in a real ``torch.optim`` optimizer's ``state`` after one step.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch
from archaudit.errors import ArchauditError
from archaudit.inputs import InputSpec
from archaudit.memory import (
    MemoryMeter,
    MemorySpecError,
    audit_memory,
    kv_cache_layout,
    storage_bytes,
    storage_key,
)
from archaudit.optim import SettingError
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

_HALF = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}


@pytest.fixture(params=["cpu", "fake"], autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs twice: on a zero CPU copy (where small models are measured) and on fake CPU tensors
    (where large ones are), each held to the same oracles."""
    monkeypatch.setattr(MemoryMeter, "_kind", lambda self, originals: request.param)
    return str(request.param)


def _autocast(precision: str) -> contextlib.AbstractContextManager[object]:
    dtype = _HALF.get(precision)
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def cpu_saved_bytes(model: nn.Module, inputs: list[torch.Tensor], *, precision: str = "fp32", skip_dtype=None) -> int:
    """The oracle: a real CPU forward; distinct storages of saved tensors, parameters and buffers excluded."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    kept: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), _autocast(precision):
        out = model(*inputs)
    sizes = {}
    for t in kept:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights and t.dtype != skip_dtype:
            sizes[ptr] = t.untyped_storage().nbytes()
    del out
    return sum(sizes.values())


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


@contextlib.contextmanager
def _no_onednn() -> Iterator[None]:
    with torch.backends.mkldnn.flags(enabled=False):
        yield


def _self_attention() -> tuple[nn.Module, list[torch.Tensor]]:
    x = _x(5, 2, 8)
    return nn.MultiheadAttention(8, 2), [x, x, x]  # one tensor three times: the packed in-projection path


CASES = {
    # name: (model factory, inputs factory)
    "linear": (lambda: nn.Linear(8, 4), lambda: [_x(3, 8)]),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1), lambda: [_x(2, 3, 8, 8)]),
    "relu-gelu-chain": (
        lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 4)),
        lambda: [_x(3, 8)],
    ),
    "layernorm": (lambda: nn.LayerNorm(8), lambda: [_x(3, 5, 8)]),
    "batchnorm-train": (lambda: nn.BatchNorm2d(3).train(), lambda: [_x(2, 3, 4, 4)]),
    "maxpool-dropout": (
        lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Dropout(0.5)),
        lambda: [_x(2, 3, 8, 8)],
    ),
    "multihead-attention": (lambda: _self_attention()[0], lambda: _self_attention()[1]),
    "transformer-encoder-layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16), lambda: [_x(5, 2, 8)]),
    "embedding": (lambda: nn.Embedding(10, 8), lambda: [torch.randint(0, 10, (2, 5))]),
    "gru": (lambda: nn.GRU(8, 6), lambda: [_x(5, 2, 8)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_saved_activations_match_a_real_cpu_run(name: str) -> None:
    """ORACLE: saved_tensors_hooks on a real CPU run (cpu_saved_bytes)."""
    torch.manual_seed(0)
    make_model, make_inputs = CASES[name]
    model, inputs = make_model(), make_inputs()
    expected = cpu_saved_bytes(model, inputs)
    assert expected > 0
    assert audit_memory(model, inputs).activations == expected


def test_self_attention_inputs_keep_their_identity() -> None:
    """ORACLE: cpu_saved_bytes. One tensor passed as query, key and value stays one tensor, so MHA takes its packed
    in-projection (one matmul, one saved input) as on the CPU; three copies would save three inputs."""
    model, (x, _, _) = _self_attention()
    packed = audit_memory(model, [x, x, x]).activations
    separate = audit_memory(model, [x, x.clone(), x.clone()]).activations
    assert packed == cpu_saved_bytes(model, [x, x, x])
    assert separate == cpu_saved_bytes(model, [x, x.clone(), x.clone()])
    assert separate > packed


def test_lstm_without_onednn_matches_exactly() -> None:
    """ORACLE: cpu_saved_bytes, both runs with oneDNN off (PyTorch's native cell-by-cell LSTM)."""
    model, x = nn.LSTM(8, 6, 2), _x(3, 2, 8)
    with _no_onednn():
        expected = cpu_saved_bytes(model, [x])
        found = audit_memory(model, [x])
    assert found.activations == expected > 0
    assert not any("oneDNN" in note for note in found.notes)


def test_lstm_on_onednn_matches_but_for_its_workspace() -> None:
    """ORACLE: cpu_saved_bytes less the uint8 workspace oneDNN saves. Its size is decided by oneDNN at run time;
    the meta kernel of ``mkldnn_rnn_layer`` returns an empty one, so the audit counts it 0 and says so."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this PyTorch build has no oneDNN")
    model, x = nn.LSTM(8, 6, 1), _x(3, 2, 8)
    found = audit_memory(model, [x])
    assert found.activations == cpu_saved_bytes(model, [x], skip_dtype=torch.uint8) > 0
    assert cpu_saved_bytes(model, [x]) > found.activations  # the workspace the audit cannot size
    assert any("oneDNN" in note for note in found.notes)


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


def test_a_frozen_first_layer_saves_less() -> None:
    """ORACLE: cpu_saved_bytes. A frozen first Linear on an input that needs no grad saves nothing: its input is
    needed only for its weight's gradient."""
    model, x = _mlp([8, 16, 16, 4]), _x(3, 8)
    trainable = audit_memory(model, [x])
    model[0].requires_grad_(False)
    frozen = audit_memory(model, [x])
    assert frozen.activations == cpu_saved_bytes(model, [x])
    assert trainable.activations - frozen.activations == 3 * 8 * 4  # the input, 3x8 float32
    assert frozen.record("0").activations == 0
    assert frozen.gradients == trainable.gradients - (8 * 16 + 16) * 4


@pytest.mark.parametrize("precision", ["bf16-mixed", "fp16-mixed"])
def test_mixed_precision_matches_cpu_autocast(precision: str) -> None:
    """ORACLE: cpu_saved_bytes under the same torch.autocast("cpu", dtype)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    x = _x(4, 3, 16, 16)  # activations well above the weights, so halving them outweighs the half weight copies
    mixed = audit_memory(model, [x], precision=precision)
    assert mixed.activations == cpu_saved_bytes(model, [x], precision=precision)
    plain = audit_memory(model, [x])
    assert mixed.activations < plain.activations
    assert (mixed.weights, mixed.gradients, mixed.optimizer) == (plain.weights, plain.gradients, plain.optimizer)


def test_mixed_precision_layernorm_statistics(backend: str) -> None:
    """ORACLE: cpu_saved_bytes under CPU autocast. On a zero CPU copy the real kernel runs and the bytes match. On
    fake tensors meta's native_layer_norm returns mean and rstd in the input's dtype (bf16), where the CPU kernel
    returns float32: the audit counts 2 x 3 x 2 bytes where the CPU saves 2 x 3 x 4, and this pins that gap."""
    model, x = nn.Sequential(nn.Linear(8, 4), nn.LayerNorm(4)), _x(3, 8)
    found = audit_memory(model, [x], precision="bf16-mixed").activations
    expected = cpu_saved_bytes(model, [x], precision="bf16-mixed")
    assert found == (expected if backend == "cpu" else expected - 2 * 3 * (4 - 2))


def _real_step(model: nn.Module, x: torch.Tensor, optimizer: str) -> tuple[int, int]:
    """Gradient bytes and optimizer-state bytes after one real training step on the CPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = {
        "sgd": lambda: torch.optim.SGD(params, lr=0.1),
        "momentum": lambda: torch.optim.SGD(params, lr=0.1, momentum=0.9),
        "adam": lambda: torch.optim.Adam(params),
        "adamw": lambda: torch.optim.AdamW(params),
    }[optimizer]()
    model(x).sum().backward()
    opt.step()
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
    state = sum(
        t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)
    )
    return grads, state


# Each example is one real CPU forward/backward/step and one audit (about 0.1 s): 8 examples keep the file fast on
# two shared cores, and the parametrised cases above cover the layer types.
@settings(max_examples=8)
@given(
    widths=st.lists(st.integers(1, 12), min_size=2, max_size=4),
    batch=st.integers(1, 4),
    frozen=st.lists(st.booleans(), min_size=3, max_size=3),
    optimizer=st.sampled_from(["sgd", "momentum", "adam", "adamw"]),
)
def test_mlp_bytes_match_real_tensors(widths: list[int], batch: int, frozen: list[bool], optimizer: str) -> None:
    """ORACLES: cpu_saved_bytes (activations), numel()*element_size() (weights), real .grad tensors (gradients)
    and a real torch.optim state after one step (optimizer)."""
    model = _mlp(widths)
    for flag, layer in zip(frozen, model[::2], strict=False):
        layer.requires_grad_(not flag)
    x = _x(batch, widths[0])
    found = audit_memory(model, [x], optimizer=optimizer)
    assert found.activations == cpu_saved_bytes(model, [x])
    assert found.weights == sum(p.numel() * p.element_size() for p in model.parameters())
    if any(p.requires_grad for p in model.parameters()):
        assert (found.gradients, found.optimizer) == _real_step(model, x, optimizer)
    else:
        assert found.gradients == found.optimizer == 0


def test_buffers_are_reported_apart_and_excluded_from_activations() -> None:
    """ORACLE: numel()*element_size() over buffers(); cpu_saved_bytes (running statistics are not activations)."""
    model, x = nn.BatchNorm2d(3), _x(2, 3, 4, 4)
    found = audit_memory(model, [x])
    assert found.buffers == sum(b.numel() * b.element_size() for b in model.buffers()) == 3 * 4 + 3 * 4 + 8
    # input 2*3*4*4*4 + save_mean 3*4 + save_invstd 3*4
    assert found.activations == 2 * 3 * 4 * 4 * 4 + 3 * 4 + 3 * 4 == cpu_saved_bytes(model, [x])


def test_tied_weights_count_once() -> None:
    """ORACLE: numel()*element_size() over parameters(), which yields a tied tensor once."""
    embed, head = nn.Embedding(10, 8), nn.Linear(8, 10, bias=False)
    head.weight = embed.weight
    model = nn.Sequential(embed, head)
    found = audit_memory(model, [torch.randint(0, 10, (2, 3))], optimizer="adam")
    assert found.weights == 10 * 8 * 4 == sum(p.numel() * p.element_size() for p in model.parameters())
    assert found.optimizer == 2 * 10 * 8 * 4 + 4  # exp_avg, exp_avg_sq, one step counter for the one tensor


def test_pinned_mlp_figures() -> None:
    model = _mlp([8, 16, 4])[:-1]  # Linear(8,16), ReLU, Linear(16,4)
    found = audit_memory(model, [InputSpec((3, 8))], optimizer="adam")
    assert found.weights == (8 * 16 + 16 + 16 * 4 + 4) * 4  # 848
    assert found.gradients == 848
    assert found.optimizer == 2 * 848 + 2 * 4 + 2 * 4  # two states per element, a step per each of 4 tensors
    assert found.activations == 3 * 8 * 4 + 3 * 16 * 4  # Linear saves its input, ReLU its output (Linear 2's input)
    assert (found.record("0").activations, found.record("1").activations, found.record("2").activations) == (
        96,
        192,
        0,
    )
    # no-grad forward: the input (96) + Linear 1's output (192) + ReLU's output (192), alive together at the ReLU
    assert (found.inference_activations, found.inference_peak_module) == (96 + 192 + 192, "1")
    assert found.inference_peak == 848 + 480
    assert found.total == 848 + 848 + found.optimizer + 288
    assert found.transient == 2 * 192  # the largest activation storage, twice
    static = 848 + 848 + found.optimizer
    assert found.training_peak == static + max(found.forward_peak, 288 + 384)


def test_json_keys_and_order() -> None:
    found = audit_memory(nn.Linear(4, 2), [InputSpec((1, 4))])
    data = found.as_json()
    assert list(data)[:5] == ["weights", "gradients", "optimizer", "activations", "total"]
    assert data["total"] == found.total and data["peak"]["training"] == found.training_peak
    assert data["inference"]["total"] == found.inference_peak
    assert [m["name"] for m in data["modules"]] == [""]
    assert data["optimizer_name"] == "adam" and data["precision"] == "fp32"


def test_the_callers_model_is_untouched_and_meta_models_work() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    found = audit_memory(model, [_x(2, 4)])
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    meta = audit_memory(model.to("meta"), [InputSpec((2, 4))])
    assert meta.as_json()["modules"] == found.as_json()["modules"]
    assert meta.built_on == "meta"


def test_storage_identity_on_meta_and_fake_tensors() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    base = torch.empty(4, 8, device="meta")
    other = torch.empty(4, 8, device="meta")
    assert storage_key(base) == storage_key(base.t()) == storage_key(base[1:])
    assert storage_key(base) != storage_key(other)
    assert storage_bytes(base[1:]) == 4 * 8 * 4  # a view is charged its whole storage
    with FakeTensorMode():
        fake = torch.empty(4, 8)
        assert storage_key(fake) == storage_key(fake.view(32)) != storage_key(torch.empty(4, 8))
        assert storage_bytes(fake.expand(2, 4, 8)) == 128


@pytest.mark.parametrize(
    ("keyword", "value", "choices"),
    [("optimizer", "rmsprop", "sgd, momentum, adam, adamw"), ("precision", "fp8", "fp32, bf16-mixed, fp16-mixed")],
)
def test_unknown_choices_are_one_line_errors(keyword: str, value: str, choices: str) -> None:
    with pytest.raises(SettingError) as caught:
        audit_memory(nn.Linear(2, 2), [InputSpec((1, 2))], **{keyword: value})
    assert str(caught.value) == f"unknown {keyword} {value!r}: one of {choices}"
    assert isinstance(caught.value, ArchauditError) and isinstance(caught.value, ValueError)


def test_kv_cache_from_decoder_layers() -> None:
    layer = nn.TransformerDecoderLayer(8, 2, 16)
    model = nn.TransformerDecoder(layer, num_layers=3)
    memory, tgt = _x(4, 1, 8), _x(5, 1, 8)
    found = audit_memory(model, [tgt, memory], kv_cache_tokens=10)
    assert found.kv_cache is not None and found.kv_cache.source == "nn.TransformerDecoderLayer"
    assert found.kv_cache_bytes == 2 * 3 * 2 * 4 * 10 * 4  # 2 (k, v) x 3 layers x 2 heads x head_dim 4 x 10 x fp32
    assert found.inference_peak == found.weights + found.buffers + found.inference_activations + 1920


def test_kv_cache_from_a_hugging_face_config_with_grouped_heads() -> None:
    model = nn.Linear(2, 2)
    model.config = SimpleNamespace(
        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, hidden_size=4096
    )
    cache = kv_cache_layout(model, 4096, 2)
    assert cache.bytes == 2 * 32 * 8 * 128 * 4096 * 2  # 512 MiB: Llama-style GQA at bf16
    model.config = SimpleNamespace(hidden_size=8)
    with pytest.raises(MemorySpecError, match="lacks the layer count"):
        kv_cache_layout(model, 1, 2)


def test_kv_cache_not_detectable_is_a_clear_error() -> None:
    with pytest.raises(MemorySpecError, match="no decoder layout found in Linear"):
        audit_memory(nn.Linear(2, 2), [InputSpec((1, 2))], kv_cache_tokens=8)


def cpu_inference_activations(model: nn.Module, inputs: list[torch.Tensor]) -> int:
    """The oracle for the inference peak: a REAL CPU forward of ``model`` in eval mode under ``torch.no_grad``, with
    a dispatch mode holding each op's output storages (by ``data_ptr``) until their last tensor dies, and the most
    bytes alive at once after any op, the inputs included and parameters' and buffers' storages left out."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    live: dict[int, list[int]] = {}
    totals = {"current": 0, "peak": 0}

    def release(ptr: int) -> None:
        live[ptr][1] -= 1
        if live[ptr][1] == 0:
            totals["current"] -= live.pop(ptr)[0]

    def hold(t: torch.Tensor) -> None:
        ptr = t.untyped_storage().data_ptr()
        if ptr in weights:
            return
        if ptr not in live:
            live[ptr] = [t.untyped_storage().nbytes(), 0]
            totals["current"] += live[ptr][0]
        live[ptr][1] += 1
        weakref.finalize(t, release, ptr)

    class Hold(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            for leaf in tree_leaves(out):
                if isinstance(leaf, torch.Tensor):
                    hold(leaf)
            totals["peak"] = max(totals["peak"], totals["current"])
            return out

    for t in inputs:
        hold(t)
    totals["peak"] = totals["current"]
    model.eval()
    with torch.no_grad(), Hold():
        model(*inputs)
    return totals["peak"]


INFERENCE_CASES = {
    # name: (model factory, inputs factory); dropout and the transformer layer's fused eval kernel are what differ
    # from a train-mode forward
    "mlp-dropout": (
        lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4)),
        lambda: [_x(3, 8)],
    ),
    "transformer-encoder-layer": (
        lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
        lambda: [_x(2, 5, 8)],
    ),
    "conv-batchnorm": (lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), lambda: [_x(2, 3, 8, 8)]),
    # oneDNN's inference LSTM returns (output, hy, cy) and no workspace: only a workspace is left out, never cy
    "bidirectional-lstm": (lambda: nn.LSTM(8, 6, 2, bidirectional=True), lambda: [_x(5, 1, 8)]),
}


@pytest.mark.parametrize("name", sorted(INFERENCE_CASES))
def test_inference_peak_matches_a_real_cpu_eval_run(name: str) -> None:
    make_model, make_inputs = INFERENCE_CASES[name]
    torch.manual_seed(0)
    model, inputs = make_model(), make_inputs()
    found = audit_memory(model.train(), inputs)  # the caller's mode does not matter: inference is eval mode
    assert found.inference_activations == cpu_inference_activations(model, inputs)


def test_the_training_pass_runs_in_train_mode_and_modes_are_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 4)).to("meta")
    model[1].eval()  # a mixed state, which both passes must leave as it was
    modes = [m.training for m in model.modules()]
    in_eval = audit_memory(model, [InputSpec((3, 8))])
    assert [m.training for m in model.modules()] == modes
    # oracle: the same model on CPU in train mode, its saved tensors (the dropout mask among them) on a real run
    real = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 4)).train()
    assert in_eval.activations == cpu_saved_bytes(real, [_x(3, 8)])
    assert in_eval.activations > audit_memory(nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 4)), [_x(3, 8)]).activations
