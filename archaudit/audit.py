"""One audit of one model: built once, walked once, traced once.

``audit(target, inputs)`` builds the model (a TARGET string on meta, or on the CPU where meta cannot build it; or
an ``nn.Module`` as given), walks its parameters, and runs the one trace that yields its MACs, the extra columns
and the op counts of modules without a rule. Every command that shows figures (``params``, ``flops``,
``report``, ``check``) starts from here; the peer tools (:meth:`Audit.compare`) receive the built model and a
factory for a CPU copy, never the TARGET to resolve again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import ArchauditError, TargetError
from .inputs import InputSpec, meta_tensors, parse_input
from .macs import audit_macs
from .records import FlopsAudit, ModelAudit
from .registry import REGISTRY, FormulaRegistry
from .render._fmt import shapes
from .targets import BuiltTarget, build_target
from .trace import model_device, on_meta
from .walker import audit_params

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .estimates import Estimate, TransformerDims
    from .memory import MemoryAudit
    from .peers import ToolComparison, ToolRuns
    from .training import TrainingAudit


@dataclass(frozen=True)
class ModuleRow:
    """One row of an audit's module table: a module path's own figures, or, for a path at the folding depth,
    its own figures plus those of every path below it (``folded`` of them)."""

    name: str
    type: str
    depth: int
    params: int
    """Parameters counted at this path (each tensor once, at the first path that holds it)."""
    trainable: int
    frozen: int
    buffers: int
    params_status: str
    macs: int
    bias: int
    norm: int
    activation: int
    softmax: int
    macs_status: str
    """``formula``, ``ops``, ``zero``, ``unsupported``, or ``""`` when MACs were not counted."""
    calls: int
    input_shapes: str
    output_shapes: str
    folded: int = 0
    """How many deeper module paths are summed into this row (0: its own figures only)."""


def module_rows(params: ModelAudit, flops: FlopsAudit | None, depth: int | None = None) -> tuple[ModuleRow, ...]:
    """One row per module path in model order; with ``depth``, the paths deeper than ``depth`` are summed into their
    ancestor at that depth (the root is depth 0), as torchinfo's ``depth`` and fvcore's ``max_depth``."""
    if depth is not None and depth < 0:
        raise ValueError(f"depth {depth}: expected 0 or more")
    by_name = {r.name: r for r in flops.records} if flops is not None else {}
    rows: dict[str, ModuleRow] = {}
    for record in params.records:
        fr = by_name.get(record.name)
        row = ModuleRow(
            name=record.name,
            type=record.type,
            depth=record.depth,
            params=record.params,
            trainable=record.trainable,
            frozen=record.frozen,
            buffers=record.buffers,
            params_status=record.status.value,
            macs=fr.macs if fr else 0,
            bias=fr.counts.bias if fr else 0,
            norm=fr.counts.norm if fr else 0,
            activation=fr.counts.activation if fr else 0,
            softmax=fr.counts.softmax if fr else 0,
            macs_status=fr.status.value if fr else "",
            calls=fr.calls if fr else 0,
            input_shapes=shapes(fr.input_shapes) if fr else "",
            output_shapes=shapes(fr.output_shapes) if fr else "",
        )
        if depth is None or record.depth <= depth:
            rows[record.name] = row
            continue
        parent = rows[".".join(record.name.split(".")[:depth])]
        rows[parent.name] = replace(
            parent,
            params=parent.params + row.params,
            trainable=parent.trainable + row.trainable,
            frozen=parent.frozen + row.frozen,
            buffers=parent.buffers + row.buffers,
            macs=parent.macs + row.macs,
            bias=parent.bias + row.bias,
            norm=parent.norm + row.norm,
            activation=parent.activation + row.activation,
            softmax=parent.softmax + row.softmax,
            folded=parent.folded + 1,
        )
    return tuple(rows.values())


@dataclass(frozen=True)
class Audit:
    """Everything measured on one model from one build and one trace (plain records, and the built model)."""

    target: BuiltTarget
    inputs: tuple[torch.Tensor, ...]
    """The meta tensors the trace ran on (empty when no MACs were counted, unless resolved with ``with_inputs``)."""
    params: ModelAudit
    flops: FlopsAudit | None
    """None when the audit was asked for parameters only."""
    keyword_inputs: tuple[tuple[str, torch.Tensor], ...] = ()
    """The meta tensors passed by name, in order."""
    registry: FormulaRegistry = REGISTRY
    """The layer rules the MACs were counted with."""

    @property
    def name(self) -> str:
        return self.target.name

    def totals(self) -> dict[str, int]:
        """The model's totals, by name: parameters (each tensor once), trainable, frozen, buffers, shared
        parameters (counted once: the extra references), modules with direct parameters, unsupported modules, and
        with MACs counted, MACs, FLOPs, every extra column and the unsupported MAC modules and op runs."""
        p = self.params
        totals = {
            "parameters": p.total,
            "trainable": p.trainable,
            "frozen": p.frozen,
            "buffers": p.buffers,
            "shared tensors": len(p.shared),
            "direct-parameter modules": len(p.direct),
            "unsupported modules (parameters)": len(p.unsupported),
        }
        if self.flops is not None:
            counts = self.flops.counts
            totals |= {
                "MACs": counts.macs,
                "FLOPs": 2 * counts.macs,
                "bias additions": counts.bias,
                "normalised elements": counts.norm,
                "activation elements": counts.activation,
                "softmax elements": counts.softmax,
                "modules counted op by op": len(self.flops.by_ops),
                "unsupported modules (MACs)": len(self.flops.unsupported),
                "unsupported op runs": sum(self.flops.unsupported_ops.values()),
            }
        return totals

    def rows(self, depth: int | None = None) -> tuple[ModuleRow, ...]:
        """One row per module path in model order; with ``depth``, the paths deeper than ``depth`` are summed into
        their ancestor at that depth (the root is depth 0), as torchinfo's ``depth`` and fvcore's ``max_depth``."""
        return module_rows(self.params, self.flops, depth)

    def to_frame(self, depth: int | None = None) -> pd.DataFrame:
        """The module table as a pandas DataFrame, one row per :class:`ModuleRow` (pandas is imported here)."""
        from .render.notebook import audit_frame

        return audit_frame(self, depth)

    def to_markdown(self, depth: int | None = None) -> str:
        """Totals first, then the module table (folded below ``depth``), shared tensors, direct parameters and
        unsupported work, as Markdown."""
        from .render.notebook import audit_markdown

        return audit_markdown(self, depth)

    def to_html(self, depth: int | None = None) -> str:
        from .render.notebook import audit_html

        return audit_html(self, depth)

    def to_json(self) -> str:
        """Parameters and MACs per module with every total, as JSON text (the CLI's ``params`` and ``flops``
        JSON under ``"params"`` and ``"flops"``)."""
        from .render.notebook import audit_json

        return audit_json(self)

    def chart(self) -> Figure:
        """Parameters and MACs per top-level module, as a matplotlib figure."""
        from .render.notebook import audit_chart

        return audit_chart(self)

    NOTEBOOK_DEPTH = 2
    """How deep a notebook's display goes before it folds (``to_markdown()`` and ``to_html()`` show it all)."""

    def _repr_markdown_(self) -> str:
        return self.to_markdown(depth=self.NOTEBOOK_DEPTH)

    def _repr_html_(self) -> str:
        return self.to_html(depth=self.NOTEBOOK_DEPTH)

    def __repr__(self) -> str:
        totals = self.totals()
        parts = [f"{totals['parameters']:,} parameters ({totals['trainable']:,} trainable)"]
        if totals["shared tensors"]:
            parts.append(f"{totals['shared tensors']} shared tensor{'s' if totals['shared tensors'] > 1 else ''}")
        if self.flops is not None:
            inputs = ", ".join(self.flops.inputs)
            parts.append(f"{totals['MACs']:,} MACs on {inputs}")
            unsupported = totals["unsupported modules (MACs)"] + totals["unsupported modules (parameters)"]
            parts.append(f"{unsupported} unsupported")
        return f"<archaudit.Audit of {self.name}: {'; '.join(parts)}>"

    def compare(self) -> ToolComparison:
        """torchinfo, fvcore and FlopCounterMode on the same model and inputs, beside archaudit's MACs."""
        return self.line_up(self.run_tools())

    def run_tools(self, half: str | None = None) -> ToolRuns:
        """The peer tools' runs on this audit's model and inputs: all of them, or one of
        :data:`archaudit.peers.HALVES` (independent of each other: side by side, then :meth:`line_up`)."""
        from .peers import run_tools

        self._macs_counted()
        # the tools that run on meta get the model itself when it was built there, else a meta copy
        return run_tools(
            on_meta(self.target.model),
            self.inputs,
            self.target.cpu_copy,
            half=half,
            meta_keywords=dict(self.keyword_inputs),
        )

    def line_up(self, runs: ToolRuns) -> ToolComparison:
        """The tools' runs beside archaudit's MACs, per top-level module."""
        from .peers import line_up

        return line_up(self._macs_counted(), self.target.model, runs)

    def with_macs(self) -> Audit:
        """This audit with its MACs counted (one trace on its inputs), or itself when they are. An audit made with
        ``macs=False`` must have resolved its inputs (``with_inputs=True``)."""
        if self.flops is not None:
            return self
        if not self.inputs and not self.keyword_inputs:
            raise ArchauditError(f"{self.name}: no inputs were resolved (audit with with_inputs=True) to trace on")
        flops = audit_macs(
            self.target.model,
            self.inputs,
            registry=self.registry,
            build_note=self.target.note,
            keyword_inputs=dict(self.keyword_inputs),
        )
        return replace(self, flops=flops)

    def _macs_counted(self) -> FlopsAudit:
        if self.flops is None:
            raise ArchauditError(f"{self.name}: no MACs were counted (audit with macs=True) to compare tools against")
        return self.flops

    def training(self, optimizer: str = "adam", *, registry: FormulaRegistry | None = None) -> TrainingAudit:
        """MACs of one training step on the audit's inputs: forward, backward (activation and weight gradients,
        none for frozen weights) and the optimizer's element-wise work (:func:`archaudit.training.audit_training`)."""
        from .training import audit_training

        return audit_training(
            self.target.model,
            self.inputs,
            keyword_inputs=dict(self.keyword_inputs),
            registry=registry or self.registry,
            optimizer=optimizer,
            # the forward this audit traced is not traced again (with the same rules)
            forward=self.flops if registry in (None, self.registry) else None,
        )

    def memory(
        self, optimizer: str = "adam", precision: str = "fp32", *, kv_cache_tokens: int | None = None
    ) -> MemoryAudit:
        """Bytes of a training step and of inference on the audit's inputs (:func:`archaudit.memory.audit_memory`)."""
        from .memory import audit_memory

        return audit_memory(
            self.target.model,
            self.inputs,
            keyword_inputs=dict(self.keyword_inputs),
            optimizer=optimizer,
            precision=precision,
            kv_cache_tokens=kv_cache_tokens,
        )

    def estimates(self, training: TrainingAudit | None = None) -> tuple[TransformerDims, tuple[Estimate, ...]] | None:
        """The closed-form FLOP estimates the literature quotes (6N, Kaplan, PaLM, Chinchilla, Megatron), from the
        model's detected transformer dimensions, each beside the exact count; None for a model that is not a
        transformer (:func:`archaudit.estimates.detect_dimensions`)."""
        from .estimates import detect_dimensions, estimates

        if self.flops is None:
            raise ArchauditError(f"{self.name}: no MACs were counted (audit with macs=True) to set estimates against")
        tokens = self.inputs[0] if self.inputs else dict(self.keyword_inputs).get("input_ids")
        if tokens is None and self.keyword_inputs:
            tokens = self.keyword_inputs[0][1]
        # the estimates are per token: token ids (batch x length) or a sequence of feature vectors (batch x length x
        # features); an image's dim 1 is its channels, and no length is read from it
        if tokens is None or not (
            (tokens.dim() == 2 and not tokens.is_floating_point()) or (tokens.dim() == 3 and tokens.is_floating_point())
        ):
            return None
        try:
            dims = detect_dimensions(self.target.model, tuple(tokens.shape))
        except (TypeError, ValueError):  # a config whose fields read as no transformer (Swin's heads per stage)
            return None
        if dims is None:
            return None
        found = estimates(
            dims,
            params_total=self.params.total,
            params_non_embedding=self.params.total - dims.embedding_params,
            exact_forward_macs=self.flops.macs,
            exact_training_macs=None if training is None else training.total,
        )
        return dims, found


