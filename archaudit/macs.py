"""MACs per module from captured shapes: the analytic counterpart of :mod:`archaudit.walker`.

Each module's own work is counted where it is called: a module's MAC rule counts what the module does itself,
and its children are counted at their own calls (``MultiheadAttention`` counts its output projection, which it
applies without calling ``out_proj``; a ``TransformerEncoderLayer`` counts only its functional activation).

Every module ends in one status, decided by the work it did rather than by its class (fvcore's model, at op level):

* ``formula``: counted by its MAC rule (found along the MRO);
* ``ops``: no rule, and every aten op of its own in the trace is one archaudit counts: matrix work by
  FlopCounterMode's op formulas (``COUNTED_OPS``), the columns beside MACs by the elements of their ops
  (``COLUMN_OPS``), the rest free by convention (``FREE_OPS``) (``source="ops"``);
* ``zero``: no rule of its own, and no work of its own in the trace (a container, views, residual additions);
* ``unsupported``: no rule, and an op of its own that nothing counts and that is not known to be free: the record
  names the ops (``unsupported_ops``) and the audit sums them over the model. Whatever its other ops did is still
  counted. Unsupported modules are listed in every output.

A module with a rule counts its columns itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import formulas as _formulas  # noqa: F401  (registers every MAC rule)
from .inputs import InputSpec, meta_tensors, zero_tensors
from .records import COLUMNS, FlopsAudit, FlopsRecord, MacCount, Status
from .registry import REGISTRY, FormulaRegistry
from .trace import Capture, capture, cpu_else_meta, model_device, op_name, trace_device


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
    keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
    trace_on: str = "auto",
) -> FlopsAudit:
    """MACs of one forward pass of ``model`` on ``inputs`` (tensors or :class:`InputSpec` shapes) and
    ``keyword_inputs`` (passed by name: ``input_ids=``).

    The pass runs where :func:`archaudit.trace.trace_device` says (``trace_on="auto"``; or ``"meta"``, ``"cpu"``):
    on a zero CPU copy with zero inputs for a small model, else on meta, a model not already there copied to meta;
    the caller's model is not touched either way, and only shapes and dtypes of the inputs are used. A CPU trace
    that runs an op whose result depends on values is run again on meta, as is one that fails, so a CPU trace
    never counts what meta would not. ``flop_counter=None`` runs FlopCounterMode's formulas only when some module
    has no MAC rule of its own.
    """
    built_on = model_device(model)
    named = dict(keyword_inputs or {})
    if trace_on not in ("auto", "meta", "cpu"):
        raise ValueError(f"{trace_on=}: one of 'auto', 'meta', 'cpu'")
    where = trace_device(model, [*inputs, *named.values()]) if trace_on == "auto" else trace_on

    def run(twin: nn.Module, device: str) -> tuple[tuple[FlopsRecord, ...], tuple[str, ...], bool] | None:
        stand_ins = zero_tensors if device == "cpu" else meta_tensors
        keywords = dict(zip(named, stand_ins(list(named.values())), strict=True))
        return _audit_on(twin, stand_ins(inputs), keywords, registry, flop_counter, guard=device == "cpu")

    traced_on, _, (records, labels, use_counter) = cpu_else_meta(model, where, run)
    return FlopsAudit(type(model).__name__, labels, records, use_counter, built_on, build_note, traced_on)


def _audit_on(
    copy: nn.Module,
    inputs: list[torch.Tensor],
    keywords: dict[str, torch.Tensor],
    registry: FormulaRegistry,
    flop_counter: bool | None,
    *,
    guard: bool,
) -> tuple[tuple[FlopsRecord, ...], tuple[str, ...], bool] | None:
    """The records of one trace of ``copy`` (the model on meta or zero CPU weights) on ``inputs``, its input labels and
    whether the op formulas ran; ``None`` when ``guard`` saw an op whose result depends on values."""
    use_counter = _needs_flop_counter(copy, registry) if flop_counter is None else flop_counter
    with torch.no_grad():
        captured = capture(
            copy,
            inputs,
            record_ops=use_counter,
            columns=_OP_COLUMN,
            applied=APPLIED_OPS,
            keyword_inputs=keywords,
            guard=guard,
        )
    if captured.data_dependent:
        return None
    records = _records(copy, captured, registry)
    labels = tuple(str(InputSpec(tuple(t.shape), t.dtype)) for t in inputs) + tuple(
        f"{name}={InputSpec(tuple(t.shape), t.dtype)}" for name, t in keywords.items()
    )
    return records, labels, use_counter


# The aten ops whose work belongs to a column beside MACs. A module without a MAC rule that runs one of them has
# the op's elements (its output's) counted in that column; a rule counts its columns itself.
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


# The ops whose elements count in a column at the element-wise ``aten.mul`` that applies their result, not at
# themselves: a norm's ``rsqrt(var + eps)`` has the reduced shape, and the elements normalised are those it scales.
APPLIED_OPS: dict[str, str] = {"aten.rsqrt": "norm"}


def _aten(names: str) -> set[str]:
    return {f"aten.{name}" for name in names.split()}


# Ops free by the convention in records.py: they count nothing, and a module whose own ops are all free (or counted)
# is not unsupported. Chosen op by op; an op in no set (``aten.exp``, ``aten.sqrt``, ``aten._fft_r2c``,
# ``aten.linalg_inv_ex``, ...) is unsupported and named, never silently free.
FREE_OPS: frozenset[str] = frozenset(
    # views, reshapes, copies, layout: no arithmetic
    _aten(
        "view _unsafe_view reshape view_as _reshape_alias transpose transpose_ t permute expand expand_as squeeze "
        "squeeze_ unsqueeze unsqueeze_ flatten unflatten select slice narrow split split_with_sizes chunk unbind "
        "as_strided alias detach detach_ lift_fresh lift_fresh_copy contiguous clone copy copy_ _to_copy to cat "
        "stack repeat repeat_interleave flip roll tile movedim diagonal tril triu constant_pad_nd pad "
        "reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d pixel_shuffle pixel_unshuffle "
        "im2col col2im _unsafe_index upsample_nearest1d upsample_nearest2d view_as_real view_as_complex real imag "
        "conj _conj resolve_conj resolve_neg"
    )
    # indexing and masks (an Embedding lookup done functionally is indexing)
    | _aten(
        "index index_select index_put index_put_ gather scatter scatter_ scatter_add masked_fill masked_fill_ "
        "where embedding take nonzero masked_select"
    )
    # creation
    | _aten(
        "empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like "
        "new_ones full full_like new_full fill fill_ zero_ arange linspace scalar_tensor eye rand randn rand_like "
        "randn_like randint bernoulli bernoulli_ normal_ uniform_"
    )
    # element-wise arithmetic: residual additions, gate and scaling products (attention's 1/sqrt(d)), squares
    | _aten(
        "add add_ sub sub_ rsub mul mul_ div div_ neg neg_ pow pow_ square abs sign clamp clamp_ clamp_min "
        "clamp_max floor ceil round trunc remainder fmod floor_divide maximum minimum lerp addcmul addcdiv"
    )
    # position arithmetic: the angles of rotary and sinusoidal position encodings (cos, sin) and the logarithmic
    # buckets of T5's relative positions (log), on positions, not on activations. exp and sqrt stay unsupported:
    # they are how a hand-written softmax or norm would do its work, which a column must not miss silently
    | _aten("cos sin log")
    # comparisons and logic
    | _aten(
        "eq ne lt le gt ge logical_not logical_and logical_or logical_xor bitwise_not bitwise_and bitwise_or "
        "bitwise_xor isnan isinf isfinite all any"
    )
    # reductions, scans (position ids from a mask's cumulative sum) and pooling windows (a norm's statistics: its
    # elements count where they are applied)
    | _aten(
        "cumsum sum mean amax amin max min argmax argmin var var_mean std std_mean avg_pool1d avg_pool2d avg_pool3d "
        "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices adaptive_avg_pool1d "
        "adaptive_avg_pool2d _adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool3d adaptive_max_pool1d "
        "adaptive_max_pool2d adaptive_max_pool3d"
    )
    # dropout masks
    | _aten("dropout native_dropout feature_dropout alpha_dropout")
    # metadata and checks: no work at all
    | _aten(
        "_local_scalar_dense sym_size sym_stride sym_numel size stride item is_nonzero _assert_async "
        "_assert_tensor_metadata _linalg_check_errors _has_compatible_shallow_copy_type resize_ set_"
    )
    | {"prim.device"}
)


def _counted_ops() -> frozenset[str]:
    """The ops FlopCounterMode's formula table counts (``aten.mm``, ``aten.convolution``, fused attention ...)."""
    from torch.utils.flop_counter import flop_registry

    return frozenset(op_name(packet) for packet in flop_registry)


