"""Training cost: forward MACs, backward MACs (activation gradients and weight gradients) per module, and the
optimizer step's element-wise work.

The forward is :func:`archaudit.macs.audit_macs`, unchanged. The backward is analytic, one rule per MAC family
(keyed by the family name of the module's layer rule in the registry), from the shapes of each call and from which
tensors need a gradient. Which tensors need one is read off a second meta pass run with autograd on: a module
input needs a gradient iff it requires grad there, which is exactly torch's own propagation in call order (a
tensor requires grad iff a model input that requires grad, or a trainable parameter, is upstream of it). Model
inputs do not require grad, unless a tensor passed in does. Every output is taken to reach the loss.

Two kinds of backward work are counted, in MACs (FLOPs = 2 x MACs), apart:

``backward_input``   gradients of activations: of the module's inputs when they need one, and of its inner
                     activations (attention's Q, K, V and scores, a recurrent layer's hidden state);
``backward_weight``  gradients of the weights of its products: none for a frozen parameter (``requires_grad=False``).

The rules, per family (``F`` is the forward MACs of the call):

* ``linear``, ``conv`` (Conv and ConvTranspose), ``hf_conv1d``: ``y = x W``; ``dx = dy W^T`` and ``dW = x^T dy``
  are each one product of the forward's size: ``F`` if the input needs a gradient, ``F`` if the weight is trainable.
  A bias gradient is a reduction, not a MAC.
* ``attention`` (``nn.MultiheadAttention``): the projections as ``linear``, each for its own input and weight
  (packed or separate); ``scores = Q K^T`` and ``out = A V`` give ``dQ``, ``dK``, ``dA``, ``dV`` of one product each,
  each counted when that operand needs a gradient (Q iff the query needs one or the q-projection's weight or the
  packed bias is trainable; A iff Q or K does); the output projection's ``dx`` iff A or V needs one.
* ``hf_attention``, ``timm_attention``: the module's own two activation products, as above, where Q, K and V need a
  gradient iff the module's input does or a parameter of the module (its projections included) is trainable. Exact
  when that holds for all three or for none; with some of its parameters frozen the record says it is estimated.
* ``recurrent`` (RNN, LSTM, GRU): the trace stubs their recurrence, so the rule uses their structure. Per layer and
  direction, ``T`` real steps (``sum(batch_sizes)`` when packed) and ``B`` sequences: ``dx`` through ``W_ih``
  (``T*g*h*x``) iff the layer's input needs a gradient; the state's gradient through ``W_hh`` (``g*h*r`` a step) for
  ``T - B`` steps (every step but each sequence's first, whose state is the initial one) iff anything in or before
  the layer needs a gradient, and for the first steps too iff the initial ``h`` requires grad; through ``W_hr``
  (``r*h`` a step) for the same ``T - B`` steps iff anything does, and for the first steps iff anything but ``W_hr``
  does (the first step's state comes before ``W_hr`` is applied); each weight's gradient for all ``T`` steps (the
  first step's product with a zero state is still computed) iff it is trainable.
* ``recurrent_cell``: ``dx`` through ``W_ih`` iff the input needs a gradient, through ``W_hh`` iff the given ``h``
  does; weight gradients as ``linear``.
* ``bilinear``: estimated (the record says so): ``dx1`` ``rows*out*(in1*in2 + in1)``, ``dx2`` ``rows*out*(in1*in2 +
  in2)``, ``dW`` ``rows*out*in1*in2``, mirroring the forward's structure; FlopCounterMode counts ``_trilinear`` as 0.
* Any other module whose forward has no MACs (norms, embeddings, activations, pooling, containers): its backward is
  element-wise, indexing or reductions (a norm's weight gradient is a reduction, an embedding's a scatter-add), so
  0 MACs.
* A module with forward MACs and no backward rule (a family not listed, a module counted op by op): its backward is
  not counted; its record says so (``exactness="uncounted"``) and :attr:`TrainingAudit.uncounted` lists it.

The optimizer step is element-wise work per trainable parameter element, reported apart from MACs
(:data:`OPTIMIZER_OPS`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .formulas.attention import attention_spec
from .formulas.linear import bilinear_spec
from .formulas.recurrent import cell_spec, recurrent_spec, recurrent_steps
from .inputs import InputSpec, meta_tensors, zero_tensors
from .macs import audit_macs
from .optim import OPS_PER_ELEMENT, SettingError, parse_optimizer
from .records import Call, FlopsAudit, FlopsRecord, MacCount, Packed
from .registry import REGISTRY, FormulaRegistry
from .trace import capture, cpu_else_meta, model_device, trace_device

OptimizerError = SettingError
"""An unknown optimizer name (the name this module gave :class:`~archaudit.optim.SettingError`)."""


OPTIMIZER_OPS: dict[str, int] = {optimizer.value: ops for optimizer, ops in OPS_PER_ELEMENT.items()}
"""Element-wise operations per trainable element of one ``step()``, by optimizer name
(:data:`archaudit.optim.OPS_PER_ELEMENT`)."""


class Exactness(str, enum.Enum):
    EXACT = "exact"
    """By a rule that holds exactly for the call (the backward of a module with no forward MACs included)."""
    ESTIMATED = "estimated"
    """By a rule that cannot be exact for this module; the note says why."""
    UNCOUNTED = "uncounted"
    """Forward MACs but no backward rule: the backward MACs are not counted (0); the note says why."""


@dataclass(frozen=True)
class TrainingRecord:
    """One module path: its own forward MACs and the MACs of its own backward, summed over its calls."""

    name: str
    type: str
    calls: int
    forward: int
    backward_input: int
    """Gradients of activations: the module's inputs (when they need one) and its inner activations."""
    backward_weight: int
    """Gradients of trainable weights (none for frozen parameters)."""
    exactness: Exactness = Exactness.EXACT
    note: str = ""

    @property
    def backward(self) -> int:
        return self.backward_input + self.backward_weight

    @property
    def total(self) -> int:
        return self.forward + self.backward

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "calls": self.calls,
            "forward": self.forward,
            "backward_input": self.backward_input,
            "backward_weight": self.backward_weight,
            "exactness": self.exactness.value,
            "note": self.note,
        }