def _cpu_copy_of(model: nn.Module) -> Callable[[], nn.Module]:
    """A factory for a CPU copy of a model given as an object: a deep copy, and for a model on meta its tensors
    materialised (``to_empty``) and re-initialised by each module's own ``reset_parameters`` under a fixed seed.
    Buffers a constructor computes (index tables, masks) cannot be recomputed that way; a peer tool that fails on
    them is reported with its error, beside the others."""

    def build() -> nn.Module:
        clone = copy.deepcopy(model)
        if model_device(clone) != "meta":
            return clone.cpu()
        clone = clone.to_empty(device="cpu")
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            for module in clone.modules():
                for reset in ("reset_parameters", "reset_running_stats"):
                    method = getattr(module, reset, None)
                    if callable(method):
                        method()
        return clone

    return build


def built_model(model: nn.Module, name: str | None = None) -> BuiltTarget:
    """An ``nn.Module`` given as an object, as a :class:`BuiltTarget` (it is used as is, never copied to audit)."""
    return BuiltTarget(name or type(model).__name__, model, None, model_device(model), "", _cpu_copy_of(model))


def _example_inputs(model: nn.Module) -> tuple[list[Any], dict[str, Any]] | None:
    """The example a model carries, as (positional, by name): Lightning's ``example_input_array`` (a tensor, a
    tuple of them or a dict), else Hugging Face's ``dummy_inputs`` (a dict of tensors); None without one."""
    for attribute in ("example_input_array", "dummy_inputs"):
        try:
            example = getattr(model, attribute, None)
        except Exception:  # noqa: BLE001 - a property that fails to build its example is no example
            example = None
        if isinstance(example, torch.Tensor):
            return [example], {}
        if isinstance(example, (tuple, list)) and example and all(isinstance(t, torch.Tensor) for t in example):
            return list(example), {}
        if isinstance(example, dict) and example and all(isinstance(t, torch.Tensor) for t in example.values()):
            return [], {str(k): t for k, t in example.items()}
    return None


