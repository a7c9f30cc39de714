"""Memory: bytes of weights, gradients, optimizer state and activations saved for backward, per module, and the
peaks of a training step and of inference, from passes that allocate nothing.

How it is measured. The model goes to the meta device (:func:`archaudit.trace.on_meta`) and its parameters,
buffers and inputs are swapped, for the passes only (``torch.func.functional_call``: the model is not touched),
for *fake CPU tensors* (``FakeTensorMode``): meta storage underneath, so nothing is allocated and no arithmetic is
done, but they report ``device="cpu"``, so every device-dependent choice PyTorch makes (the attention kernel
``scaled_dot_product_attention`` picks, the oneDNN LSTM/GRU path, the self-attention packed projection) and
CPU autocast are the CPU's. Plain meta tensors differ from a CPU run there: meta's attention falls back to the
math kernel and saves the full score matrix, meta's LSTM runs cell by cell, and meta has no autocast at all.

* **Saved activations**: one forward pass with grad enabled under ``torch.autograd.graph.saved_tensors_hooks``;
  each saved tensor is charged to the innermost module call running when autograd saved it (forward pre/post
  hooks keep a stack, as :func:`archaudit.trace.capture` does), to the first such call when several save it.
  Tensors are de-duplicated by storage (views of one storage count once, at the storage's full size), and
  storages of parameters and buffers are left out (they are weights). Only storages still alive when the
  forward returns count: those are what the backward pass holds (the hook saves an alias of each tensor, so a
  saved tensor lives exactly as long as the node that saved it, as without hooks: a branch whose output is
  dropped frees what it saved). The model's inputs count where a layer saves them. On fake tensors, a call of
  a block repeated in the model (a transformer's layers) is measured once and replayed at its twins, with the
  same figures (:class:`_Repeats`; ``MemoryMeter(replay=False)`` runs every call). Stock RNN layers run their
  real forward here (the trace stubs them); on oneDNN their run-time workspace, whose size only oneDNN knows,
  counts 0 (noted in the audit when such a layer ran).
* **Weights** are parameters at their dtype, tied tensors once (at the first module path holding them, as
  :func:`archaudit.walker.audit_params` counts them); **buffers** are reported apart. **Gradients**: trainable
  parameters, at their dtype. **Optimizer state**, as ``torch.optim`` lays it out for a parameter of that dtype
  (its ``state`` after one step): ``sgd`` none; ``momentum`` one buffer per trainable element; ``adam``/``adamw``
  two (``exp_avg``, ``exp_avg_sq``) plus a 4-byte float32 ``step`` counter per parameter tensor. With fp32
  parameters (fp32 master weights, as both mixed precisions keep) that is 4 bytes per state element.
* **Precision**: ``fp32`` runs the pass as the model is; ``bf16-mixed`` and ``fp16-mixed`` run it under
  ``torch.autocast("cpu", dtype)``: weights, gradients and optimizer state stay at the parameters' dtype (fp32
  master weights) and saved activations are half precision where autocast casts, including the half copies of
  weights that autocast makes and autograd saves (they count as activations: they are memory the step holds
  beyond the weights). The cast policy is CPU autocast's; CUDA's differs (it also runs norms and softmax in fp32).
* **Training peak** (an upper-bound estimate, not a measurement): weights + buffers + gradients + optimizer state
  + the larger of (a) the grad-enabled forward's live-activation peak and (b) the saved activations plus a
  backward transient of twice the largest activation storage (the gradient arriving for an op's output and the
  one it produces for its input). Gradients are counted as resident throughout; the optimizer step's own
  temporaries (``foreach`` implementations) are not counted.
* **Inference peak**: weights + buffers + the largest set of activation storages alive at once during a no-grad
  forward in eval mode (inputs included; measured op by op: each op's outputs are tracked until their storage
  dies) + the KV cache when ``kv_cache_tokens`` is given. Eval mode, as inference runs: dropout draws no masks, and
  the fused eval-time kernels PyTorch picks on CPU (``nn.TransformerEncoderLayer``'s and ``nn.MultiheadAttention``'s
  fast path) are the ones measured.
* **Modes**: the training pass runs the model in train mode and the inference pass in eval mode, whatever mode the
  caller's model is in (on the meta copy, or on a meta model itself with every module's mode restored after).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import sys
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._pytree import tree_flatten, tree_leaves, tree_unflatten

from .errors import ArchauditError, ForwardError
from .inputs import InputSpec, zero_tensors
from .optim import Optimizer, Precision, SettingError, parse_optimizer, parse_precision
from .registry import REGISTRY, FormulaRegistry
from .trace import (
    DispatchMode,
    ValueGuard,
    lend_dynamo_config,
    model_device,
    on_cpu,
    on_meta,
    spare_dynamo,
    trace_device,
)
from .usercode import one_line
from .walker import audit_params, module_paths


class MemorySpecError(SettingError):
    """A KV cache asked of a model whose attention layout is not found (an unknown optimizer or precision is the
    :class:`~archaudit.optim.SettingError` it derives from)."""


_AUTOCAST_DTYPE = {Precision.BF16_MIXED: torch.bfloat16, Precision.FP16_MIXED: torch.float16}
_STEP_BYTES = 4
"""``torch.optim.Adam``'s ``step``: a float32 scalar tensor per parameter tensor (not capturable, not fused)."""


def optimizer_state_bytes(optimizer: Optimizer | str, numel: int, element_size: int) -> int:
    """Bytes ``torch.optim`` keeps for one trainable parameter tensor of ``numel`` elements of ``element_size``."""
    kind = parse_optimizer(optimizer)
    if kind is Optimizer.SGD:
        return 0
    if kind is Optimizer.MOMENTUM:
        return numel * element_size  # momentum_buffer
    return 2 * numel * element_size + _STEP_BYTES  # exp_avg, exp_avg_sq, step


@dataclass(frozen=True)
class ModuleMemory:
    """One module path's bytes: what it holds itself (parameters ``recurse=False``, first holder of a tied tensor)
    and the activations autograd saved during its own calls (its children's excluded)."""

    name: str
    type: str
    weights: int
    buffers: int
    gradients: int
    optimizer: int
    activations: int
    saved_tensors: int
    """Distinct storages charged here."""

    @property
    def total(self) -> int:
        return self.weights + self.buffers + self.gradients + self.optimizer + self.activations

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "weights": self.weights,
            "buffers": self.buffers,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "saved_tensors": self.saved_tensors,
            "total": self.total,
        }