@dataclass(frozen=True)
class TrainingAudit:
    """One training step of a model: per module MACs of forward and backward, and the optimizer's element-wise work.
    Totals are functions of the records."""

    model_type: str
    inputs: tuple[str, ...]
    records: tuple[TrainingRecord, ...]
    optimizer: str
    trainable_elements: int
    """Elements of the trainable parameters, each tensor once (tied weights are one tensor)."""
    built_on: str = "meta"

    @property
    def forward(self) -> int:
        return sum(r.forward for r in self.records)

    @property
    def backward_input(self) -> int:
        return sum(r.backward_input for r in self.records)

    @property
    def backward_weight(self) -> int:
        return sum(r.backward_weight for r in self.records)

    @property
    def backward(self) -> int:
        return self.backward_input + self.backward_weight

    @property
    def total(self) -> int:
        """Forward and backward MACs (the optimizer's element-wise work is not MACs and not included)."""
        return self.forward + self.backward

    @property
    def flops(self) -> int:
        return 2 * self.total

    @property
    def optimizer_ops_per_element(self) -> int:
        return OPTIMIZER_OPS[self.optimizer]

    @property
    def optimizer_elementwise(self) -> int:
        return self.optimizer_ops_per_element * self.trainable_elements

    @property
    def uncounted(self) -> tuple[TrainingRecord, ...]:
        return tuple(r for r in self.records if r.exactness is Exactness.UNCOUNTED)

    @property
    def estimated(self) -> tuple[TrainingRecord, ...]:
        return tuple(r for r in self.records if r.exactness is Exactness.ESTIMATED)

    def record(self, name: str) -> TrainingRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(f"no module path {name!r} in this {self.model_type} training audit")

    def as_json(self) -> dict[str, Any]:
        """Totals, then one entry per module path in ``named_modules()`` order."""
        return {
            "forward": self.forward,
            "backward": self.backward,
            "total": self.total,
            "optimizer": self.optimizer,
            "optimizer_elementwise": self.optimizer_elementwise,
            "modules": [r.as_json() for r in self.records],
        }


