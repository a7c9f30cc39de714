"""The reference-model registry (entries are added by the model modules of this package)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Assumption:
    """A hyperparameter the source does not state, the value chosen, and what fixed it."""

    hyperparameter: str
    value: Any
    fixed_by: str


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    description: str
    citation: str
    input_shape: tuple[int, ...] | None
    """Shape of one example input, batch first (None when no architecture is public)."""
    builder: Callable[..., nn.Module] | None
    """Takes the hyperparameters as keyword arguments; defaults are the documented configuration."""
    provenance: tuple[Assumption, ...] = ()
    published_architecture: bool = True
    notes: str = ""
    claims: tuple[str, ...] = ()
    """Claims files (in reference_models/claims/) that document this model."""
    related: tuple[tuple[str, str], ...] = ()
    """(reference name, why) pairs: other reports this model's report cites."""
    example: Callable[..., tuple[torch.Tensor, ...]] | None = field(default=None, repr=False)
    """Example-input factory ``example(batch=1, device="cpu")``; defaults to ``randn(batch, *input_shape[1:])``."""
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """The documented configuration the builder's defaults stand for (what a scaling claim scales from)."""

    def build(self, **hyperparameters: Any) -> nn.Module:
        if self.builder is None:
            raise LookupError(f"{self.name!r} has no public architecture, so no model is built under its name")
        return self.builder(**hyperparameters)

    def example_input(self, batch: int = 1, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        if self.example is not None:
            return self.example(batch=batch, device=device)
        if self.input_shape is None:
            raise LookupError(f"{self.name!r} has no input shape")
        return (torch.randn(batch, *self.input_shape[1:], device=device),)


_REGISTRY: dict[str, ReferenceModel] = {}
_MODULE_OF: dict[str, str] = {}


def register(entry: ReferenceModel) -> ReferenceModel:
    if entry.name in _REGISTRY:
        raise ValueError(f"reference model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    _MODULE_OF[entry.name] = sys._getframe(1).f_globals.get("__name__", "").rpartition(".")[2]
    return entry


_MODEL_MODULES: tuple[str, ...] = ("amnl", "dcnn", "dast", "transformer_rul", "unpublished")


def _load_all() -> None:
    # Model modules register themselves on import; imported here so that `import reference_models` stays cheap.
    import importlib

    for module in _MODEL_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def references() -> tuple[ReferenceModel, ...]:
    """Every entry, in a fixed order (by model module as _MODEL_MODULES lists them, then as registered), whatever
    order the modules happened to be imported in."""
    _load_all()
    rank = {module: i for i, module in enumerate(_MODEL_MODULES)}
    entries = list(_REGISTRY.values())
    return tuple(sorted(entries, key=lambda e: (rank.get(_MODULE_OF[e.name], len(rank)), entries.index(e))))


def reference_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in references())


def get_reference(name: str) -> ReferenceModel:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise LookupError(f"unknown reference model {name!r}; known: {known}") from None