def _spec(value: Any, what: str) -> InputSpec | torch.Tensor:
    if isinstance(value, str):
        return parse_input(value)
    if isinstance(value, (InputSpec, torch.Tensor)):
        return value
    raise TargetError(
        f"{what}: expected a shape string such as '1x3x32x32', an InputSpec or a tensor, got {value!r:.60}"
    )


def resolve_inputs(
    built: BuiltTarget, inputs: Sequence[Any] | None, keyword_inputs: Mapping[str, Any] | None = None
) -> tuple[list[InputSpec | torch.Tensor], dict[str, InputSpec | torch.Tensor]]:
    """The given inputs (shape strings such as ``"1x30x17"`` or ``"1x128:int64"``, :class:`InputSpec` or tensors;
    positional and by name), else the reference model's example input, else the example the model carries
    (``example_input_array``, ``dummy_inputs``); a model with none of these must be given its input."""
    if inputs or keyword_inputs:
        positional = [_spec(v, f"{built.name}: input {i}") for i, v in enumerate(inputs or ())]
        named = {k: _spec(v, f"{built.name}: input {k}=") for k, v in (keyword_inputs or {}).items()}
        return positional, named
    if built.reference is not None:
        # CPU, not meta: a reference model's example is small, and torch's meta randn imports sympy (0.8 s)
        inputs = built.reference.example_input(batch=1, device="cpu")
        return [InputSpec(tuple(t.shape), t.dtype) for t in inputs], {}
    example = _example_inputs(built.model)
    if example is not None:
        return list(example[0]), dict(example[1])
    raise TargetError(
        f"{built.name}: no example input: give its input shapes (audit(model, '1x3x224x224'), "
        "input_ids='1x128:int64' by name; --input on the command line)"
    )