# --- which tensors need a gradient ---------------------------------------------------------------------------------

Flags = bool | tuple[bool, ...] | None
"""Per argument: whether a tensor requires grad, the same for each tensor of a tuple (an LSTM's ``(h, c)``), or
None for an argument that holds no tensor."""


def _flags(value: Any) -> Flags:
    if isinstance(value, PackedSequence):
        return bool(value.data.requires_grad)
    if isinstance(value, torch.Tensor):
        return bool(value.requires_grad)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(bool(v.requires_grad) for v in value)
    return None


def _any(flags: Flags) -> bool:
    return any(flags) if isinstance(flags, tuple) else bool(flags)


def _first(flags: Flags) -> bool:
    return flags[0] if isinstance(flags, tuple) else bool(flags)


@dataclass(frozen=True)
class Grads:
    """One call's arguments, as whether they require grad (the counterpart of a :class:`Call`'s shapes)."""

    args: tuple[Flags, ...]
    kwargs: tuple[tuple[str, Flags], ...]

    def arg(self, index: int, name: str | None = None) -> Flags:
        if index < len(self.args):
            return self.args[index]
        return next((flags for key, flags in self.kwargs if key == name), None)

    def needs(self, index: int, name: str | None = None) -> bool:
        """Whether some tensor of argument ``index`` (or keyword ``name``) requires grad."""
        return _any(self.arg(index, name))


@dataclass(frozen=True)
class Backward:
    """The backward MACs of one call."""

    input: int = 0
    weight: int = 0
    exactness: Exactness = Exactness.EXACT
    note: str = ""


BackwardRule = Callable[[nn.Module, Call, Grads, MacCount], Backward]
"""``rule(module, call, grads, forward)``: the backward of one call, given its forward counts (by the MAC rule)."""


def _trainable(*params: Any) -> bool:
    return any(isinstance(p, torch.Tensor) and p.requires_grad for p in params)


# --- the rules, per family -----------------------------------------------------------------------------------------


def weight_product_backward(m: nn.Module, call: Call, grads: Grads, forward: MacCount) -> Backward:
    """``y = x W``: ``dx`` and ``dW`` are each one product of the forward's size."""
    return Backward(
        input=forward.macs if grads.needs(0, "input") else 0,
        weight=forward.macs if _trainable(getattr(m, "weight", None)) else 0,
    )


def attention_backward(m: nn.MultiheadAttention, call: Call, grads: Grads, forward: MacCount) -> Backward:
    """``nn.MultiheadAttention``: projections, both products, the output projection (see the module docstring)."""
    s = attention_spec(m)
    query, key = call.arg(0, "query"), call.arg(1, "key")
    if len(query) == 2:
        batch, target, source = 1, query[0], key[0]
    elif m.batch_first:
        batch, target, source = query[0], query[1], key[1]
    else:
        batch, target, source = query[1], query[0], key[0]
    e = s.embed_dim
    keys = source + int(s.add_bias_kv) + int(m.add_zero_attn)
    if s.packed:
        wq = wk = wv = _trainable(m.in_proj_weight)
    else:
        wq, wk, wv = _trainable(m.q_proj_weight), _trainable(m.k_proj_weight), _trainable(m.v_proj_weight)
    bias = _trainable(m.in_proj_bias)
    xq, xk, xv = grads.needs(0, "query"), grads.needs(1, "key"), grads.needs(2, "value")
    q = xq or wq or bias
    k = xk or wk or bias or _trainable(m.bias_k)
    v = xv or wv or bias or _trainable(m.bias_v)
    scores = q or k
    out = scores or v
    proj_q, proj_k, proj_v = target * e * e, source * s.kdim * e, source * s.vdim * e
    product, out_proj = target * keys * e, target * e * e
    inputs = proj_q * xq + proj_k * xk + proj_v * xv + product * (q + k + scores + v) + out_proj * out
    weights = proj_q * wq + proj_k * wk + proj_v * wv + out_proj * _trainable(m.out_proj.weight)
    return Backward(input=batch * inputs, weight=batch * weights)


