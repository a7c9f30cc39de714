"""MACs per module from captured shapes: the analytic counterpart of :mod:`archaudit.walker`.

Each module's own work is counted where it is called: a module's MAC rule counts what the module does itself,
and its children are counted at their own calls (``MultiheadAttention`` counts its output projection, which it
applies without calling ``out_proj``; a ``TransformerEncoderLayer`` counts only its functional activation).

Every module ends in one status:

* ``formula``: counted by its MAC rule (found along the MRO);
* ``zero``: no rule of its own, and no matrix work of its own in the trace (a container);
* ``unsupported``: no rule, and matrix work of its own that FlopCounterMode's op formulas counted in the trace
  (``source="flop_counter"``). Unsupported modules are listed in every output.

The columns beside MACs (bias, norm, activation, softmax) come from the MAC rules only. A module without a rule
whose own ops include work of a column (``aten.tanh`` for activation, ``aten.rsqrt`` for norm, ...) has that
column *not counted*: the record names the column and the ops, and the audit counts, per column, the modules
that miss it, so that no 0 in a column is silent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from . import formulas as _formulas  # noqa: F401  (registers every MAC rule)
from .inputs import InputSpec, meta_tensors
from .records import COLUMNS, FlopsAudit, FlopsRecord, MacCount, Status
from .registry import REGISTRY, FormulaRegistry
from .trace import Capture, capture, on_meta


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
    build_note: str = "",
) -> FlopsAudit:
    """MACs of one forward pass of ``model`` on ``inputs`` (tensors or :class:`InputSpec` shapes).

    The pass runs on the meta device: a model not already there is copied to meta (the caller's model is not
    touched); tensors are replaced by meta tensors of the same shape and dtype. ``flop_counter=None`` runs
    FlopCounterMode only when some module has no MAC rule of its own.
    """
    tensors = [*model.parameters(), *model.buffers()]
    built_on = "meta" if all(t.is_meta for t in tensors) else str(next(t.device for t in tensors if not t.is_meta))
    meta_model = on_meta(model)
    meta_inputs = meta_tensors(inputs)
    use_counter = _needs_flop_counter(meta_model, registry) if flop_counter is None else flop_counter
    with torch.no_grad():
        captured = capture(meta_model, meta_inputs, record_ops=use_counter)
    records = _records(meta_model, captured, registry)
    labels = tuple(str(InputSpec(tuple(t.shape), t.dtype)) for t in meta_inputs)
    return FlopsAudit(type(model).__name__, labels, records, use_counter, built_on, build_note)


# The aten ops whose work belongs to a column beside MACs. A module without a MAC rule that runs one of them has
# that column not counted (the ops are named); a rule counts its columns itself.
COLUMN_OPS: dict[str, frozenset[str]] = {
    "bias": frozenset({"aten.addmm", "aten.baddbmm", "aten.addbmm", "aten.addmv"}),
    "norm": frozenset(
        {
            "aten.native_layer_norm",
            "aten.native_batch_norm",
            "aten._native_batch_norm_legit",
            "aten._native_batch_norm_legit_no_training",
            "aten._native_batch_norm_legit_functional",
            "aten.native_group_norm",
            "aten._fused_rms_norm",
            "aten.rms_norm",
            "aten.rsqrt",
            "aten.var_mean",
            "aten.batch_norm",
            "aten.instance_norm",
            "aten.layer_norm",
            "aten.group_norm",
        }
    ),
    "activation": frozenset(
        {
            "aten.relu",
            "aten.relu_",
            "aten.gelu",
            "aten.gelu_",
            "aten.silu",
            "aten.silu_",
            "aten.sigmoid",
            "aten.sigmoid_",
            "aten.tanh",
            "aten.tanh_",
            "aten.elu",
            "aten.elu_",
            "aten.leaky_relu",
            "aten.leaky_relu_",
            "aten.hardswish",
            "aten.hardswish_",
            "aten.hardsigmoid",
            "aten.hardsigmoid_",
            "aten.hardtanh",
            "aten.hardtanh_",
            "aten.mish",
            "aten.mish_",
            "aten.softplus",
            "aten.selu",
            "aten.celu",
            "aten.glu",
            "aten._prelu_kernel",
            "aten.prelu",
            "aten.log_sigmoid_forward",
            "aten.threshold",
            "aten.rrelu_with_noise",
            "aten.erf",
            "aten.softshrink",
            "aten.hardshrink",
            "aten.logit",
        }
    ),
    "softmax": frozenset(
        {
            "aten._softmax",
            "aten.softmax",
            "aten._log_softmax",
            "aten.log_softmax",
            "aten._safe_softmax",
            "aten.scaled_dot_product_attention",
            "aten._scaled_dot_product_flash_attention_for_cpu",
            "aten._scaled_dot_product_flash_attention",
            "aten._scaled_dot_product_efficient_attention",
            "aten._scaled_dot_product_cudnn_attention",
            "aten._scaled_dot_product_attention_math",
            "aten._scaled_dot_product_fused_attention_overrideable",
        }
    ),
}


def _columns_missed(ops: dict[str, int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """For a module without a MAC rule: the columns its own ops have work in, and those ops (sorted)."""
    columns: list[str] = []
    named: set[str] = set()
    for column in COLUMNS:
        hit = COLUMN_OPS.get(column, frozenset()) & ops.keys()
        if hit:
            columns.append(column)
            named |= hit
    return tuple(columns), tuple(sorted(named))


def _missed_text(columns: tuple[str, ...], ops: tuple[str, ...]) -> str:
    return f"; {', '.join(columns)} not counted ({', '.join(ops)})" if columns else ""


def _counted_by_ops(own_flops: int, ops: dict[str, int], why: str, common: dict[str, Any]) -> FlopsRecord:
    """A module whose own work is counted from its traced ops (FlopCounterMode's formulas), naming what its ops did
    that no column counted."""
    columns, named = _columns_missed(ops)
    missing = _missed_text(columns, named)
    return FlopsRecord(
        counts=MacCount(macs=own_flops // 2),
        status=Status.UNSUPPORTED,
        source="flop_counter",
        note=why + missing,
        uncounted=columns,
        uncounted_ops=named,
        **common,
    )


def _no_macs_reason(registry: FormulaRegistry, module: nn.Module) -> str:
    """`` (reason)`` when the rule found for ``module`` was declared without a MAC rule (``no_macs=``), else ``""``."""
    found = registry.lookup_rule(type(module))
    return f" ({found[1].no_macs})" if found is not None and found[1].macs is None else ""


def _records(model: nn.Module, captured: Capture, registry: FormulaRegistry) -> tuple[FlopsRecord, ...]:
    own_flops = captured.own_flops
    own_ops = captured.own_ops or {}
    records = []
    for name, module in model.named_modules():
        calls = captured.calls.get(name, [])
        inputs = tuple(a for c in calls[:1] for a in c.args if isinstance(a, tuple))
        outputs = calls[0].outputs if calls else ()
        # FLOPs of the ops this module ran itself (children excluded), summed over its calls: never negative
        own_counted = own_flops.get(name, 0) if own_flops is not None and calls else None
        found = registry.lookup_macs(type(module))
        common = {
            "name": name,
            "type": type(module).__name__,
            "calls": len(calls),
            "input_shapes": inputs,
            "output_shapes": outputs,
        }
        if found is not None:
            registered_as, rule = found
            counts = MacCount()
            for call in calls:
                counts = counts + rule(module, call)
            inherited = registered_as is not type(module)
            if inherited and own_counted is not None and own_counted > 2 * counts.macs:
                why = (
                    f"subclass of {registered_as.__name__} doing more than its rule counts "
                    f"({counts.macs:,} MACs); FlopCounterMode's op formulas counted its own work"
                )
                records.append(_counted_by_ops(own_counted, own_ops.get(name, {}), why, common))
                continue
            note = "" if calls else "not called as a module in this forward pass"
            if inherited and not note:
                note = f"counted as {registered_as.__name__}"
            records.append(FlopsRecord(counts=counts, status=Status.FORMULA, source="formula", note=note, **common))
            continue
        if not calls:
            records.append(
                FlopsRecord(
                    counts=MacCount(),
                    status=Status.ZERO,
                    source="none",
                    note="not called in this forward pass",
                    **common,
                )
            )
        elif own_counted:
            why = (
                f"no MAC rule for {type(module).__name__}{_no_macs_reason(registry, module)}: its own matrix work "
                "counted by FlopCounterMode's op formulas"
            )
            records.append(_counted_by_ops(own_counted, own_ops.get(name, {}), why, common))
        else:
            columns, ops = _columns_missed(own_ops.get(name, {}))
            missing = _missed_text(columns, ops)
            records.append(
                FlopsRecord(
                    counts=MacCount(),
                    status=Status.ZERO,
                    source="none",
                    note=f"no MAC rule{_no_macs_reason(registry, module)}; no matrix work of its own{missing}",
                    uncounted=columns,
                    uncounted_ops=ops,
                    **common,
                )
            )
    return tuple(records)


__all__ = ["COLUMN_OPS", "audit_macs"]