@dataclass(frozen=True)
class KVCache:
    """``2 x layers x kv_heads x head_dim x tokens x element_size`` bytes, and where the layout came from."""

    layers: int
    kv_heads: int
    head_dim: int
    tokens: int
    element_size: int
    source: str

    @property
    def bytes(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.tokens * self.element_size


@dataclass(frozen=True)
class MemoryAudit:
    """Bytes of one training step and of inference. Totals are functions of the records."""

    model_type: str
    inputs: tuple[str, ...]
    optimizer_name: Optimizer
    precision: Precision
    records: tuple[ModuleMemory, ...]
    forward_peak: int
    """Most activation bytes alive at once in the grad-enabled forward (saved ones and temporaries)."""
    largest_activation: int
    """The largest activation storage an op produced in the grad-enabled forward."""
    inference_activations: int
    """Most activation bytes alive at once in the no-grad forward, inputs included."""
    inference_peak_module: str
    """The innermost module path running when that peak was reached (``""`` for the root)."""
    kv_cache: KVCache | None = None
    built_on: str = "meta"
    notes: tuple[str, ...] = ()
    measured_on: str = "fake"
    """``"cpu"`` (a zero CPU copy, for a small model) or ``"fake"`` (fake CPU tensors): see :class:`MemoryMeter`."""

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.records)

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self.records)

    @property
    def gradients(self) -> int:
        return sum(r.gradients for r in self.records)

    @property
    def optimizer(self) -> int:
        return sum(r.optimizer for r in self.records)

    @property
    def activations(self) -> int:
        """Activations saved for backward, storages de-duplicated, parameters and buffers excluded."""
        return sum(r.activations for r in self.records)

    @property
    def total(self) -> int:
        """Weights + buffers + gradients + optimizer state + saved activations."""
        return sum(r.total for r in self.records)

    @property
    def transient(self) -> int:
        """The backward transient the training peak allows for: twice the largest activation storage."""
        return 2 * self.largest_activation  # as _training_peak allows

    @property
    def training_peak(self) -> int:
        """The training step's upper-bound estimate (module docstring): the resident state plus the larger of the
        forward's live peak and the saved activations with the backward transient."""
        static = self.weights + self.buffers + self.gradients + self.optimizer
        return _training_peak(static, self.forward_peak, self.activations, self.largest_activation)

    @property
    def kv_cache_bytes(self) -> int:
        return 0 if self.kv_cache is None else self.kv_cache.bytes

    @property
    def inference_peak(self) -> int:
        """Weights + buffers + the largest live activation set of a no-grad forward + the KV cache."""
        return self.weights + self.buffers + self.inference_activations + self.kv_cache_bytes

    def record(self, name: str) -> ModuleMemory:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no module path {name!r} in this {self.model_type} memory audit")

    def component(self, prefix: str) -> ModuleMemory:
        """The bytes of a module path and every path below it, summed into one record."""
        if prefix:
            self.record(prefix)  # raises KeyError naming the path when it does not exist
        under = [r for r in self.records if not prefix or r.name == prefix or r.name.startswith(prefix + ".")]
        return ModuleMemory(
            name=prefix,
            type=under[0].type,
            weights=sum(r.weights for r in under),
            buffers=sum(r.buffers for r in under),
            gradients=sum(r.gradients for r in under),
            optimizer=sum(r.optimizer for r in under),
            activations=sum(r.activations for r in under),
            saved_tensors=sum(r.saved_tensors for r in under),
        )

    def as_json(self) -> dict[str, Any]:
        """Plain numbers in a stable order: the five totals first (``weights``, ``gradients``, ``optimizer``,
        ``activations``, ``total``), then buffers, the peaks, inference, the settings and the modules."""
        kv = self.kv_cache
        return {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
            "total": self.total,
            "buffers": self.buffers,
            "peak": {
                "training": self.training_peak,
                "forward_activations": self.forward_peak,
                "transient": self.transient,
            },
            "inference": {
                "weights": self.weights,
                "buffers": self.buffers,
                "activations": self.inference_activations,
                "peak_module": self.inference_peak_module,
                "kv_cache": None
                if kv is None
                else {
                    "bytes": kv.bytes,
                    "layers": kv.layers,
                    "kv_heads": kv.kv_heads,
                    "head_dim": kv.head_dim,
                    "tokens": kv.tokens,
                    "element_size": kv.element_size,
                    "source": kv.source,
                },
                "total": self.inference_peak,
            },
            "model": self.model_type,
            "inputs": list(self.inputs),
            "optimizer_name": self.optimizer_name.value,
            "precision": self.precision.value,
            "built_on": self.built_on,
            "measured_on": self.measured_on,
            "notes": list(self.notes),
            "modules": [r.as_json() for r in self.records],
        }


def _training_peak(resident: int, forward_peak: int, saved: int, largest: int) -> int:
    """Resident state + the larger of the forward's live peak and the saved activations with the backward transient
    of twice the largest activation storage."""
    return resident + max(forward_peak, saved + 2 * largest)


# --- storages --------------------------------------------------------------------------------------------------


def storage_key(tensor: torch.Tensor) -> int:
    """An identity of ``tensor``'s storage, shared by all its views: the address of its ``StorageImpl``.

    It holds for real, meta and fake tensors alike, for as long as the storage is alive (a freed storage's address
    may be reused, so callers compare keys of storages alive at the same time only). A tensor with no storage of
    its own (a wrapper subclass) is its own key.
    """
    try:
        return int(tensor.untyped_storage()._cdata)
    except (RuntimeError, NotImplementedError, TypeError):
        return id(tensor)


def storage_bytes(tensor: torch.Tensor) -> int:
    """The size of ``tensor``'s whole storage (a view is charged its storage, once), else the tensor's own bytes."""
    try:
        return int(tensor.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError, TypeError):
        return int(tensor.numel() * tensor.element_size())


class _LiveTracker:
    """Tracks the storages every op produces until their last tracked tensor dies, and the most bytes alive at once.

    Parameters' and buffers' storages (``exclude``) are weights, not activations. The peak is read after each op,
    while its inputs are still held by the caller: an op's inputs and outputs are alive together.
    """

    def __init__(self, stack: list[str], exclude: set[int]) -> None:
        self.stack, self.exclude = stack, exclude
        self.live: dict[int, list[int]] = {}  # storage key -> [bytes, live tensors on it]
        self.current = self.peak = self.largest = 0
        self.peak_path = ""
        self.finalizers: list[weakref.finalize[Any, Any]] = []
        self.ops: set[str] = set()
        self.workspaces: list[weakref.ref[torch.Tensor]] = []
        self.window: _Window | None = None

    def track(self, tensor: torch.Tensor) -> None:
        key = storage_key(tensor)
        if key in self.exclude:
            return
        entry = self.live.get(key)
        if entry is None:
            size = storage_bytes(tensor)
            self.live[key] = [size, 1]
            self.current += size
            self.largest = max(self.largest, size)
        else:
            entry[1] += 1
        self.finalizers.append(weakref.finalize(tensor, self._release, key))

    def hold(self, tensor: torch.Tensor) -> None:
        """Another tensor on a tracked storage (a saved alias) keeps it alive as long as itself; an untracked storage
        stays untracked."""
        if storage_key(tensor) in self.live:
            self.track(tensor)

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def mark(self) -> None:
        if self.current > self.peak:
            self.peak, self.peak_path = self.current, self.stack[-1] if self.stack else ""
        window = self.window
        if window is not None and self.current - window.entry > window.rise:
            window.rise, window.path = self.current - window.entry, self.stack[-1] if self.stack else ""

    def op(self, func: Any, out: Any) -> None:
        """One op ran and returned ``out``: its tensors are tracked and the peak read. A oneDNN RNN's workspace (its
        last output) is left out, saved or live: its size is oneDNN's choice for the CPU it runs on (meta's kernel
        returns an empty one), and a figure must not depend on the machine."""
        name = str(func._overloadpacket.__name__)
        self.ops.add(name)
        workspace = None
        if name in _ONEDNN_RNN and isinstance(out, (tuple, list)) and len(out) == 4:
            workspace = out[3]  # (output, hy, cy, workspace); in inference the workspace is undefined (None)
            if isinstance(workspace, torch.Tensor):
                # by reference, not by storage key: a freed storage's key may come back for another one
                self.workspaces.append(weakref.ref(workspace))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf is not workspace:
                self.track(leaf)
        self.mark()

    def close(self) -> None:
        for finalizer in self.finalizers:
            finalizer.detach()
        self.finalizers.clear()


