"""The records every audit is made of: frozen dataclasses of plain numbers, strings and enums.

Nothing here computes from a model: the walker (:mod:`archaudit.walker`) fills the parameter records, the MAC
audit (:mod:`archaudit.macs`) the FLOPs records, and renderers only format them.

MAC counts, and the convention, stated once: **MACs** (multiply-accumulates of weight and attention products) are
the unit; **FLOPs = 2 x MACs**. Work that is not a multiply-accumulate of that kind is counted in its own named column
and never mixed into MACs, so that each other tool's convention can be rebuilt from the columns:

``bias``         one addition per output element per bias vector;
``norm``         elements normalised (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm);
``activation``   elements through a non-linearity (including gate non-linearities inside RNN cells);
``softmax``      elements through a softmax (attention scores, Softmax layers).

Not counted anywhere: residual additions, RNN gate products, pooling windows, attention's 1/sqrt(d) scaling,
dropout masks, copies and reshapes.

Every module ends in one outcome per audit, decided by the work rather than by its class: ``formula`` (a layer rule
counted it and, for parameters, agreed with ``numel()``), ``direct`` (parameters it holds itself, no rule needed:
``numel()`` counts them exactly), ``ops`` (no MAC rule; its own aten ops were counted op by op from the trace),
``zero`` (nothing to count), or ``unsupported`` (work that nothing counted, named: the ops, or the formula that
disagrees).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from math import prod
from typing import Any

COLUMNS = ("macs", "bias", "norm", "activation", "softmax")


@dataclass(frozen=True)
class MacCount:
    macs: int = 0
    bias: int = 0
    norm: int = 0
    activation: int = 0
    softmax: int = 0

    @property
    def flops(self) -> int:
        """2 x MACs: the convention of FlopCounterMode and of most papers."""
        return 2 * self.macs

    def __add__(self, other: MacCount) -> MacCount:
        return MacCount(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scaled(self, factor: int) -> MacCount:
        return MacCount(*(getattr(self, f.name) * factor for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ZERO = MacCount()

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Call:
    """One forward call of one module, as shapes: what MAC formulas read (never tensors)."""

    args: tuple[Any, ...]
    """Per positional argument: a shape tuple for a tensor, a :class:`Packed` for a PackedSequence, else None."""
    kwargs: tuple[tuple[str, Any], ...]
    outputs: tuple[Shape, ...]
    training: bool = False
    grad_enabled: bool = False

    def arg(self, index: int, name: str | None = None) -> Any:
        """Positional argument ``index``, or keyword ``name`` when it was passed by keyword."""
        if index < len(self.args):
            return self.args[index]
        if name is not None:
            for key, value in self.kwargs:
                if key == name:
                    return value
        return None

    @property
    def input(self) -> Shape:
        first = self.arg(0)
        if not isinstance(first, tuple):
            raise ValueError(f"the first argument is not a tensor ({first!r})")
        return first

    @property
    def output(self) -> Shape:
        return self.outputs[0]


@dataclass(frozen=True)
class Packed:
    """A PackedSequence, as shapes: its data shape and the real number of sequences per time step."""

    data: Shape
    batch_sizes: tuple[int, ...]


def numel(shape: Shape) -> int:
    return prod(shape)


class Status(str, enum.Enum):
    FORMULA = "formula"
    DIRECT = "direct"
    """Parameters: owned by the module itself with no formula needed, counted exactly by ``numel()``."""
    OPS = "ops"
    """MACs: no rule; every op of its own is one archaudit counts (FlopCounterMode's formulas, the columns)."""
    ZERO = "zero"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class ModuleRecord:
    """One module path of the model, with plain numbers only."""

    name: str
    """Qualified path (``""`` for the root module)."""
    type: str
    """Class name, e.g. ``"Linear"``."""
    type_path: str
    """Importable class path, e.g. ``"torch.nn.modules.linear.Linear"``."""
    depth: int
    leaf: bool
    own_params: int
    """Elements of the parameters this module holds itself (``recurse=False``), shared ones included."""
    params: int
    """Elements counted at this path: ``own_params`` less tensors already counted at an earlier path."""
    trainable: int
    frozen: int
    param_bytes: int
    buffers: int
    buffer_bytes: int
    status: Status
    family: str | None = None
    """Formula family (``"linear"``, ``"recurrent"`` ...) or ``"zero"``; None when unsupported without one."""
    formula: str | None = None
    """The formula's arithmetic for this module, e.g. ``"256*128 + 128"``."""
    formula_params: int | None = None
    """The formula's value: parameters of this module and all its children."""
    subtree_params: int | None = None
    """``numel()`` of this module and all its children, each tensor once (the formula's oracle)."""
    shared: tuple[str, ...] = ()
    """Local names of this module's parameters that are also held elsewhere."""
    note: str = ""
    direct: tuple[tuple[str, Shape], ...] = ()
    """For ``direct``: the parameters it holds itself, by local name and shape (``(("gamma", (768,)),)``)."""

    @property
    def formula_agrees(self) -> bool | None:
        if self.formula_params is None:
            return None
        return self.formula_params == self.subtree_params


@dataclass(frozen=True)
class SharedTensor:
    """One tensor held at several places; counted once, at ``names[0]``."""

    names: tuple[str, ...]
    params: int
    kind: str = "parameter"  # or "buffer"


@dataclass(frozen=True)
class UnregisteredModule:
    """A module kept in a plain Python container attribute, invisible to ``.parameters()``."""

    name: str
    """Where it sits, e.g. ``"encoder.layers[0]"``."""
    type: str
    params: int
    """Parameters it would have added had it been registered (tensors registered elsewhere excluded)."""


@dataclass(frozen=True)
class ModelAudit:
    """Immutable audit of a model's parameters. Totals are functions of the records, not stored state."""

    model_type: str
    device: str
    records: tuple[ModuleRecord, ...]
    shared: tuple[SharedTensor, ...] = ()
    unregistered: tuple[UnregisteredModule, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(r.params for r in self.records)

    @property
    def trainable(self) -> int:
        return sum(r.trainable for r in self.records)

    @property
    def frozen(self) -> int:
        return sum(r.frozen for r in self.records)

    @property
    def buffers(self) -> int:
        return sum(r.buffers for r in self.records)

    @property
    def buffer_bytes(self) -> int:
        return sum(r.buffer_bytes for r in self.records)

    @property
    def param_bytes(self) -> int:
        return sum(r.param_bytes for r in self.records)

    @property
    def shared_params(self) -> int:
        """Elements that a naive per-path sum would count more than once (each extra copy)."""
        return sum(s.params * (len(s.names) - 1) for s in self.shared if s.kind == "parameter")

    @property
    def unregistered_params(self) -> int:
        return sum(u.params for u in self.unregistered)

    @property
    def unsupported(self) -> tuple[ModuleRecord, ...]:
        return tuple(r for r in self.records if r.status is Status.UNSUPPORTED)

    @property
    def direct(self) -> tuple[ModuleRecord, ...]:
        """Modules counted by ``numel()`` of the parameters they hold themselves, no formula needed."""
        return tuple(r for r in self.records if r.status is Status.DIRECT)

    @property
    def mismatches(self) -> tuple[ModuleRecord, ...]:
        """Formula-counted modules whose formula disagrees with numel(): archaudit bugs, never model facts."""
        return tuple(r for r in self.records if r.formula_agrees is False)

    @property
    def leaf_only_total(self) -> int:
        """What a counter that sums leaf modules only would report (it misses non-leaf owners)."""
        return sum(r.params for r in self.records if r.leaf)

    def record(self, name: str) -> ModuleRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no module path {name!r} in this {self.model_type} audit")

    def component(self, prefix: str) -> int:
        """Parameters counted under a module path (the path itself and every path below it)."""
        if prefix:
            self.record(prefix)  # raises KeyError naming the path when it does not exist
        return sum(r.params for r in self.records if _under(r.name, prefix))


def _under(name: str, prefix: str) -> bool:
    return not prefix or name == prefix or name.startswith(prefix + ".")


@dataclass(frozen=True)
class FlopsRecord:
    name: str
    type: str
    calls: int
    counts: MacCount
    """The module's own work, summed over its calls."""
    status: Status
    source: str
    """``"formula"``, ``"ops"`` (its own traced ops, counted op by op, for modules without a rule) or ``"none"``."""
    input_shapes: tuple[tuple[int, ...], ...] = ()
    output_shapes: tuple[tuple[int, ...], ...] = ()
    note: str = ""
    unsupported_ops: tuple[tuple[str, int], ...] = ()
    """Its own aten ops that nothing counts and that are not known to be free, with how often they ran, sorted."""

    @property
    def macs(self) -> int:
        return self.counts.macs


@dataclass(frozen=True)
class FlopsAudit:
    model_type: str
    inputs: tuple[str, ...]
    records: tuple[FlopsRecord, ...]
    flop_counter_ran: bool
    """Whether the trace recorded aten ops (it does when some module has no MAC rule of its own)."""
    built_on: str = "meta"
    """Where the audited model's tensors were (``"meta"`` or ``"cpu"``)."""
    build_note: str = ""
    """Why the model was built where it was, when the caller says (``built on the CPU: ...``)."""
    traced_on: str = "meta"
    """Where the trace ran: ``"cpu"`` (a zero copy, for a small model) or ``"meta"`` (see
    :func:`archaudit.trace.trace_device`); the counts are the same either way."""

    @property
    def counts(self) -> MacCount:
        total = MacCount()
        for r in self.records:
            total = total + r.counts
        return total

    @property
    def macs(self) -> int:
        return self.counts.macs

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def unsupported(self) -> tuple[FlopsRecord, ...]:
        return tuple(r for r in self.records if r.status is Status.UNSUPPORTED)

    @property
    def by_ops(self) -> tuple[FlopsRecord, ...]:
        """Modules without a MAC rule whose own work was counted op by op from the trace."""
        return tuple(r for r in self.records if r.status is Status.OPS)

    @property
    def unsupported_ops(self) -> dict[str, int]:
        """Over the model: each aten op that nothing counted, with how often it ran (fvcore's ``unsupported_ops``)."""
        total: dict[str, int] = {}
        for r in self.records:
            for op, count in r.unsupported_ops:
                total[op] = total.get(op, 0) + count
        return dict(sorted(total.items()))

    def record(self, name: str) -> FlopsRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no module path {name!r} in this {self.model_type} FLOPs audit")

    def component(self, prefix: str) -> MacCount:
        """Own work summed over a module path and every path below it."""
        if prefix:
            self.record(prefix)
        total = MacCount()
        for r in self.records:
            if not prefix or r.name == prefix or r.name.startswith(prefix + "."):
                total = total + r.counts
        return total