def merge_keyword_inputs(keyword_inputs: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs by name given as ``keyword_inputs={...}`` and as keyword arguments, together; a name given both
    ways is refused."""
    merged = dict(keyword_inputs or {})
    for name, value in more.items():
        if name in merged:
            raise TargetError(f"input {name}= is given twice (by name and in keyword_inputs)")
        merged[name] = value
    return merged


def audit(
    target: str | nn.Module | BuiltTarget,
    *inputs: Any,
    device: str = "auto",
    registry: FormulaRegistry = REGISTRY,
    macs: bool = True,
    keyword_inputs: Mapping[str, Any] | None = None,
    with_inputs: bool = False,
    **more_keyword_inputs: Any,
) -> Audit:
    """Audit ``target``: an ``nn.Module``, a TARGET string (``package.module:callable``, ``file.py:callable`` or
    a reference-model name, built where ``device`` says) or an already built target.

    ``inputs`` are its positional inputs and ``keyword_inputs`` those it takes by name, each a shape string
    (``"1x3x32x32"``, ``"1x128:int64"``), an :class:`~archaudit.inputs.InputSpec` or a tensor (only its shape
    and dtype are used); with none, the example the model carries is used (a reference model's,
    ``example_input_array``, ``dummy_inputs``). ``device``, ``registry``, ``macs``, ``with_inputs`` and
    ``keyword_inputs`` are archaudit's own names: a model input called one of those goes in ``keyword_inputs={...}``,
    a mapping of inputs by name that is merged with the others. ``macs=False`` walks the parameters only; with
    ``with_inputs`` it also resolves the inputs (as meta tensors), without tracing: what a memory audit needs.
    """
    if not isinstance(with_inputs, bool):
        raise TypeError(
            f"with_inputs={with_inputs!r}: archaudit's own flag (True or False); "
            "a model input of that name goes in keyword_inputs={...}"
        )
    named_given = merge_keyword_inputs(keyword_inputs, more_keyword_inputs)
    if isinstance(target, BuiltTarget):
        built = target
    elif isinstance(target, nn.Module):
        built = built_model(target)
    else:
        built = build_target(target, device=device)
    params = audit_params(built.model, registry=registry)
    if not macs and not with_inputs:
        return Audit(built, (), params, None, registry=registry)
    positional, named = resolve_inputs(built, inputs, named_given)
    tensors = tuple(meta_tensors(positional))
    keywords = tuple(zip(named, meta_tensors(list(named.values())), strict=True))
    resolved = Audit(built, tensors, params, None, keywords, registry)
    return resolved.with_macs() if macs else resolved


__all__ = ["Audit", "audit", "built_model", "resolve_inputs"]