@dataclass
class _Window:
    """What :class:`_LiveTracker` sees during one module call: the most bytes it added over those alive at its start
    (``rise``), and the innermost module path running then."""

    entry: int
    rise: int = 0
    path: str = ""


_PRIM_DEVICE = torch.ops.prim.device.default
_ONEDNN_RNN = frozenset({"mkldnn_rnn_layer", "mkldnn_rnn"})


class _RealCPU(DispatchMode):
    """The real CPU's counterpart of :class:`_FakeCPU`: hands every op to :attr:`tracker`, when one is set."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in torch
        self.tracker: _LiveTracker | None = None

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if self.tracker is not None and func is not _PRIM_DEVICE:
            self.tracker.op(func, out)
        return out


class _FakeCPU(FakeTensorMode):  # type: ignore[no-untyped-call]  # __init_subclass__ is unannotated in torch
    """``FakeTensorMode`` that also hands every op it runs for the caller to :attr:`tracker`, when one is set.

    One mode where a tracking ``TorchDispatchMode`` stacked above the fake one cost a second Python dispatch per op
    (about 15% of a pass). Only the caller's ops are tracked: those the fake mode runs inside one (decompositions)
    are not, as a mode above it would not have seen them; nor are device queries (``prim.device``, most of a
    pass's dispatches), which create no tensor.
    """

    def __init__(self) -> None:
        super().__init__(allow_non_fake_inputs=True)
        self.tracker: _LiveTracker | None = None
        self._depth = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None
    ) -> Any:
        tracker = self.tracker
        if tracker is None or func is _PRIM_DEVICE:
            return super().__torch_dispatch__(func, types, args, kwargs or {})
        self._depth += 1
        try:
            out = super().__torch_dispatch__(func, types, args, kwargs or {})
        finally:
            self._depth -= 1
        if self._depth == 0:
            tracker.op(func, out)
        return out


@dataclass
class _Saved:
    """Saved tensors seen by the pack hook, by weak reference: only those alive when the forward returns count."""

    entries: list[tuple[weakref.ref[torch.Tensor], int, int, str]]

    def alive(self, exclude: set[int]) -> dict[int, tuple[int, str]]:
        """Storage key -> (bytes, first module path that saved it), over the storages still alive."""
        found: dict[int, tuple[int, str]] = {}
        for ref, key, size, path in self.entries:
            if ref() is not None and key not in exclude and key not in found:
                found[key] = (size, path)
        return found


# --- repeated blocks -------------------------------------------------------------------------------------------
#
# A stack of identical blocks (a transformer's layers) runs the same ops at every layer: the fake mode's work per
# op, which is most of a pass, is paid once per layer for one answer. So a training pass on fake tensors measures a
# block's call once and replays what it did at each later call of a twin: a module whose every attribute, parameter
# shape and submodule is the same, called with inputs of the same shapes, in the same grad and autocast state. The
# replay leaves the pass as the call would have: the same outputs (fresh storages of the same layouts, with an
# autograd node over the same inputs), the same saved storages charged to the same relative module paths and held
# as long as that node, and the same rise of live bytes above those alive at the call (its largest storage and its
# ops are its twin's, counted already in the pass).
#
# A call is replayed only when what it did can be read off it completely; otherwise every call of it runs: it
# changed its module (an attribute, a parameter or buffer replaced) or the grad or autocast state, changed an input
# in place or filled a list passed in, an outer storage died during it, it saved or returned a storage it did not
# make (a weight, a plain tensor attribute, an input returned as it is), it returned a view, it left a storage alive
# that neither its output nor its saved tensors hold, its autograd graph reads a tensor that is neither its input nor
# its own parameter, it returns more than one tensor that needs gradients or anything but plain values beside them,
# or an attribute or argument is anything but a plain value, a function or a class (an object's state is not read).
# Nothing is replayed under autocast (its cache of each weight's cast copy, kept to the forward's end, is state no
# call shows) or with a global module hook of the caller's set; a forward that differentiates through a replayed
# block (``torch.autograd.grad`` in it) is run again without replays (``MemoryMeter._pass``). A forward that
# reads state outside its module and inputs (a global, a counter in another object) is not detected:
# ``MemoryMeter(replay=False)`` runs every call.

_PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout, enum.Enum)
_BY_IDENTITY = (types.FunctionType, types.BuiltinFunctionType, type)
_GRAPH_LIMIT = 100_000
"""Most autograd nodes one block's graph is walked through before its call is left to run unreplayed."""


class _Unreadable(Exception):
    """A call's effect, or a value a forward may read, that cannot be read off completely: the call runs."""


def _encode(value: Any, depth: int = 0) -> Any:
    """A hashable stand-in for a value a forward may read: plain values by type and value, functions and classes by
    identity, sequences and sets element-wise, an empty dict as such; anything else is :class:`_Unreadable`."""
    if isinstance(value, _PLAIN):
        return (type(value), value)
    if isinstance(value, _BY_IDENTITY):
        return ("object", id(value))
    if isinstance(value, (tuple, list, set, frozenset)) and depth < 8:
        items = [_encode(item, depth + 1) for item in value]
        if isinstance(value, (set, frozenset)):
            items.sort(key=repr)
        return (type(value), tuple(items))
    if isinstance(value, dict) and not value:
        return (type(value), ())
    raise _Unreadable


def _layout(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (tuple(tensor.shape), tuple(tensor.stride()), tensor.storage_offset(), tensor.dtype, tensor.requires_grad)


_BUSY = object()


def _module_shape(module: nn.Module, memo: dict[int, Any]) -> Any:
    """What a module's forward can read of itself, hashable (``None`` where something is :class:`_Unreadable`): its
    class, its attributes, its parameters' and buffers' layouts and its submodules', recursively. A forward hook
    anywhere makes it unreadable (a hook's effect is the hook's)."""
    key = id(module)
    if key in memo:
        return None if memo[key] is _BUSY else memo[key]
    memo[key] = _BUSY
    try:
        parts: list[Any] = [("class", id(type(module)))]
        for name, value in sorted(module.__dict__.items()):
            if name in ("_parameters", "_buffers", "_modules") or getattr(value, "__archaudit_replay__", False):
                continue
            parts.append((name, _encode(value)))
        parts += [("parameter", k, None if p is None else _layout(p)) for k, p in module._parameters.items()]
        parts += [("buffer", k, None if b is None else _layout(b)) for k, b in module._buffers.items()]
        for name, child in module._modules.items():
            shape = None if child is None else _module_shape(child, memo)
            if child is not None and shape is None:
                raise _Unreadable
            parts.append(("module", name, shape))
        found: Any = tuple(parts)
    except _Unreadable:
        found = None
    memo[key] = found
    return found


def _state() -> tuple[Any, ...]:
    return (
        torch.is_grad_enabled(),
        torch.is_inference_mode_enabled(),
        torch.is_autocast_enabled("cpu"),
        torch.get_autocast_dtype("cpu"),
    )


def _relative(path: str, base: str) -> str:
    """``path`` below ``base`` (``""`` for ``base`` itself); a path outside it is :class:`_Unreadable`."""
    if path == base:
        return ""
    if base and path.startswith(base + "."):
        return path[len(base) + 1 :]
    raise _Unreadable


def _given(leaves: list[Any], spec: Any) -> tuple[Any, ...]:
    """What a call's arguments (flattened: ``leaves``, ``spec``) are: their structure, each leaf by identity, a
    tensor also by version and grad_fn (an in-place change moves both)."""
    return (
        spec,
        tuple(
            (id(leaf), leaf._version, id(leaf.grad_fn)) if isinstance(leaf, torch.Tensor) else (id(leaf),)
            for leaf in leaves
        ),
    )


def _holdings(module: nn.Module) -> tuple[tuple[int, int], ...]:
    """Each parameter and buffer of ``module``, by identity and storage."""
    return tuple((id(t), storage_key(t)) for t in (*module.parameters(), *module.buffers()))


def _foreign_hooks() -> bool:
    """Whether a global module hook other than a memory pass's own two (its stack of module paths) is set."""
    hooks = nn.modules.module
    return (
        len(hooks._global_forward_pre_hooks) > 1
        or len(hooks._global_forward_hooks) > 1
        or bool(hooks._global_backward_hooks)
        or bool(hooks._global_backward_pre_hooks)
    )


def _join(base: str, relative: str) -> str:
    return f"{base}.{relative}" if relative else base


def _extent(tensor: torch.Tensor) -> int:
    """Bytes a storage needs for ``tensor``'s layout from its offset on."""
    if tensor.numel() == 0:
        return 0
    last = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True))
    return (last + 1) * tensor.element_size()