def activation_products_backward(m: nn.Module, call: Call, grads: Grads, forward: MacCount) -> Backward:
    """The module's own activation-by-activation products (Q K^T, A V and the like): each product's two operands get
    a gradient of the product's size, when Q, K and V need one (the input does, or a parameter of the module is)."""
    params = [p.requires_grad for p in m.parameters()]
    upstream = grads.needs(0, "hidden_states")
    needed = upstream or any(params)
    if not needed:
        return Backward()
    if upstream or all(params):
        return Backward(input=2 * forward.macs)
    return Backward(
        input=2 * forward.macs,
        exactness=Exactness.ESTIMATED,
        note="some of its parameters are frozen: every attention operand is taken to need a gradient",
    )


def bilinear_backward(m: nn.Bilinear, call: Call, grads: Grads, forward: MacCount) -> Backward:
    s = bilinear_spec(m)
    rows = prod(call.input) // s.in1_features
    pair = s.in1_features * s.in2_features
    return Backward(
        input=rows
        * s.out_features
        * ((pair + s.in1_features) * grads.needs(0, "input1") + (pair + s.in2_features) * grads.needs(1, "input2")),
        weight=rows * s.out_features * pair if _trainable(m.weight) else 0,
        exactness=Exactness.ESTIMATED,
        note="Bilinear's backward estimated from its forward's structure (FlopCounterMode counts _trilinear as 0)",
    )


def _sequences(arg: Any, batch_first: bool) -> int:
    if isinstance(arg, Packed):
        return arg.batch_sizes[0]
    if len(arg) == 2:
        return 1
    sequences: int = arg[0] if batch_first else arg[1]
    return sequences


def recurrent_backward(m: nn.RNNBase, call: Call, grads: Grads, forward: MacCount) -> Backward:
    """RNN, LSTM, GRU from their structure (the trace stubs their recurrence; see the module docstring)."""
    s = recurrent_spec(m)
    arg = call.arg(0, "input")
    steps = recurrent_steps(arg, m.batch_first)
    sequences = _sequences(arg, m.batch_first)
    hx = grads.arg(1, "hx")
    state, h0 = _any(hx), _first(hx)
    g, h, r = s.gates, s.hidden_size, s.recurrent_width
    x_needs = grads.needs(0, "input")
    inputs = weights = 0
    for layer in range(s.num_layers):
        ih = steps * g * h * s.layer_input(layer)
        hh = g * h * r
        hr = r * h if s.proj_size else 0
        layer_trainable = False
        for direction in range(s.directions):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = getattr(m, f"weight_ih{suffix}"), getattr(m, f"weight_hh{suffix}")
            w_hr = getattr(m, f"weight_hr{suffix}", None)
            # A hidden state of a sequence's first step needs a gradient iff the step's input, the initial state or
            # a weight or bias it reads does; W_hr is not among them (it is applied after), but a later step reads
            # the state W_hr made, so there it counts too.
            before_hr = _trainable(
                w_ih, w_hh, getattr(m, f"bias_ih{suffix}", None), getattr(m, f"bias_hh{suffix}", None)
            )
            own = before_hr or _trainable(w_hr)
            active, first = x_needs or state or own, x_needs or state or before_hr
            later = steps - sequences
            inputs += (
                ih * x_needs + hh * later * active + hh * sequences * h0 + hr * (later * active + sequences * first)
            )
            weights += ih * _trainable(w_ih) + steps * hh * _trainable(w_hh) + steps * hr * _trainable(w_hr)
            layer_trainable = layer_trainable or own
        x_needs = x_needs or state or layer_trainable
    return Backward(input=inputs, weight=weights)


