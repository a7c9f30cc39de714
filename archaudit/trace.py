"""The trace: one forward pass, with forward hooks recording each module call as shapes.

It runs on meta tensors, where nothing is allocated and no arithmetic is done, so a model of billions of
parameters costs what a small one does; or, for a small model, on a zero CPU copy (:func:`trace_device`), whose
C++ kernels are cheaper than the Python meta kernels torch runs for many ops on meta (and whose first convolution
does not import sympy for a shape check). The shapes, and so the counts, are the same on both. Neither trace imports
``torch._dynamo`` (:func:`spare_dynamo`), nor do the memory audit's fake tensors (:func:`lend_dynamo_config`).
Optionally (``record_ops=True``) a dispatch mode records, over the same pass, every aten op and the FLOPs that
FlopCounterMode's formulas give it, charged to the innermost module call running when the op ran: so work done
by modules without a MAC rule (custom modules that call ``torch.matmul`` themselves) is still counted, labelled
as counted by those formulas, and each call's own work is a sum of its own ops, never a difference of totals
(a module reached from two paths is charged once per call, and no count can come out negative). Given the ops of
each column beside MACs (``columns``), it also counts, per call, the elements each such op produced: the
activation, normalisation, softmax and bias-add work of modules that have no rule to count it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any, TypeVar

import torch
import torch._compile
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils._python_dispatch import TorchDispatchMode

from .errors import ArchauditError, ForwardError, InputSpecError
from .records import Call, Packed
from .usercode import one_line


def _describe(value: Any) -> Any:
    if isinstance(value, PackedSequence):
        return Packed(tuple(value.data.shape), tuple(int(b) for b in value.batch_sizes.tolist()))
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return None


def _outputs(value: Any) -> tuple[tuple[int, ...], ...]:
    """The shapes of an output's tensors: a tensor, or the tensors directly in a tuple, list, dict or dataclass
    (Hugging Face's ModelOutput is both); nested containers (an LSTM's ``(h, c)``, a key/value cache) are not
    outputs of this call's own work and are left out."""
    if isinstance(value, PackedSequence):
        return (tuple(value.data.shape),)
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape),)
    if isinstance(value, Mapping):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, (tuple, list)):
        return tuple(s for item in value if isinstance(item, (torch.Tensor, PackedSequence)) for s in _outputs(item))
    return ()


@dataclass
class Capture:
    """Calls per module path, in call order; with ``record_ops``, per module path, the FLOPs (FlopCounterMode's
    formulas) and the aten ops of its own calls, children excluded."""

    calls: dict[str, list[Call]] = field(default_factory=dict)
    own_flops: dict[str, int] | None = None
    own_ops: dict[str, dict[str, int]] | None = None
    """Per module path: aten op name (``"aten.tanh"``) -> number of times its own calls ran it."""
    own_elements: dict[str, dict[str, int]] | None = None
    """Per module path: column (``"activation"``) -> elements its own calls' ops of that column produced."""
    data_dependent: str = ""
    """With ``guard``: the first op whose result depends on values (:data:`DATA_DEPENDENT_OPS`) the pass ran."""


def op_name(packet: Any) -> str:
    """An op overload packet's name as archaudit writes it: ``"aten.addmm"``."""
    return f"aten.{packet.__name__}" if packet.__module__.endswith(".aten") else str(packet)


# Where a column's elements are not the op's output: fused attention produces the output, not the score matrix, so
# its softmax elements are the query rows times the key length.
def _elements(name: str, args: tuple[Any, ...], out: Any) -> int:
    if "scaled_dot_product" in name and len(args) >= 2 and all(isinstance(a, torch.Tensor) for a in args[:2]):
        return int(prod(args[0].shape[:-1]) * args[1].shape[-2])
    first = out[0] if isinstance(out, (tuple, list)) and out else out
    return int(first.numel()) if isinstance(first, torch.Tensor) else 0


_KEPT_WHOLE = frozenset(
    {
        "aten.native_batch_norm",
        "aten._native_batch_norm_legit",
        "aten._native_batch_norm_legit_no_training",
        "aten._native_batch_norm_legit_functional",
        "aten.native_layer_norm",
        "aten.native_group_norm",
    }
)
"""Ops run as they are rather than decomposed: their decompositions hold no product that FlopCounterMode counts, and
the norm column counts their output's elements at the op itself. Decomposing them would run torch's Python
references for every element-wise step."""