@dataclass(frozen=True)
class _Effect:
    """What one call left in a pass, relative to its inputs and its module path."""

    news: tuple[int, ...]
    """Bytes of each storage the call made that was alive when it returned, in the order it made them."""
    outputs: tuple[tuple[Any, ...], ...]
    """Per output leaf: ``("new", storage index, shape, stride, dtype, requires_grad)`` or ``("value", value)``."""
    spec: Any
    saved: tuple[tuple[str, int, str], ...]
    """Per saved tensor alive when it returned, in order, with the module path it is charged to: ``("new", storage
    index, path)`` or ``("input", leaf index, path)``. Each lives as long as the node that saved it (the pass saves
    aliases, :func:`_run`), and every node of the call alive when it returned lives as long as its output's."""
    rise: int
    rise_path: str
    """The most bytes the call added over those alive at its start, and the module path running then. The largest
    storage and the ops of a replayed call are its twin's, already counted in the pass."""


class _Replay(torch.autograd.Function):
    """The autograd node a replayed call's outputs hang from: over the inputs that need gradients (so it holds
    their graphs as the call's nodes did) and holding the storages the call saved. Its backward only says that it
    was reached, for the pass to run again without replays."""

    @staticmethod
    def forward(
        ctx: Any,
        build: Callable[[], tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]],
        owner: _Repeats,
        *inputs: Any,
    ) -> Any:
        outputs, fixed, held = build()
        ctx.held, ctx.owner = held, owner
        ctx.mark_non_differentiable(*fixed)
        return tuple(outputs)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        # A forward that differentiates (torch.autograd.grad in it: forces, gradient penalties) reaches a replay's
        # node; what the replayed call's own nodes would have done there is not known. The pass is run again
        # without replays (MemoryMeter._pass), also if the model catches this.
        ctx.owner.differentiated = True
        raise _Differentiated("a memory pass differentiated through a replayed block")


class _Differentiated(RuntimeError):
    """A pass's forward differentiated through a replayed block: it runs again with every call run."""