def cell_backward(m: nn.RNNCellBase, call: Call, grads: Grads, forward: MacCount) -> Backward:
    s = cell_spec(m)
    shape = call.input
    batch = shape[0] if len(shape) == 2 else 1
    ih, hh = batch * s.gates * s.hidden_size * s.input_size, batch * s.gates * s.hidden_size * s.hidden_size
    return Backward(
        input=ih * grads.needs(0, "input") + hh * _first(grads.arg(1, "hx")),
        weight=ih * _trainable(m.weight_ih) + hh * _trainable(m.weight_hh),
    )


BACKWARD_RULES: Mapping[str, BackwardRule] = {
    "linear": weight_product_backward,
    "conv": weight_product_backward,
    "hf_conv1d": weight_product_backward,
    "attention": attention_backward,  # type: ignore[dict-item]
    "hf_attention": activation_products_backward,
    "timm_attention": activation_products_backward,
    "bilinear": bilinear_backward,  # type: ignore[dict-item]
    "recurrent": recurrent_backward,  # type: ignore[dict-item]
    "recurrent_cell": cell_backward,  # type: ignore[dict-item]
}
"""Backward rule per MAC family (a layer rule's ``family``); a family whose forward has MACs and is not here is
``uncounted``. Extend it for one call: ``audit_training(..., backward_rules={**BACKWARD_RULES, "mine": rule})``."""


# --- the audit -----------------------------------------------------------------------------------------------------


_STUBBED_RNNS = (nn.RNN, nn.LSTM, nn.GRU)


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, PackedSequence):
        yield value.data
    elif isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)


def _grad_pass(
    model: nn.Module, inputs: list[torch.Tensor], keywords: dict[str, torch.Tensor], *, guard: bool
) -> tuple[dict[str, list[Call]], dict[str, list[Grads]]] | None:
    """The forward again (on meta, or on a zero CPU copy), autograd on: each call's shapes, and which of its
    arguments require grad; ``None`` when ``guard`` saw an op whose result depends on values."""
    paths = {id(m): name for name, m in model.named_modules()}
    flags: dict[str, list[Grads]] = {}

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        flags.setdefault(paths[id(module)], []).append(
            Grads(tuple(_flags(a) for a in args), tuple((k, _flags(v)) for k, v in kwargs.items()))
        )

    def rnn_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        # The trace's stub returns fresh tensors: they require grad where the recurrence's outputs would.
        if _trainable(*module.parameters()) or any(t.requires_grad for a in args for t in _tensors(a)):
            for tensor in _tensors(output):
                if tensor.is_leaf and not tensor.requires_grad and tensor.is_floating_point():
                    tensor.requires_grad_(True)

    handles = []
    for _, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        if type(module) in _STUBBED_RNNS and "forward" not in vars(module):
            handles.append(module.register_forward_hook(rnn_hook, with_kwargs=True))
    try:
        with torch.enable_grad():
            captured = capture(model, inputs, keyword_inputs=keywords, guard=guard)
    finally:
        for handle in handles:
            handle.remove()
    return None if captured.data_dependent else (captured.calls, flags)


def _stand_ins(given: Sequence[torch.Tensor | InputSpec], device: str) -> list[torch.Tensor]:
    """Meta or zero CPU stand-ins; a floating-point tensor given with ``requires_grad=True`` keeps it."""
    found = meta_tensors(list(given)) if device == "meta" else zero_tensors(list(given))
    for original, tensor in zip(given, found, strict=True):
        if isinstance(original, torch.Tensor) and original.requires_grad and tensor.is_floating_point():
            tensor.requires_grad_(True)
    return found


def _named_stand_ins(given: Mapping[str, torch.Tensor | InputSpec], device: str) -> dict[str, torch.Tensor]:
    return dict(zip(given, _stand_ins(list(given.values()), device), strict=True))