# TorchDispatchMode.__init_subclass__ and __init__ carry no annotations in torch.
class DispatchMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """A ``TorchDispatchMode`` whose dispatch torch leaves unwrapped. torch wraps the ``__torch_dispatch__`` of a mode
    that skips dynamo (its default) to disable it, importing ``torch._dynamo`` at the mode's first op: about as long
    as importing torch, for modes that never run under ``torch.compile``."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


# torch wraps many of its Python functions (every elementwise reference behind a meta kernel, every dispatch mode's
# ``__torch_dispatch__``) in ``torch._disable_dynamo``, whose wrapper imports ``torch._dynamo`` at its first call
# (about as long as importing torch) to build the function's dynamo-disabled twin, then caches that twin on the
# function as ``__dynamo_disable``. While ``torch._dynamo`` is not imported nothing can be compiling, so the twin
# is the function itself: :func:`spare_dynamo` caches a twin that calls it, and takes it back the moment anything
# imports ``torch._dynamo`` (``torch.compile``, a fake tensor mode handed a tensor it did not make), before
# dynamo's first line runs. Should dynamo arrive by another way (a finder ahead of archaudit's, a module put in
# ``sys.modules``), each twin sees it at its next call and hands over to torch's own.
_TWIN = "__dynamo_disable"
_WRAPPER_CODE = torch._compile._disable_dynamo(lambda: None).__code__
_FREE = _WRAPPER_CODE.co_freevars
_WRAPPED_AT = _FREE.index("fn") if "fn" in _FREE else -1
_RECURSIVE_AT = _FREE.index("recursive") if "recursive" in _FREE else -1
_spared: list[Any] = []
_scanned_modules = 0


class _DynamoImportWatch(importlib.abc.MetaPathFinder):
    """Takes every cached twin back when ``torch._dynamo`` is first imported; finds nothing itself (it stays on
    ``sys.meta_path``: removing itself there would make the import skip the next finder)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname == "torch._dynamo":
            take_back_dynamo()


_WATCH = _DynamoImportWatch()


def _twin(fn: Callable[..., Any], recursive: bool) -> Callable[..., Any]:
    """``fn`` as its own dynamo-disabled twin while ``torch._dynamo`` is not imported; torch's twin once it is."""

    def twin(*args: Any, **kwargs: Any) -> Any:
        if "torch._dynamo" in sys.modules:  # imported without the watch seeing it: torch's own twin from now on
            import torch._dynamo

            disabled = torch._dynamo.disable(fn, recursive, wrapping=False)  # type: ignore[no-untyped-call]
            setattr(fn, _TWIN, disabled)
            return disabled(*args, **kwargs)
        return fn(*args, **kwargs)

    twin.archaudit_spared = True  # type: ignore[attr-defined]
    return twin


def spared(fn: Any) -> bool:
    """Whether ``fn`` holds a twin :func:`spare_dynamo` gave it."""
    return getattr(vars(fn).get(_TWIN) if hasattr(fn, "__dict__") else None, "archaudit_spared", False) is True


def take_back_dynamo() -> None:
    """Undo :func:`spare_dynamo`: each function it gave a twin has it removed, so its next call imports
    ``torch._dynamo`` and disables it as torch intends."""
    while _spared:
        fn = _spared.pop()
        if spared(fn):
            delattr(fn, _TWIN)


def spare_dynamo() -> None:
    """Let torch's dynamo-disabled functions run without importing ``torch._dynamo`` while nothing has imported it
    (see above). Idempotent, and cheap once done: it looks again only when modules were imported since. A function
    that takes no attribute (a bound method) is left as torch made it."""
    global _scanned_modules
    if "torch._dynamo" in sys.modules or min(_WRAPPED_AT, _RECURSIVE_AT) < 0 or len(sys.modules) == _scanned_modules:
        return
    _scanned_modules = len(sys.modules)
    if _WATCH not in sys.meta_path:
        sys.meta_path.insert(0, _WATCH)
    for wrapper in gc.get_referrers(_WRAPPER_CODE):
        if getattr(wrapper, "__code__", None) is not _WRAPPER_CODE or not wrapper.__closure__:
            continue
        fn = wrapper.__closure__[_WRAPPED_AT].cell_contents
        if getattr(fn, _TWIN, None) is not None:
            continue
        try:
            setattr(fn, _TWIN, _twin(fn, bool(wrapper.__closure__[_RECURSIVE_AT].cell_contents)))
        except (AttributeError, TypeError):  # a bound method or a builtin: it keeps torch's lazy import
            continue
        _spared.append(fn)