COUNTED_OPS: frozenset[str] = _counted_ops()
_OP_COLUMN: dict[str, str] = {op: column for column, ops in COLUMN_OPS.items() for op in ops}


def unsupported_ops(ops: dict[str, int]) -> tuple[tuple[str, int], ...]:
    """The ops nothing counts and that are not known to be free, with how often they ran, sorted by name."""
    known = COUNTED_OPS | _OP_COLUMN.keys() | APPLIED_OPS.keys() | FREE_OPS
    return tuple(sorted((op, count) for op, count in ops.items() if op not in known))


def _ops_text(ops: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{op}" + (f" x{count}" if count > 1 else "") for op, count in ops)


def _by_ops(
    captured: Capture, name: str, why: str, common: dict[str, Any], *, rule_macs: int | None = None
) -> FlopsRecord:
    """A module without a MAC rule (or doing more than its rule counts), counted op by op from its own traced ops:
    MACs from FlopCounterMode's formulas, the columns from the elements of their ops; ``unsupported`` naming each
    op that nothing counts and that is not known to be free, else ``ops``, or ``zero`` when its ops did no work."""
    flops = (captured.own_flops or {}).get(name, 0)
    elements = (captured.own_elements or {}).get(name, {})
    counts = MacCount(macs=flops // 2, **{c: elements.get(c, 0) for c in COLUMNS if c != "macs"})
    missing = unsupported_ops((captured.own_ops or {}).get(name, {}))
    if missing:
        status, note = Status.UNSUPPORTED, f"{why}; ops nothing counts: {_ops_text(missing)}"
    elif counts != MacCount() or rule_macs is not None:
        status, note = Status.OPS, f"{why}: its own ops counted op by op"
    else:
        return FlopsRecord(
            counts=counts, status=Status.ZERO, source="none", note=f"{why}; no work of its own", **common
        )
    return FlopsRecord(counts=counts, status=status, source="ops", note=note, unsupported_ops=missing, **common)


def _no_macs_reason(registry: FormulaRegistry, module: nn.Module) -> str:
    """`` (reason)`` when the rule found for ``module`` was declared without a MAC rule (``no_macs=``), else ``""``."""
    found = registry.lookup_rule(type(module))
    return f" ({found[1].no_macs})" if found is not None and found[1].macs is None else ""


def _records(model: nn.Module, captured: Capture, registry: FormulaRegistry) -> tuple[FlopsRecord, ...]:
    own_flops = captured.own_flops
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
                why = f"subclass of {registered_as.__name__} doing more than its rule counts ({counts.macs:,} MACs)"
                records.append(_by_ops(captured, name, why, common, rule_macs=counts.macs))
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
        elif captured.own_ops is None:  # the caller turned op recording off (flop_counter=False)
            records.append(
                FlopsRecord(
                    counts=MacCount(),
                    status=Status.ZERO,
                    source="none",
                    note=f"no MAC rule{_no_macs_reason(registry, module)}; its ops were not recorded",
                    **common,
                )
            )
        else:
            why = f"no MAC rule for {type(module).__name__}{_no_macs_reason(registry, module)}"
            records.append(_by_ops(captured, name, why, common))
    return tuple(records)


__all__ = ["APPLIED_OPS", "COLUMN_OPS", "COUNTED_OPS", "FREE_OPS", "audit_macs", "unsupported_ops"]
