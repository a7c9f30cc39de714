"""MACs per module from captured shapes: the analytic counterpart of :mod:`archaudit.walker`.

Each module's own work is counted where it is called: a module's MAC rule counts what the module does itself,
and its children are counted at their own calls (``MultiheadAttention`` counts its output projection, which it
applies without calling ``out_proj``; a ``TransformerEncoderLayer`` counts only its functional activation).

Every module ends in one status:

* ``formula``: counted by its MAC rule (found along the MRO);
* ``zero``: no rule of its own, and FlopCounterMode saw no matrix work of its own (a container);
* ``unsupported``: no rule, and work of its own that FlopCounterMode counted (``source="flop_counter"``),
  or work nobody could count. Unsupported modules are listed in every output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from . import formulas as _formulas  # noqa: F401  (registers every MAC rule)
from .capture import Capture, InputSpec, capture, meta_tensors, on_meta
from .macs import COLUMNS, MacCount
from .registry import REGISTRY, FormulaRegistry
from .walker import Status


@dataclass(frozen=True)
class FlopsRecord:
    name: str
    type: str
    calls: int
    counts: MacCount
    """The module's own work, summed over its calls."""
    status: Status
    source: str
    """``"formula"``, ``"flop_counter"`` (FlopCounterMode on meta, for modules without a rule) or ``"none"``."""
    input_shapes: tuple[tuple[int, ...], ...] = ()
    output_shapes: tuple[tuple[int, ...], ...] = ()
    flop_counter_flops: int | None = None
    """FlopCounterMode's FLOPs for this module *including* its children, when it ran."""
    note: str = ""

    @property
    def macs(self) -> int:
        return self.counts.macs


@dataclass(frozen=True)
class FlopsAudit:
    model_type: str
    inputs: tuple[str, ...]
    records: tuple[FlopsRecord, ...]
    flop_counter_ran: bool

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


def _needs_flop_counter(model: nn.Module, registry: FormulaRegistry) -> bool:
    """True when some module's own work may be invisible to the MAC rules: a type without a rule, or a subclass
    of a registered type that overrides ``forward`` (one that does not runs its base's forward, as
    ``NonDynamicallyQuantizableLinear`` runs ``Linear``'s)."""
    for _, module in model.named_modules():
        found = registry.lookup_macs(type(module))
        if found is None or (found[0] is not type(module) and type(module).forward is not found[0].forward):
            return True
    return False


def audit_macs(
    model: nn.Module,
    inputs: Sequence[torch.Tensor | InputSpec],
    *,
    registry: FormulaRegistry = REGISTRY,
    flop_counter: bool | None = None,
) -> FlopsAudit:
    """MACs of one forward pass of ``model`` on ``inputs`` (tensors or :class:`InputSpec` shapes).

    The pass runs on the meta device: a model not already there is copied to meta (the caller's model is not
    touched); tensors are replaced by meta tensors of the same shape and dtype. ``flop_counter=None`` runs
    FlopCounterMode only when some module has no MAC rule of its own.
    """
    meta_model = on_meta(model)
    meta_inputs = meta_tensors(inputs)
    use_counter = _needs_flop_counter(meta_model, registry) if flop_counter is None else flop_counter
    with torch.no_grad():
        captured = capture(meta_model, meta_inputs, use_flop_counter=use_counter)
    records = _records(meta_model, captured, registry)
    labels = tuple(str(InputSpec(tuple(t.shape), t.dtype)) for t in meta_inputs)
    return FlopsAudit(type(model).__name__, labels, records, use_counter)


def _nearest_counted(fc: dict[str, int], name: str, module: nn.Module) -> int:
    """FlopCounterMode FLOPs of the nearest descendants it saw called: a ModuleList is never called itself, so
    its children stand for it."""
    total = 0
    for child_name, child in module._modules.items():
        if child is not None:
            total += subtree_flops(fc, f"{name}.{child_name}" if name else child_name, child)
    return total


def subtree_flops(fc: dict[str, int], name: str, module: nn.Module) -> int:
    """FlopCounterMode FLOPs of a module path and everything below it."""
    return fc[name] if name in fc else _nearest_counted(fc, name, module)


def _records(model: nn.Module, captured: Capture, registry: FormulaRegistry) -> tuple[FlopsRecord, ...]:
    modules = dict(model.named_modules())
    fc = captured.flop_counter
    records = []
    for name, module in modules.items():
        calls = captured.calls.get(name, [])
        inputs = tuple(a for c in calls[:1] for a in c.args if isinstance(a, tuple))
        outputs = calls[0].outputs if calls else ()
        inclusive = fc.get(name) if fc is not None else None
        own_counted = None
        if fc is not None and calls:
            own_counted = (inclusive or 0) - _nearest_counted(fc, name, module)
        found = registry.lookup_macs(type(module))
        common = dict(name=name, type=type(module).__name__, calls=len(calls), input_shapes=inputs,
                      output_shapes=outputs, flop_counter_flops=inclusive)
        if found is not None:
            registered_as, rule = found
            counts = MacCount()
            for call in calls:
                counts = counts + rule(module, call)
            inherited = registered_as is not type(module)
            if inherited and own_counted is not None and own_counted > 2 * counts.macs:
                records.append(FlopsRecord(
                    counts=MacCount(macs=own_counted // 2), status=Status.UNSUPPORTED, source="flop_counter",
                    note=f"subclass of {registered_as.__name__} doing more than its rule counts "
                         f"({counts.macs:,} MACs); FlopCounterMode on meta counted its own work", **common))
                continue
            note = "" if calls else "not called as a module in this forward pass"
            if inherited and not note:
                note = f"counted as {registered_as.__name__}"
            records.append(FlopsRecord(counts=counts, status=Status.FORMULA, source="formula", note=note, **common))
            continue
        if not calls:
            records.append(FlopsRecord(counts=MacCount(), status=Status.ZERO, source="none",
                                       note="not called in this forward pass", **common))
        elif own_counted:
            records.append(FlopsRecord(
                counts=MacCount(macs=own_counted // 2), status=Status.UNSUPPORTED, source="flop_counter",
                note=f"no MAC rule for {type(module).__name__}: its own matrix work counted by FlopCounterMode "
                     "on meta (norm, activation and softmax work not counted)", **common))
        else:
            records.append(FlopsRecord(counts=MacCount(), status=Status.ZERO, source="none",
                                       note="no MAC rule; FlopCounterMode on meta saw no matrix work of its own",
                                       **common))
    return tuple(records)


__all__ = ["COLUMNS", "FlopsAudit", "FlopsRecord", "audit_macs"]