class _DynamoStandIn(types.ModuleType):
    """``torch._dynamo`` while nothing has imported it: its ``config`` (dynamo's own module, loaded alone), and any
    other name from the real package, imported at that first use (as ``torch``'s lazy ``__getattr__`` would)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("torch._dynamo"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        """Its ``config`` is its own; any other name is set on the real package, imported then, which replaces
        the stand-in as ``torch._dynamo``: nothing set here is lost (``from torch import _dynamo`` binds the
        stand-in itself, for good)."""
        if name == "config":
            super().__setattr__(name, value)
        else:
            setattr(importlib.import_module("torch._dynamo"), name, value)


def lend_dynamo_config() -> None:
    """Let a fake tensor mode run without importing ``torch._dynamo``: ``FakeTensorMode`` reads two flags and a profile
    table of dynamo's configuration, and importing it imports the whole package (about as long as importing torch,
    and longer than a training pass on fake tensors of a 6.4-billion-parameter stack). ``torch._dynamo.config``, a
    module of settings that imports nothing of dynamo, is loaded alone under its own name, and ``torch._dynamo`` is
    a stand-in holding it; anything else asked of the stand-in imports the real package, whose ``from . import
    config`` then finds this same module in ``sys.modules``: one configuration, loaded once, as dynamo loads it.
    Nothing is done once dynamo is imported, or when the configuration is not where torch keeps it."""
    if "torch._dynamo" in sys.modules or "_dynamo" in vars(torch):
        return
    name = "torch._dynamo.config"
    found = sys.modules.get(name)
    if found is None:
        where = os.path.join(os.path.dirname(torch.__file__), "_dynamo")
        spec = importlib.machinery.PathFinder.find_spec(name, [where])
        if spec is None or spec.loader is None:
            return
        found = importlib.util.module_from_spec(spec)
        sys.modules[name] = found
        try:
            spec.loader.exec_module(found)
        except BaseException as exc:
            del sys.modules[name]
            if isinstance(exc, Exception):
                return  # torch's own way, then: the fake mode imports dynamo
            raise
    stand_in = _DynamoStandIn("torch._dynamo")
    stand_in.config = found
    torch._dynamo = stand_in


class _OpRecorder(DispatchMode):
    """Charges every aten op to the innermost module call on ``stack`` (the root's path, ``""``, outside any).

    FLOPs come from FlopCounterMode's own formula table, and ops without a formula are decomposed first exactly as
    FlopCounterMode decomposes them, so the figures agree with it op for op.
    """

    def __init__(
        self,
        stack: list[str],
        flops: dict[str, int],
        ops: dict[str, dict[str, int]],
        elements: dict[str, dict[str, int]],
        columns: Mapping[str, str],
        applied: Mapping[str, str],
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in torch
        from torch.utils.flop_counter import flop_registry

        aten = torch.ops.aten
        # CPU attention's fused kernel does the products FlopCounterMode counts for the CUDA flash kernel (its
        # arguments begin with query, key, value alike); FlopCounterMode has no entry for it, and on meta the math
        # path's bmm are counted instead: the same MACs, so a CPU trace counts what a meta one does.
        self.registry = {
            **flop_registry,
            aten._scaled_dot_product_flash_attention_for_cpu: flop_registry[aten._scaled_dot_product_flash_attention],
        }
        self.stack, self.flops, self.ops, self.elements = stack, flops, ops, elements
        self.columns, self.applied = columns, applied
        # Results of ``applied`` ops (a norm's rsqrt) waiting for the element-wise mul that applies them, by id
        # (tensors compare element-wise, so they are not set members), with a weak reference to check identity.
        self.pending: dict[int, tuple[weakref.ref[torch.Tensor], str]] = {}

    def _count(self, path: str, column: str, elements: int) -> None:
        own = self.elements.setdefault(path, {})
        own[column] = own.get(column, 0) + elements

    def _applied_column(self, args: tuple[Any, ...]) -> str | None:
        for a in args:
            found = self.pending.get(id(a)) if isinstance(a, torch.Tensor) else None
            if found is not None and found[0]() is a:
                return found[1]
        return None

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if isinstance(func, torch._ops.HigherOrderOperator):
            return NotImplemented
        if (
            func not in self.registry
            and func is not torch.ops.prim.device.default
            and op_name(func._overloadpacket) not in _KEPT_WHOLE
        ):
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        path = self.stack[-1] if self.stack else ""
        packet = func._overloadpacket
        name = op_name(packet)
        own = self.ops.setdefault(path, {})
        own[name] = own.get(name, 0) + 1
        column = self.columns.get(name)
        if column is not None:
            self._count(path, column, _elements(name, args, out))
        elif name in self.applied and isinstance(out, torch.Tensor):
            # rsqrt(var + eps) has the reduced shape: the elements normalised are those it is multiplied into
            self.pending[id(out)] = (weakref.ref(out), self.applied[name])
        elif name == "aten.mul" and isinstance(out, torch.Tensor):
            applied = self._applied_column(args)
            if applied is not None:
                self._count(path, applied, out.numel())
        formula = self.registry.get(packet)
        if formula is not None:
            self.flops[path] = self.flops.get(path, 0) + int(formula(*args, **kwargs, out_val=out))
        return out


def model_device(model: nn.Module) -> str:
    """``"meta"`` when every parameter and buffer is on meta (a model with none has nothing to copy, so it counts as
    meta too); else the device of its first tensor that is not."""
    for tensor in (*model.parameters(), *model.buffers()):
        if not tensor.is_meta:
            return str(tensor.device)
    return "meta"


def on_meta(model: nn.Module) -> nn.Module:
    """``model`` itself when every tensor is on meta; else a meta copy (the caller's model is not touched) in which
    a tensor held at several paths (tied weights) is still one tensor: each parameter and buffer gets its meta
    stand-in once, and the copy is made around them (``.to("meta")`` would give each path its own)."""
    if model_device(model) == "meta":
        return model
    memo: dict[int, Any] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        if nn.parameter.is_lazy(tensor) or id(tensor) in memo:
            continue  # a lazy module's placeholder is copied as it is (the walker refuses it by name)
        stand_in = torch.empty_like(tensor, device="meta")
        memo[id(tensor)] = (
            nn.Parameter(stand_in, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else stand_in
        )
    return _deepcopy(model, memo)


def _deepcopy(model: nn.Module, memo: dict[int, Any]) -> nn.Module:
    """``copy.deepcopy(model, memo)``, and each copied module's attributes as the original's.

    A ``__setstate__`` may add what it takes for a missing attribute of an old pickle: ``nn.TransformerDecoderLayer``
    sets ``activation = F.relu`` when ``activation`` is not in the state, which it never is when the activation is a
    module (it is a child, in ``_modules``), and the plain attribute then shadows the child in the copy.
    """
    copied = copy.deepcopy(model, memo)
    for original, twin in zip(model.modules(), copied.modules(), strict=True):
        for name in set(vars(twin)) - set(vars(original)):
            if name in twin._modules:
                del twin.__dict__[name]
    return copied


CPU_TRACE_MAX_BYTES = 256 * 2**20
"""A model whose parameters and buffers take at most this many bytes is traced on the CPU (:func:`trace_device`)."""
CPU_TRACE_MAX_INPUT_ELEMENTS = 2**20
"""... whose inputs hold at most this many elements in all ..."""
CPU_TRACE_MAX_WORK = 2**36
"""... and whose parameter count times its input elements is at most this: a bound on the multiply-adds the CPU
forward computes, loose by about the input's width (a Linear's MACs are its input elements times its outputs, its
weights its inputs times its outputs), so that a small model on a large input, whose real forward would take long,
goes to meta. The large AMNL (12.4M parameters, 17 features) is traced on the CPU up to a window of 327."""
TOKEN_WORK = 16
"""... where an element of an input that holds ids (integers or booleans: token ids, masks) counts as this many: a
token model's MACs are about its weights times its tokens, so the bound is tight there, and without this a model of
55M parameters on 1,024 tokens (48 billion MACs: 0.7 s on two cores) would run on the CPU where its meta trace
takes 0.14 s. With it, a token model runs on the CPU up to about 2**32 MACs."""


def _has_width(spec: Any) -> bool:
    """Whether an input (a tensor or a shape with a dtype) holds values with a width, floating point or complex, as
    opposed to ids (integers, booleans); one without a dtype counts as values."""
    dtype = getattr(spec, "dtype", None)
    return not isinstance(dtype, torch.dtype) or dtype.is_floating_point or dtype.is_complex


def trace_device(model: nn.Module, inputs: Sequence[Any]) -> str:
    """Where a trace of ``model`` on ``inputs`` (tensors or shapes with ``.shape``) runs: ``"cpu"`` for a small model
    on small inputs, ``"meta"`` otherwise.

    The counts are the same on both (the property tests hold them equal); only the cost differs. Many ops on meta
    tensors run Python meta kernels (and a first convolution imports sympy for a shape check), where a small CPU
    forward on zero weights runs C++ kernels; a large model on meta allocates nothing, where a CPU copy would
    allocate its weights. A model that is neither on the CPU nor on meta (a GPU), or
    that holds a tensor that is not a plain dense one, is traced on meta.
    """
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if nn.parameter.is_lazy(tensor) or tensor.device.type not in ("cpu", "meta") or tensor.layout != torch.strided:
            return "meta"
        total += tensor.numel() * tensor.element_size()
        if total > CPU_TRACE_MAX_BYTES:
            return "meta"
    weights = sum(p.numel() for p in model.parameters())
    sizes = [(prod(tuple(i.shape)), _has_width(i)) for i in inputs]
    elements = sum(n for n, _ in sizes)
    work = weights * sum(n if wide else n * TOKEN_WORK for n, wide in sizes)
    small = elements <= CPU_TRACE_MAX_INPUT_ELEMENTS and work <= CPU_TRACE_MAX_WORK
    return "cpu" if small else "meta"


def on_cpu(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` with every parameter and buffer zero, as :func:`on_meta` copies it (ties kept, the
    caller's model not touched). Zeros, not uninitialised memory: a forward that branches on values takes the same
    path on every run and every machine."""
    memo: dict[int, Any] = {}
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) in memo:
            continue
        stand_in = torch.zeros(tuple(tensor.shape), dtype=tensor.dtype, device="cpu")
        memo[id(tensor)] = (
            nn.Parameter(stand_in, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else stand_in
        )
    return _deepcopy(model, memo)


T = TypeVar("T")


def cpu_else_meta(model: nn.Module, where: str, run: Callable[[nn.Module, str], T | None]) -> tuple[str, nn.Module, T]:
    """``run(copy, device)`` on a zero CPU copy of ``model`` (:func:`on_cpu`) when ``where`` is ``"cpu"``, and on
    a meta copy (:func:`on_meta`) when ``where`` is ``"meta"`` or the CPU run fails or answers ``None`` (its guard
    saw a value read): the meta run is the authority, and raises what is wrong. Returns where it ran, the copy and
    the answer. ``run`` makes its own stand-in inputs for ``device``, and guards the CPU run itself."""
    if where == "cpu":
        try:
            twin = on_cpu(model)
            found = run(twin, "cpu")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - the meta run below raises what is wrong
            found = None
        if found is not None:
            return "cpu", twin, found
    twin = on_meta(model)
    spare_dynamo()
    answer = run(twin, "meta")
    if answer is None:  # an unguarded run always answers
        raise RuntimeError("a meta pass gave no answer")
    return "meta", twin, answer


DATA_DEPENDENT_OPS = frozenset(
    {
        "aten._local_scalar_dense",
        "aten.is_nonzero",
        "aten.equal",
        "aten.allclose",
        "aten.nonzero",
        "aten.argwhere",
        "aten.masked_select",
        "aten.masked_scatter",
        "aten._unique",
        "aten._unique2",
        "aten.unique_dim",
        "aten.unique_consecutive",
        "aten.repeat_interleave",
        "aten.bincount",
        "aten.histc",
        "aten.multinomial",
        "aten._assert_async",
    }
)
"""Ops whose result (a Python value, or an output's shape) depends on the values computed: a CPU trace that runs one
is not trusted to take the path any input would, and the trace is run again on meta, where the model either
counts without values or fails saying so. Indexing with a boolean mask counts as one of these."""


_VALUE_READERS = ("tolist", "numpy", "__array__", "__dlpack__")
"""Tensor methods that read values without dispatching an op: the guard wraps them while it is on."""


class ValueGuard(DispatchMode):
    """Notes the first op of :data:`DATA_DEPENDENT_OPS` a CPU pass runs, or the first value read without one
    (:data:`_VALUE_READERS`), in ``found``; it passes every op on. The RNG is forked for the pass: a CPU pass
    (dropout on zero weights) leaves the caller's random state as a meta pass would."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in torch
        self.found = ""
        self._saved: dict[str, Any] = {}
        self._rng = torch.random.fork_rng(devices=[])

    def __enter__(self) -> ValueGuard:
        self._rng.__enter__()
        for name in _VALUE_READERS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original

            def reader(
                tensor: torch.Tensor, *args: Any, _name: str = name, _original: Any = original, **kw: Any
            ) -> Any:
                if not self.found:
                    self.found = f"Tensor.{_name}"
                return _original(tensor, *args, **kw)

            setattr(torch.Tensor, name, reader)
        super().__enter__()  # type: ignore[no-untyped-call]  # unannotated in torch
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)  # type: ignore[no-untyped-call]  # unannotated in torch
        finally:
            for name, original in self._saved.items():
                setattr(torch.Tensor, name, original)
            self._saved.clear()
            self._rng.__exit__(None, None, None)

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        if not self.found:
            name = op_name(func._overloadpacket)
            if name in DATA_DEPENDENT_OPS or (
                name in ("aten.index", "aten.index_put", "aten.index_put_", "aten._index_put_impl_")
                and any(
                    isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                    for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ())
                )
            ):
                self.found = name
        return func(*args, **(kwargs or {}))


_RNN_FORWARDS = {nn.RNN: nn.RNN.forward, nn.LSTM: nn.LSTM.forward, nn.GRU: nn.GRU.forward}


def _rnn_shapes(module: nn.RNNBase, input: Any, hx: Any = None) -> Any:
    """What ``module(input)`` returns, as tensors of the right shapes on the input's device (zeros on the CPU),
    without running the recurrence.

    PyTorch runs an RNN on meta tensors through Python decompositions of every gate of every step (about a
    second and a half for the large AMNL's BiLSTM); the shapes are plain arithmetic.
    """
    directions = 2 if module.bidirectional else 1
    width = module.proj_size or module.hidden_size
    states = directions * module.num_layers

    def state(batch: tuple[int, ...], size: int) -> torch.Tensor:
        return torch.zeros((states, *batch, size), device=device, dtype=dtype)

    if isinstance(input, PackedSequence):
        dtype, device = input.data.dtype, input.data.device
        batch: tuple[int, ...] = (int(input.batch_sizes[0]),)
        output: Any = PackedSequence(
            torch.zeros((input.data.shape[0], directions * width), device=device, dtype=dtype),
            input.batch_sizes,
            input.sorted_indices,
            input.unsorted_indices,
        )
    else:
        dtype, device = input.dtype, input.device
        batch = () if input.dim() == 2 else (input.shape[0] if module.batch_first else input.shape[1],)
        output = torch.zeros((*input.shape[:-1], directions * width), device=device, dtype=dtype)
    h = state(batch, width)
    if isinstance(module, nn.LSTM):
        return output, (h, state(batch, module.hidden_size))
    return output, h


# Layers that multiply (or normalise) their input with their own floating-point weights: on the CPU their kernels
# refuse an input of another dtype, and the meta kernels do not check, so the trace checks for them.
_WEIGHT_BY_INPUT = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.RNNBase,
    nn.RNNCellBase,
    nn.MultiheadAttention,
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)


def _check_input_dtype(path: str, module: nn.Module, args: tuple[Any, ...]) -> None:
    weight = next((p for p in module.parameters(recurse=False) if p.is_floating_point()), None)
    value = args[0] if args else None
    tensor = value.data if isinstance(value, PackedSequence) else value
    if weight is None or not isinstance(tensor, torch.Tensor) or tensor.dtype == weight.dtype:
        return
    hint = " (an integer input is for token ids fed to an Embedding)" if not tensor.is_floating_point() else ""
    raise InputSpecError(
        f"module {path or '(root)'!r} ({type(module).__name__}) has {str(weight.dtype)[6:]} "
        f"weights and got an input of dtype {str(tensor.dtype)[6:]}, which its kernels refuse{hint}"
    )


@contextlib.contextmanager
def meta_autocast() -> Iterator[None]:
    """``torch.autocast(device_type="meta", ...)`` as a null context while a model runs on meta tensors.

    Models that pin a block to float32 with ``torch.autocast(device_type=x.device.type, enabled=False)`` (the
    rotary embeddings of Hugging Face's Llama, Mistral and Qwen2) fail on meta, where torch knows no autocast. On
    meta no kernel runs and nothing is cast, so the null context changes nothing that is counted. Every other
    device type gets torch's own autocast; the original is restored on exit.
    """
    original = torch.autocast

    def autocast(device_type: str, *args: Any, **kwargs: Any) -> Any:
        if device_type == "meta":
            return contextlib.nullcontext()
        return original(device_type, *args, **kwargs)

    torch.autocast = autocast  # type: ignore[assignment,misc]  # restored below
    try:
        yield
    finally:
        torch.autocast = original  # type: ignore[misc]


def capture(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    record_ops: bool = False,
    columns: Mapping[str, str] | None = None,
    applied: Mapping[str, str] | None = None,
    keyword_inputs: Mapping[str, torch.Tensor] | None = None,
    guard: bool = False,
) -> Capture:
    """Run ``model(*inputs, **keyword_inputs)`` (meta tensors, or zero CPU tensors on a zero CPU copy, as
    :func:`trace_device` chooses) once, recording every module call as shapes; with ``guard``, noting the first op
    whose result depends on values (:attr:`Capture.data_dependent`); with ``record_ops``, every aten op charged to
    the call that ran it, and the elements of each op named in ``columns`` (op name -> column) counted into its
    column; an op named in ``applied`` counts its column at the element-wise ``aten.mul`` that applies its result
    (the output's elements), not at itself.

    Stock RNN/LSTM/GRU layers return tensors of their output shapes without running their recurrence (their
    MACs come from their analytic rule, not from this pass); a subclass that overrides ``forward`` runs as is.
    """
    if any(t.device.type == "meta" for t in (*inputs, *(keyword_inputs or {}).values())):
        spare_dynamo()  # a CPU pass runs no Python meta kernel: no need to look
    paths = {id(m): name for name, m in model.named_modules()}
    result = Capture()
    stack: list[str] = []
    handles = []

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        stack.append(paths[id(module)])
        if isinstance(module, _WEIGHT_BY_INPUT):
            _check_input_dtype(paths[id(module)], module, args)

    def post_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        path = stack.pop()
        result.calls.setdefault(path, []).append(
            Call(
                args=tuple(_describe(a) for a in args),
                kwargs=tuple((k, _describe(v)) for k, v in kwargs.items()),
                outputs=_outputs(output),
                training=module.training,
                grad_enabled=torch.is_grad_enabled(),
            )
        )

    stubbed = []
    for _, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
        if _RNN_FORWARDS.get(type(module)) is type(module).forward and "forward" not in vars(module):
            module.forward = lambda input, hx=None, _m=module: _rnn_shapes(_m, input, hx)
            stubbed.append(module)
    saved_argv = sys.argv
    try:
        sys.argv = [type(model).__name__]
        # what the model prints stays off archaudit's output
        value_guard = ValueGuard() if guard else contextlib.nullcontext()
        with contextlib.redirect_stdout(sys.stderr), meta_autocast(), value_guard:
            if record_ops:
                result.own_flops, result.own_ops, result.own_elements = {}, {}, {}
                with _OpRecorder(
                    stack, result.own_flops, result.own_ops, result.own_elements, columns or {}, applied or {}
                ):
                    model(*inputs, **(keyword_inputs or {}))
            else:
                model(*inputs, **(keyword_inputs or {}))
        if isinstance(value_guard, ValueGuard):
            result.data_dependent = value_guard.found
    except (KeyboardInterrupt, ArchauditError):
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's forward: SystemExit included
        where = stack[-1] if stack else ""
        module = dict(model.named_modules()).get(where)
        kind = type(module).__name__ if module is not None else "?"
        shapes = ", ".join(
            ["x".join(map(str, t.shape)) for t in inputs]
            + [f"{k}={'x'.join(map(str, t.shape))}" for k, t in (keyword_inputs or {}).items()]
        )
        device = next((t.device.type for t in (*inputs, *(keyword_inputs or {}).values())), "meta")
        raise ForwardError(
            f"forward on {device} inputs [{shapes}] failed in module {where or '(root)'!r} ({kind}): {one_line(exc)}"
        ) from None
    finally:
        sys.argv = saved_argv
        for handle in handles:
            handle.remove()
        for module in stubbed:
            del module.forward
    return result