def _backward(
    module: nn.Module,
    forward: FlopsRecord,
    calls: list[Call],
    grads: list[Grads],
    registry: FormulaRegistry,
    rules: Mapping[str, BackwardRule],
) -> Backward:
    """One module's backward, summed over its calls."""
    found = registry.lookup_rule(type(module))
    family = found[1].family if found is not None else None
    rule = rules.get(family) if family is not None and forward.source == "formula" else None
    mac_rule = found[1].macs if found is not None else None
    if rule is None or mac_rule is None:
        if forward.macs == 0 and not forward.unsupported_ops:
            return Backward()
        why = (
            f"no backward rule for family {family!r}"
            if forward.source == "formula"
            else f"counted op by op in the forward ({forward.status.value}); no backward rule"
        )
        return Backward(exactness=Exactness.UNCOUNTED, note=f"{why}: its backward MACs are not counted")
    inputs = weights = 0
    notes: list[str] = []
    exactness = Exactness.EXACT
    for call, flags in zip(calls, grads, strict=True):
        part = rule(module, call, flags, mac_rule(module, call))
        inputs, weights = inputs + part.input, weights + part.weight
        if part.exactness is not Exactness.EXACT:
            exactness = part.exactness
        if part.note and part.note not in notes:
            notes.append(part.note)
    return Backward(inputs, weights, exactness, "; ".join(notes))


def audit_training(
    model: nn.Module,
    inputs: Sequence[torch.Tensor | InputSpec],
    *,
    keyword_inputs: Mapping[str, torch.Tensor | InputSpec] | None = None,
    registry: FormulaRegistry = REGISTRY,
    optimizer: str = "adam",
    backward_rules: Mapping[str, BackwardRule] = BACKWARD_RULES,
    forward: FlopsAudit | None = None,
) -> TrainingAudit:
    """MACs of one training step of ``model`` on ``inputs`` (tensors or :class:`InputSpec` shapes) and
    ``keyword_inputs``: the forward (:func:`archaudit.macs.audit_macs`), the backward per module (activation and
    weight gradients, by ``backward_rules``), and ``optimizer``'s element-wise work (:data:`OPTIMIZER_OPS`).

    Runs where :func:`audit_macs` does (a zero CPU copy for a small model, else meta); the caller's model is not
    touched. Parameters with
    ``requires_grad=False`` are frozen: they get no weight gradient, and no activation gradient is counted upstream
    of the first tensor that needs one. Inputs do not require grad unless a tensor given does. ``forward``: the
    forward pass's MAC audit on the same inputs, when the caller has one (it is then not traced again).
    """
    optimizer = parse_optimizer(optimizer).value
    built_on = model_device(model)
    if forward is None:
        forward = audit_macs(model, inputs, registry=registry, keyword_inputs=keyword_inputs)
    named = dict(keyword_inputs or {})
    where = trace_device(model, [*inputs, *named.values()])  # as audit_macs chooses, and falls back

    def run(twin: nn.Module, device: str) -> tuple[dict[str, list[Call]], dict[str, list[Grads]]] | None:
        return _grad_pass(twin, _stand_ins(inputs, device), _named_stand_ins(named, device), guard=device == "cpu")

    _, twin, found = cpu_else_meta(model, where, run)
    calls, grads = found
    modules = dict(twin.named_modules())
    records = []
    for r in forward.records:
        done = _backward(modules[r.name], r, calls.get(r.name, []), grads.get(r.name, []), registry, backward_rules)
        records.append(
            TrainingRecord(r.name, r.type, r.calls, r.macs, done.input, done.weight, done.exactness, done.note)
        )
    trainable = sum(p.numel() for p in twin.parameters() if p.requires_grad)
    return TrainingAudit(type(model).__name__, forward.inputs, tuple(records), optimizer, trainable, built_on)


__all__ = [
    "BACKWARD_RULES",
    "OPTIMIZER_OPS",
    "Backward",
    "BackwardRule",
    "Exactness",
    "Grads",
    "OptimizerError",
    "TrainingAudit",
    "TrainingRecord",
    "audit_training",
]