class _Repeats:
    """A training pass's repeated blocks: each twin's first call measured, the later ones replayed (see above)."""

    def __init__(
        self,
        model: nn.Module,
        paths: dict[int, str],
        mode: _FakeCPU,
        tracker: _LiveTracker,
        saved: _Saved,
        exclude: set[int],
    ) -> None:
        self.mode, self.tracker, self.saved, self.exclude = mode, tracker, saved, exclude
        self.effects: dict[Any, _Effect | None] = {}
        self.differentiated = False
        memo: dict[int, Any] = {}
        found: dict[Any, list[tuple[str, nn.Module]]] = {}
        for path, module in model.named_modules():
            if path and "forward" not in module.__dict__:
                shape = _module_shape(module, memo)
                if shape is not None and all(paths.get(id(m)) == _join(path, n) for n, m in module.named_modules()):
                    found.setdefault(shape, []).append((path, module))
        twins = sorted((twin for group in found.values() if len(group) > 1 for twin in group), key=lambda t: len(t[0]))
        if _foreign_hooks():
            twins = []  # a hook of the caller's would see the modules inside a replayed block not run
        self.blocks: list[tuple[str, nn.Module]] = []
        for path, module in twins:  # outermost first: a block inside a replayed block never runs
            if not any(path.startswith(outer + ".") for outer, _ in self.blocks):
                self.blocks.append((path, module))

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        for path, module in self.blocks:
            object.__setattr__(module, "forward", self._forward(module, path))
        try:
            yield
        finally:
            for _, module in self.blocks:
                module.__dict__.pop("forward", None)

    def _forward(self, module: nn.Module, path: str) -> Callable[..., Any]:
        original = types.MethodType(type(module).forward, module)

        def forward(*args: Any, **kwargs: Any) -> Any:
            if self.tracker.window is not None or self.mode.tracker is None or torch.is_autocast_enabled("cpu"):
                # inside a block being measured, a pass not tracked, or under autocast, whose cache of each
                # weight's cast copy (made at its first use in a forward, kept to the forward's end) is state no
                # call shows
                return original(*args, **kwargs)
            shape = _module_shape(module, {})
            if shape is None:
                return original(*args, **kwargs)
            leaves, spec = tree_flatten((args, kwargs))
            try:
                key = (shape, spec, self._inputs(leaves), _state())
            except _Unreadable:
                return original(*args, **kwargs)
            if key not in self.effects:
                output, self.effects[key] = self._measure(module, path, original, args, kwargs, leaves, spec, shape)
                return output
            effect = self.effects[key]
            if effect is None:
                return original(*args, **kwargs)
            return self._replay(effect, module, path, leaves)

        forward.__archaudit_replay__ = True  # type: ignore[attr-defined]  # skipped by _module_shape
        return forward

    def _inputs(self, leaves: list[Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        storages: dict[int, int] = {}
        for leaf in leaves:
            if isinstance(leaf, torch.Tensor):
                key = storage_key(leaf)
                if key in self.exclude:
                    raise _Unreadable  # a weight passed in
                shared = storages.setdefault(key, len(storages))
                parts.append((type(leaf), _layout(leaf), leaf.is_leaf, leaf._is_view(), storage_bytes(leaf), shared))
            else:
                parts.append(_encode(leaf))
        return tuple(parts)

    def _measure(
        self,
        module: nn.Module,
        path: str,
        original: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        leaves: list[Any],
        spec: Any,
        shape: Any,
    ) -> tuple[Any, _Effect | None]:
        tracker = self.tracker
        before, count, workspaces, state = set(tracker.live), len(self.saved.entries), len(tracker.workspaces), _state()
        given, holdings = _given(leaves, spec), _holdings(module)
        window = tracker.window = _Window(tracker.current)
        try:
            output = original(*args, **kwargs)
        finally:
            tracker.window = None
        try:
            if (
                _state() != state
                or _module_shape(module, {}) != shape
                or len(tracker.workspaces) != workspaces
                or _given(*tree_flatten((args, kwargs))) != given  # an input changed in place, a list passed filled
                or _holdings(module) != holdings  # a parameter or buffer replaced, or its storage swapped
            ):
                raise _Unreadable
            effect = self._effect(module, path, output, leaves, before, count, window)
        except _Unreadable:
            effect = None
        return output, effect

    def _effect(
        self,
        module: nn.Module,
        path: str,
        output: Any,
        leaves: list[Any],
        before: set[int],
        count: int,
        window: _Window,
    ) -> _Effect:
        live = self.tracker.live
        if not before <= live.keys():
            raise _Unreadable  # an outer storage died during the call
        news = [key for key in live if key not in before]  # in the order the call made them
        index = {key: i for i, key in enumerate(news)}
        out_leaves, spec = tree_flatten(output)
        outputs: list[tuple[Any, ...]] = []
        returned: set[int] = set()
        graded = [t for t in out_leaves if isinstance(t, torch.Tensor) and t.requires_grad]
        if len(graded) > 1 or any(t.grad_fn is None for t in graded):
            raise _Unreadable
        for leaf in out_leaves:
            if not isinstance(leaf, torch.Tensor):
                if not isinstance(leaf, _PLAIN):
                    raise _Unreadable  # every replay would hand back this one object
                outputs.append(("value", leaf))
                continue
            key = storage_key(leaf)
            if (
                key not in index
                or key in returned
                or leaf._is_view()
                or leaf.storage_offset()
                or storage_bytes(leaf) != _extent(leaf)
            ):
                raise _Unreadable  # the replay makes each output a fresh tensor filling its own storage
            returned.add(key)
            outputs.append(("new", index[key], tuple(leaf.shape), tuple(leaf.stride()), leaf.dtype, leaf.requires_grad))
        tensors = [(j, leaf) for j, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        saved: list[tuple[str, int, str]] = []
        held: set[int] = set()
        for ref, key, _, where in self.saved.entries[count:]:
            tensor = ref()
            if tensor is None or key in self.exclude:
                continue
            relative = _relative(where, path)
            if key in index:
                saved.append(("new", index[key], relative))
                held.add(key)
                continue
            same = [j for j, leaf in tensors if storage_key(leaf) == key]
            if not same:
                raise _Unreadable  # a storage from outside the call
            saved.append(("input", same[0], relative))
        if (saved and not graded) or any(key not in returned and key not in held for key in news):
            raise _Unreadable
        if graded:
            self._check_graph(graded[0], module, tensors)
        return _Effect(
            news=tuple(live[key][0] for key in news),
            outputs=tuple(outputs),
            spec=spec,
            saved=tuple(saved),
            rise=window.rise,
            rise_path=_relative(window.path, path) if window.rise > 0 else "",
        )

    @staticmethod
    def _check_graph(output: torch.Tensor, module: nn.Module, tensors: list[tuple[int, torch.Tensor]]) -> None:
        """The output's autograd graph, walked down to the inputs, reads only the inputs and the module's own
        parameters, and every input that needs gradients: the replay's one node over those inputs holds what the
        call's nodes held."""
        wanted = [leaf for _, leaf in tensors if leaf.requires_grad]
        stops = {id(leaf.grad_fn): i for i, leaf in enumerate(wanted) if leaf.grad_fn is not None}
        leaf_inputs = {id(leaf): i for i, leaf in enumerate(wanted) if leaf.grad_fn is None}
        own = {id(p) for p in module.parameters()}
        reached: set[int] = set()
        seen: set[int] = set()
        pending = [output.grad_fn]
        while pending:
            node = pending.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            if len(seen) > _GRAPH_LIMIT:
                raise _Unreadable
            if id(node) in stops:
                reached.add(stops[id(node)])
                continue
            variable = getattr(node, "variable", None)
            if variable is not None:  # an AccumulateGrad: a leaf's
                if id(variable) in leaf_inputs:
                    reached.add(leaf_inputs[id(variable)])
                elif id(variable) not in own:
                    raise _Unreadable
                continue
            pending.extend(next_node for next_node, _ in node.next_functions)
        if len(reached) != len(wanted):
            raise _Unreadable

    def _replay(self, effect: _Effect, module: nn.Module, path: str, leaves: list[Any]) -> Any:
        tracker, mode = self.tracker, self.mode
        entry = tracker.current
        made: list[torch.Tensor] = []
        saved_objects: list[torch.Tensor] = []

        def build() -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
            layouts = {part[1]: part for part in effect.outputs if part[0] == "new"}
            for i, size in enumerate(effect.news):
                if i in layouts:
                    _, _, shape, stride, dtype, _ = layouts[i]
                    made.append(torch.empty_strided(shape, stride, dtype=dtype, device="cpu"))
                else:
                    made.append(torch.empty(size, dtype=torch.uint8, device="cpu"))
            for kind, i, _ in effect.saved:
                if kind == "new":
                    saved_objects.append(made[i].detach() if i in layouts else made[i])
                else:
                    saved_objects.append(leaves[i].detach())
            outputs = [made[part[1]] for part in effect.outputs if part[0] == "new"]
            fixed = [made[part[1]] for part in effect.outputs if part[0] == "new" and not part[5]]
            # the node holds what the call saved, as the call's nodes did; an output it did not save it does not
            return outputs, fixed, saved_objects

        mode.tracker = None  # the replay's own ops are not the pass's
        try:
            graded = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor) and leaf.requires_grad]
            if any(part[0] == "new" and part[5] for part in effect.outputs):
                if not graded:  # the call's gradients come from its own parameters alone
                    graded = [next(p for p in module.parameters() if p.requires_grad)]
                tensors = list(_Replay.apply(build, self, *graded))  # type: ignore[no-untyped-call]  # unannotated
            else:
                tensors = build()[0]
        finally:
            mode.tracker = tracker
        tracked = {id(leaf) for leaf in leaves}  # an input is tracked already, where it was made
        for tensor in (*made, *saved_objects):
            if id(tensor) not in tracked:
                tracked.add(id(tensor))
                tracker.track(tensor)
        for (_, _, relative), tensor in zip(effect.saved, saved_objects, strict=True):
            where = _join(path, relative)
            self.saved.entries.append((weakref.ref(tensor), storage_key(tensor), storage_bytes(tensor), where))
        if entry + effect.rise > tracker.peak:
            tracker.peak, tracker.peak_path = entry + effect.rise, _join(path, effect.rise_path)
        returned = iter(tensors)
        flat = [next(returned) if part[0] == "new" else part[1] for part in effect.outputs]
        return tree_unflatten(flat, effect.spec)


# --- the passes ------------------------------------------------------------------------------------------------


def _fake_copy(tensor: torch.Tensor, memo: dict[int, torch.Tensor]) -> torch.Tensor:
    """A fake CPU tensor of ``tensor``'s shape, strides and dtype (run inside the fake mode); one per original."""
    found = memo.get(id(tensor))
    if found is None:
        found = torch.empty_strided(tuple(tensor.shape), tuple(tensor.stride()), dtype=tensor.dtype, device="cpu")
        if isinstance(tensor, nn.Parameter):
            found = nn.Parameter(found, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = found
    return found


@dataclass
class _Pass:
    saved: dict[int, tuple[int, str]]
    peak: int
    peak_path: str
    largest: int
    ops: set[str]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    saved_argv = sys.argv
    try:
        sys.argv = ["archaudit"]
        with contextlib.redirect_stdout(sys.stderr):  # what the model prints stays off archaudit's output
            yield
    finally:
        sys.argv = saved_argv


class _Kept:
    """Every module's attributes, parameters, buffers and submodules as they are, put back by :meth:`restore`: what
    a forward assigns (``self.last = y``, a buffer replaced, a cache built at a first call) leaves neither the
    caller's model nor the next pass changed. Tensors changed in place stay changed (their values are no figure's)."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = [
            (m, dict(m.__dict__), dict(m._parameters), dict(m._buffers), dict(m._modules)) for m in model.modules()
        ]

    def restore(self) -> None:
        for module, attributes, parameters, buffers, modules in self.modules:
            module.__dict__.clear()
            module.__dict__.update(attributes)
            module._parameters.clear()
            module._parameters.update(parameters)
            module._buffers.clear()
            module._buffers.update(buffers)
            module._modules.clear()
            module._modules.update(modules)


def _run(
    mode: _FakeCPU | _RealCPU,
    model: nn.Module,
    state: dict[str, torch.Tensor] | None,
    inputs: list[torch.Tensor],
    keywords: dict[str, torch.Tensor],
    exclude: set[int],
    *,
    grad: bool,
    precision: Precision,
    replay: bool = True,
) -> _Pass:
    """One forward of ``model`` with ``state`` (fake tensors of ``mode``) swapped in, or of a zero CPU copy as it is
    (``state=None``): with ``grad``, a training step's (train mode, saved tensors charged per module call), else
    inference's (eval mode, no autograd); live activation bytes are tracked op by op either way. A training pass on
    fake tensors replays repeated blocks where ``replay`` (:class:`_Repeats`). Every module's mode is restored
    afterwards."""
    paths = {id(m): name for name, m in model.named_modules()}
    stack: list[str] = []
    saved = _Saved([])
    tracker = _LiveTracker(stack, exclude)

    # Global module hooks, filtered to this model's modules: hooks on the modules themselves would turn off the
    # fused eval-time kernels (nn.TransformerEncoderLayer takes its fast path only when no module below it has a
    # hook), and the inference pass would measure a path that inference never takes.
    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        path = paths.get(id(module))
        if path is not None:
            stack.append(path)

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if id(module) in paths:
            stack.pop()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        # Autograd holds what this returns for as long as the node saving it. The tensor itself would hold its own
        # grad_fn: a node saving its output (a ReLU's, a softmax's) and that output would hold each other, and the
        # node's whole graph would outlive its call until Python's cycle collector ran (when, depends on
        # allocations), as autograd without hooks never keeps it. An alias on the same storage is held as autograd
        # holds a saved tensor.
        tracking, mode.tracker = mode.tracker, None  # the alias is no op of the model's
        try:
            alias = tensor.detach()
        finally:
            mode.tracker = tracking
        tracker.hold(alias)
        if any(ref() is tensor for ref in tracker.workspaces):  # a oneDNN workspace's alias is one too
            tracker.workspaces.append(weakref.ref(alias))
        saved.entries.append((weakref.ref(alias), storage_key(alias), storage_bytes(alias), stack[-1]))
        return alias

    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    handles = [
        nn.modules.module.register_module_forward_pre_hook(pre_hook),
        nn.modules.module.register_module_forward_hook(post_hook),
    ]
    dtype = _AUTOCAST_DTYPE.get(precision)
    autocast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    modes = [(module, module.training) for module in model.modules()]
    kept = _Kept(model)
    repeats: _Repeats | None = None
    try:
        model.train(grad)
        repeats = (
            _Repeats(model, paths, mode, tracker, saved, exclude)
            if replay and grad and isinstance(mode, _FakeCPU)
            else None
        )
        for tensor in (*inputs, *keywords.values()):
            tracker.track(tensor)
        tracker.mark()
        with (
            _quiet(),
            mode,
            torch.set_grad_enabled(grad),
            autocast,
            torch.autograd.graph.saved_tensors_hooks(pack, unpack),
            repeats.installed() if repeats is not None else contextlib.nullcontext(),
        ):
            mode.tracker = tracker
            try:
                if state is None:
                    output = model(*inputs, **keywords)
                else:
                    # a copy: functional_call writes the buffers a forward reassigns back into the dict it is given,
                    # and the next pass would start from this one's
                    output = torch.func.functional_call(model, dict(state), tuple(inputs), dict(keywords), strict=False)
            finally:
                mode.tracker = None
        if repeats is not None and repeats.differentiated:
            raise _Differentiated("the forward differentiated through a replayed block")  # whatever it caught
        workspaces = {storage_key(t) for ref in tracker.workspaces if (t := ref()) is not None}
        result = _Pass(
            saved.alive(exclude | workspaces), tracker.peak, tracker.peak_path, tracker.largest, set(tracker.ops)
        )
        del output
        return result
    except (KeyboardInterrupt, ArchauditError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's forward: SystemExit included
        if repeats is not None and repeats.differentiated:
            raise _Differentiated("the forward differentiated through a replayed block") from None
        where = stack[-1] if stack else ""
        kind = type(dict(model.named_modules()).get(where, model)).__name__
        shapes = ", ".join(
            ["x".join(map(str, t.shape)) for t in inputs]
            + [f"{k}={'x'.join(map(str, t.shape))}" for k, t in keywords.items()]
        )
        on = "fake CPU" if state is not None else "zero CPU"
        raise ForwardError(
            f"memory pass on {on} inputs [{shapes}] failed in module {where or '(root)'!r} ({kind}): {one_line(exc)}"
        ) from None
    finally:
        tracker.close()
        for handle in handles:
            handle.remove()
        kept.restore()
        for module, training in modes:  # by train(), top down: a module's own train() runs as it would
            module.train(training)


# --- KV cache --------------------------------------------------------------------------------------------------


def _config_value(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def kv_cache_layout(model: nn.Module, tokens: int, element_size: int) -> KVCache:
    """The KV cache of ``tokens`` cached tokens (batch x sequence length) for a decoder: from a Hugging Face
    ``model.config`` (``num_hidden_layers``, ``num_key_value_heads`` else ``num_attention_heads``, ``head_dim``
    else ``hidden_size // num_attention_heads``), else from the self-attention of its ``nn.TransformerDecoderLayer``
    modules; else :class:`MemorySpecError`."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        raise MemorySpecError(f"kv_cache_tokens={tokens!r}: expected a positive number of tokens")
    config = getattr(model, "config", None)
    if config is not None:
        config = getattr(config, "text_config", None) or config
        layers = _config_value(config, "num_hidden_layers", "n_layer", "num_layers")
        heads = _config_value(config, "num_attention_heads", "n_head")
        kv_heads = _config_value(config, "num_key_value_heads") or heads
        hidden = _config_value(config, "hidden_size", "n_embd", "d_model")
        head_dim = _config_value(config, "head_dim") or (hidden // heads if hidden and heads else None)
        if layers and kv_heads and head_dim:
            return KVCache(layers, kv_heads, head_dim, tokens, element_size, f"{type(config).__name__}")
        raise MemorySpecError(
            f"kv_cache_tokens: {type(model).__name__}.config ({type(config).__name__}) lacks the layer count, "
            f"attention heads or head size (layers={layers}, kv_heads={kv_heads}, head_dim={head_dim})"
        )
    attention = [m.self_attn for m in model.modules() if isinstance(m, nn.TransformerDecoderLayer)]
    if attention:
        first = attention[0]
        return KVCache(
            len(attention), first.num_heads, first.head_dim, tokens, element_size, "nn.TransformerDecoderLayer"
        )
    raise MemorySpecError(
        f"kv_cache_tokens: no decoder layout found in {type(model).__name__}: it has no Hugging Face .config and "
        "no nn.TransformerDecoderLayer"
    )


# --- the audit -------------------------------------------------------------------------------------------------


def _label(tensor: torch.Tensor) -> str:
    return str(InputSpec(tuple(tensor.shape), tensor.dtype))


@dataclass
class _Setting:
    """Where passes run: the mode, the model they call, the fake weights swapped in (``None`` on the CPU, whose zero
    copy holds its own) and the weights' storages."""

    mode: _FakeCPU | _RealCPU
    model: nn.Module
    state: dict[str, torch.Tensor] | None
    exclude: set[int]


MEASURED_ON = ("auto", "cpu", "fake")


class MemoryMeter:
    """A model's stand-in weights, made once, and its memory passes at any inputs: what :func:`audit_memory` runs
    once and ``memory --vary`` at every size (the parameter walk, the copies and their weights are the same at each).
    The caller's model is not touched.

    ``on="auto"`` measures a small model on small inputs (:func:`archaudit.trace.trace_device`) on a zero CPU copy,
    with the CPU's real kernels, and anything else on fake CPU tensors over meta storage, which take the CPU's
    kernel choices without allocating (``"cpu"`` or ``"fake"`` force one). The figures are the same on both (the
    property tests hold them equal); a zero CPU copy spares the fake mode's work per op. The fake mode reads only
    dynamo's configuration, loaded alone (:func:`archaudit.trace.lend_dynamo_config`), so it imports
    ``torch._dynamo`` only for a forward that hands it a tensor it did not make (``torch.tensor`` of data, a plain
    tensor attribute), whose conversion torch does with dynamo's help.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        optimizer: Optimizer | str = "adam",
        precision: Precision | str = "fp32",
        registry: FormulaRegistry = REGISTRY,
        on: str = "auto",
        replay: bool = True,
    ) -> None:
        if on not in MEASURED_ON:
            raise ValueError(f"{on=}: one of {', '.join(MEASURED_ON)}")
        self.model, self.on, self.replay = model, on, replay
        self.optimizer, self.precision = parse_optimizer(optimizer), parse_precision(precision)
        params = audit_params(model, registry=registry)  # refuses lazy modules; weights per path, ties once
        self.built_on = model_device(model)
        self.static = self._static(params)
        self._settings: dict[str, _Setting] = {}
        self._chosen: str | None = None

    def _setting(self, kind: str) -> _Setting:
        if kind not in self._settings:
            if kind == "cpu":
                twin = on_cpu(self.model)
                weights = {storage_key(t) for t in (*twin.parameters(), *twin.buffers())}
                self._settings[kind] = _Setting(_RealCPU(), twin, None, weights)
            else:
                lend_dynamo_config()
                mode = _FakeCPU()
                spare_dynamo()  # the fake mode's dispatch and the meta kernels under it are dynamo-disabled functions
                # Shapes, dtypes, ties and requires_grad are read off the caller's model: ``.to("meta")`` gives each
                # path of a tied tensor its own copy, which would count it twice and run the passes with two
                # tensors where there is one.
                memo: dict[int, torch.Tensor] = {}
                with mode:
                    state = {
                        name: _fake_copy(t, memo)
                        for name, t in (
                            *self.model.named_parameters(remove_duplicate=False),
                            *self.model.named_buffers(remove_duplicate=False),
                        )
                    }
                weights = {storage_key(t) for t in state.values()}
                self._settings[kind] = _Setting(mode, on_meta(self.model), state, weights)
        return self._settings[kind]

    def _kind(self, originals: Sequence[torch.Tensor]) -> str:
        """Where this meter's passes run: ``on`` when forced, else chosen at the first pass and kept (a fit over
        sizes measures every size in one place), fake from the first CPU pass that had to fall back."""
        if self.on != "auto":
            return self.on
        if self._chosen is None:
            self._chosen = "cpu" if trace_device(self.model, originals) == "cpu" else "fake"
        return self._chosen

    def _passes(
        self,
        inputs: Sequence[torch.Tensor | InputSpec],
        keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None,
        grads: Sequence[bool],
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], str, list[_Pass]]:
        """The passes (with gradients where ``grads`` says) on ``inputs``, and where they ran. A CPU pass that reads
        a value (``.item()``, a boolean mask: :class:`archaudit.trace.ValueGuard`) or fails is run again, with every
        later pass of this meter, on fake tensors, which measure without values or fail saying so."""
        originals, keyword_originals, kind, stand_ins, named = self._inputs(inputs, keyword_inputs)
        if kind == "cpu":
            guard = ValueGuard()
            try:
                with guard:
                    found = [self._pass(kind, stand_ins, named, grad=grad) for grad in grads]
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception:  # the fake passes below are the authority: they raise what is wrong
                if self.on == "cpu":  # forced: the CPU's own error
                    raise
                found = []
            if found and not guard.found:
                return originals, keyword_originals, kind, found
            if self.on == "cpu":
                raise ForwardError(f"memory pass on zero CPU inputs read values ({guard.found}): measure it on fake")
            self._chosen = "fake"
            originals, keyword_originals, kind, stand_ins, named = self._inputs(inputs, keyword_inputs)
        return originals, keyword_originals, kind, [self._pass(kind, stand_ins, named, grad=g) for g in grads]

    def _static(self, params: Any) -> tuple[tuple[str, nn.Module, ModuleMemory], ...]:
        """Per module path: what it holds whatever the inputs (weights, buffers, gradients, optimizer state)."""
        seen: set[int] = set()
        found = []
        for (path, module), walked in zip(module_paths(self.model), params.records, strict=True):
            gradients = state_bytes = 0
            for p in module._parameters.values():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                if p.requires_grad:
                    gradients += p.numel() * p.element_size()
                    state_bytes += optimizer_state_bytes(self.optimizer, p.numel(), p.element_size())
            record = ModuleMemory(
                path,
                type(module).__name__,
                walked.param_bytes,
                walked.buffer_bytes,
                gradients,
                state_bytes,
                activations=0,
                saved_tensors=0,
            )
            found.append((path, module, record))
        return tuple(found)

    @property
    def resident(self) -> int:
        """Weights + buffers + gradients + optimizer state: a training step's bytes before any activation."""
        return sum(r.total for _, _, r in self.static)

    @property
    def weights_and_buffers(self) -> int:
        return sum(r.weights + r.buffers for _, _, r in self.static)

    def _inputs(
        self,
        inputs: Sequence[torch.Tensor | InputSpec],
        keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None,
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], str, list[torch.Tensor], dict[str, torch.Tensor]]:
        """The inputs as meta tensors (for their labels), where the passes run, and their stand-ins there."""
        originals = [i.meta_tensor() if isinstance(i, InputSpec) else i for i in inputs]
        keyword_originals = {
            k: v.meta_tensor() if isinstance(v, InputSpec) else v for k, v in (keyword_inputs or {}).items()
        }
        kind = self._kind([*originals, *keyword_originals.values()])
        if kind == "cpu":
            stand_ins = zero_tensors(originals)
            named = dict(zip(keyword_originals, zero_tensors(list(keyword_originals.values())), strict=True))
            return originals, keyword_originals, kind, stand_ins, named
        mode = self._setting(kind).mode
        memo: dict[int, torch.Tensor] = {}
        with mode:
            fake_inputs = [_fake_copy(t, memo) for t in originals]
            fake_keywords = {k: _fake_copy(t, memo) for k, t in keyword_originals.items()}
        return originals, keyword_originals, kind, fake_inputs, fake_keywords

    def _pass(self, kind: str, inputs: list[torch.Tensor], keywords: dict[str, torch.Tensor], *, grad: bool) -> _Pass:
        setting = self._setting(kind)
        if kind == "fake":
            spare_dynamo()  # any imported since the fake weights were made
        arguments = (setting.mode, setting.model, setting.state, inputs, keywords, setting.exclude)
        try:
            return _run(*arguments, grad=grad, precision=self.precision, replay=self.replay)
        except _Differentiated:  # the forward differentiated through a replayed block: every call run
            return _run(*arguments, grad=grad, precision=self.precision, replay=False)

    def training_bytes(
        self,
        inputs: Sequence[torch.Tensor | InputSpec],
        keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
    ) -> tuple[int, int]:
        """(activations saved for backward, training peak) of a step on ``inputs``: the grad-enabled pass only."""
        _, _, _, (train,) = self._passes(inputs, keyword_inputs, (True,))
        saved = sum(size for size, _ in train.saved.values())
        return saved, _training_peak(self.resident, train.peak, saved, train.largest)

    def inference_bytes(
        self,
        inputs: Sequence[torch.Tensor | InputSpec],
        keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
    ) -> int:
        """The inference peak on ``inputs`` without a KV cache: the no-grad pass only."""
        _, _, _, (infer,) = self._passes(inputs, keyword_inputs, (False,))
        return self.weights_and_buffers + infer.peak

    def audit(
        self,
        inputs: Sequence[torch.Tensor | InputSpec],
        keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
        *,
        kv_cache_tokens: int | None = None,
    ) -> MemoryAudit:
        """Both passes on ``inputs``, as :func:`audit_memory` describes."""
        originals, keyword_originals, kind, (train, infer) = self._passes(inputs, keyword_inputs, (True, False))

        activations: dict[str, list[int]] = {}
        for size, path in train.saved.values():
            entry = activations.setdefault(path, [0, 0])
            entry[0] += size
            entry[1] += 1
        visited: set[int] = set()
        records = []
        for path, module, record in self.static:
            # a module registered at several paths is charged its saved activations at its first path, as the
            # hooks do
            saved, count = activations.get(path, [0, 0]) if id(module) not in visited else (0, 0)
            visited.add(id(module))
            records.append(dataclasses.replace(record, activations=saved, saved_tensors=count))

        kv = None
        if kv_cache_tokens is not None:
            dtype = _AUTOCAST_DTYPE.get(self.precision)
            if dtype is None:
                dtype = next((p.dtype for p in self.model.parameters() if p.is_floating_point()), torch.float32)
            element_size = torch.empty((), dtype=dtype, device="meta").element_size()
            kv = kv_cache_layout(self.model, kv_cache_tokens, element_size)

        notes = [
            "measured on a zero CPU copy, with the CPU's kernels"
            if kind == "cpu"
            else "kernel choices and autocast policy are the CPU's (fake CPU tensors over meta storage)"
        ]
        if train.ops & _ONEDNN_RNN:
            notes.append("an RNN ran on oneDNN: its run-time workspace, of a size oneDNN picks per CPU, counts 0")
        if self.optimizer in (Optimizer.ADAM, Optimizer.ADAMW):
            notes.append("optimizer state: exp_avg and exp_avg_sq at each parameter's dtype, plus a 4-byte step")
        labels = tuple(_label(t) for t in originals) + tuple(f"{k}={_label(t)}" for k, t in keyword_originals.items())
        return MemoryAudit(
            model_type=type(self.model).__name__,
            inputs=labels,
            optimizer_name=self.optimizer,
            precision=self.precision,
            records=tuple(records),
            forward_peak=train.peak,
            largest_activation=train.largest,
            inference_activations=infer.peak,
            inference_peak_module=infer.peak_path,
            kv_cache=kv,
            built_on=self.built_on,
            notes=tuple(notes),
            measured_on=kind,
        )


def audit_memory(
    model: nn.Module,
    inputs: Sequence[torch.Tensor | InputSpec],
    *,
    keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
    optimizer: Optimizer | str = "adam",
    precision: Precision | str = "fp32",
    kv_cache_tokens: int | None = None,
    registry: FormulaRegistry = REGISTRY,
    on: str = "auto",
) -> MemoryAudit:
    """Bytes of a training step of ``model`` on ``inputs`` (tensors or :class:`InputSpec` shapes; ``keyword_inputs``
    passed by name) with ``optimizer`` at ``precision``, and of inference, as the module docstring defines them.

    The passes run on a zero CPU copy for a small model and on fake CPU tensors over meta storage, which allocate
    nothing, for a large one (``on``: :class:`MemoryMeter`); the caller's model is not touched.
    ``kv_cache_tokens`` (batch x sequence length) adds a decoder's KV cache to the inference peak. Raises
    :class:`MemorySpecError` for an unknown optimizer or precision or an undetectable KV cache,
    :class:`ForwardError` when the forward fails.
    """
    meter = MemoryMeter(model, optimizer=optimizer, precision=precision, registry=registry, on=on)
    return meter.audit(inputs, keyword_inputs, kv_cache_tokens=kv_cache_tokens)


__all__ = [
    "KVCache",
    "MemoryAudit",
    "MemoryMeter",
    "MemorySpecError",
    "ModuleMemory",
    "Optimizer",
    "Precision",
    "audit_memory",
    "kv_cache_layout",
    "optimizer_state_bytes",
    "parse_optimizer",
    "parse_precision",
    "storage_bytes",
    "storage_key",
]
