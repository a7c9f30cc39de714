"""One audit of one model: built once, walked once, traced once.

``audit(target, inputs)`` builds the model (a TARGET string on meta, or on the CPU where meta cannot build it; or
an ``nn.Module`` as given), walks its parameters, and runs the one trace that yields its MACs, the extra columns
and the op counts of modules without a rule. Every command that shows figures (``params``, ``flops``,
``report``, ``check``) starts from here; the peer tools (:meth:`Audit.compare`) receive the built model and a
factory for a CPU copy, never the TARGET to resolve again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import ArchauditError, TargetError
from .inputs import InputSpec, meta_tensors, parse_input
from .macs import audit_macs
from .records import FlopsAudit, ModelAudit
from .registry import REGISTRY, FormulaRegistry
from .targets import BuiltTarget, build_target
from .trace import model_device, on_meta
from .walker import audit_params

if TYPE_CHECKING:
    from .peers import ToolComparison


@dataclass(frozen=True)
class Audit:
    """Everything measured on one model from one build and one trace (plain records, and the built model)."""

    target: BuiltTarget
    inputs: tuple[torch.Tensor, ...]
    """The meta tensors the trace ran on (empty when no MACs were counted)."""
    params: ModelAudit
    flops: FlopsAudit | None
    """None when the audit was asked for parameters only."""

    @property
    def name(self) -> str:
        return self.target.name

    def compare(self) -> ToolComparison:
        """torchinfo, fvcore and FlopCounterMode on the same model and inputs, beside archaudit's MACs."""
        from .peers import compare_tools

        if self.flops is None:
            raise ArchauditError(f"{self.name}: no MACs were counted (audit with macs=True) to compare tools against")
        # the tools that run on meta get the model itself when it was built there, else a meta copy
        return compare_tools(self.flops, on_meta(self.target.model), self.inputs, self.target.cpu_copy)


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


def resolve_inputs(built: BuiltTarget, inputs: Sequence[Any] | None) -> list[InputSpec | torch.Tensor]:
    """The given inputs (shape strings such as ``"1x30x17"``, :class:`InputSpec` or tensors), or the reference
    model's example input; a model that is not a reference model must be given its input."""
    if inputs:
        return [parse_input(i) if isinstance(i, str) else i for i in inputs]
    if built.reference is not None:
        return list(built.reference.example_input(batch=1, device="meta"))
    raise TargetError(f"{built.name}: give the input shape with --input (for instance --input 1x30x17)")


def audit(
    target: str | nn.Module | BuiltTarget,
    inputs: Sequence[Any] | None = None,
    *,
    device: str = "auto",
    registry: FormulaRegistry = REGISTRY,
    macs: bool = True,
) -> Audit:
    """Audit ``target``: a TARGET string (``package.module:callable``, ``file.py:callable`` or a reference-model
    name, built where ``device`` says), an ``nn.Module`` or an already built target. ``macs=False`` walks the
    parameters only (no input is needed)."""
    if isinstance(target, BuiltTarget):
        built = target
    elif isinstance(target, nn.Module):
        built = built_model(target)
    else:
        built = build_target(target, device=device)
    params = audit_params(built.model, registry=registry)
    if not macs:
        return Audit(built, (), params, None)
    given = resolve_inputs(built, inputs)
    tensors = tuple(meta_tensors(given))
    flops = audit_macs(built.model, tensors, registry=registry, build_note=built.note)
    return Audit(built, tensors, params, flops)


__all__ = ["Audit", "audit", "built_model", "resolve_inputs"]
