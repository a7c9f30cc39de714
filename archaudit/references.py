"""Reference models as plugins: what a reference entry carries, and how archaudit finds the installed ones.

A reference model is a runnable PyTorch model that documents are held against. archaudit ships none of its own:
every entry comes from a package that declares an entry point in the group :data:`ENTRY_POINT_GROUP`, whose object
is a callable returning the package's :class:`ReferenceModel` entries. This project's ``reference_models``
package is one such plugin (``pyproject.toml``)::

    [project.entry-points."archaudit.references"]
    reference_models = "reference_models:references"

An entry carries everything archaudit needs from it: its builder and example input, its provenance, its claims
files (package data of the plugin), the solver families its documents name, and how its parameter count is
quoted when another document compares against it (its published variants). archaudit never imports a plugin by
name: it loads the entry points, in the order of their names, and each plugin's entries in the order it returns.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .errors import ArchauditError
from .usercode import one_line

if TYPE_CHECKING:
    from .claims.solver import Family

ENTRY_POINT_GROUP = "archaudit.references"


class PluginError(ArchauditError, LookupError):
    """A reference-model plugin cannot be loaded, returns something that is not a list of entries, or names an
    entry that another plugin already names."""


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
    claims: tuple[Path, ...] = ()
    """Claims files (TOML) that document this model: files of the plugin's package data."""
    related: tuple[tuple[str, str], ...] = ()
    """(reference name, why) pairs: other reports this model's report cites."""
    example: Callable[..., tuple[torch.Tensor, ...]] | None = field(default=None, repr=False)
    """Example-input factory ``example(batch=1, device="cpu")``; defaults to ``randn(batch, *input_shape[1:])``."""
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """The documented configuration the builder's defaults stand for (what a scaling claim scales from)."""
    fitted_to: tuple[str, ...] = ()
    """The claims whose figures fixed one of this model's unstated hyperparameters, as ``document-id:claim-id``:
    their verdict says "holds by construction", never plain holds (a figure a model was made to match checks
    nothing)."""
    families: Mapping[str, Callable[[], Family]] = field(default_factory=dict, repr=False)
    """Solver families (by the name a claims file gives them) for the documents about this model."""
    variants: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """Published configurations, as (label, builder keyword arguments). When another document quotes this model's
    parameter count, the figure held to it is the largest variant's, each variant's count shown; with none, the
    default build's."""
    sequence_dim: int | None = None
    """The input dimension that is a sequence's length (a time series' window): a report gives the model's cost
    as a polynomial in it. None: the report varies nothing."""
    params_claims: tuple[str, ...] = ()
    """Ids of claims (in this entry's claims files) that print this model's own parameter count in a comparison
    with other models: the figure the baselines table shows for it."""

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


def _load(point: importlib.metadata.EntryPoint) -> list[ReferenceModel]:
    where = f"reference-model plugin {point.name!r} ({point.value})"
    try:
        provider = point.load()
        entries = list(provider() if callable(provider) else provider)
    except ArchauditError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's own failure, reported as one line naming the plugin
        raise PluginError(f"{where} failed to load: {one_line(exc)}") from None
    for entry in entries:
        if not isinstance(entry, ReferenceModel):
            raise PluginError(f"{where} returned a {type(entry).__name__}, not an archaudit.references.ReferenceModel")
    return entries


def discover(points: Iterable[importlib.metadata.EntryPoint] | None = None) -> tuple[ReferenceModel, ...]:
    """Every entry of every installed plugin (or of ``points``), plugins in the order of their entry-point names.

    Two entries of one name are refused, naming both plugins: which one a name means must never depend on the
    order packages were installed in.
    """
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if points is None else points
    entries: list[ReferenceModel] = []
    owner: dict[str, str] = {}
    for point in sorted(found, key=lambda p: (p.name, p.value)):
        for entry in _load(point):
            if entry.name in owner:
                raise PluginError(
                    f"reference model {entry.name!r} is named by two plugins: {owner[entry.name]!r} and {point.name!r}"
                )
            owner[entry.name] = point.name
            entries.append(entry)
    return tuple(entries)


_FOUND: list[tuple[ReferenceModel, ...]] = []


def references() -> tuple[ReferenceModel, ...]:
    """The installed reference models (found once per process: installed packages do not change under it)."""
    if not _FOUND:
        _FOUND.append(discover())
    return _FOUND[0]


def reference_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in references())


def get_reference(name: str) -> ReferenceModel:
    """The installed entry called ``name``; :class:`LookupError` listing the known names otherwise."""
    entries = references()
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(sorted(e.name for e in entries)) or f"(none: no package declares the {ENTRY_POINT_GROUP!r} group)"
    raise LookupError(f"unknown reference model {name!r}; known: {known}")


def baseline_total(name: str) -> tuple[int | None, str]:
    """The parameter count another document's claim about reference model ``name`` is held to, and its evidence:
    the default build's count, or the largest published variant's with each variant's shown; None with the
    reason when there is no such model or no public architecture."""
    from .walker import audit_params

    try:
        entry = get_reference(name)
    except LookupError as exc:
        return None, str(exc)
    if not entry.published_architecture:
        return None, f"{name}: {entry.notes or 'no public architecture'}"
    if entry.variants:
        with torch.device("meta"):
            per = {label: audit_params(entry.build(**kwargs)).total for label, kwargs in entry.variants}
        spread = ", ".join(f"{label} {n:,}" for label, n in per.items())
        return max(per.values()), f"reference model {name} as published ({spread})"
    with torch.device("meta"):
        total = audit_params(entry.build()).total
    return total, f"reference model {name} ({entry.description}): {total:,}"


__all__ = [
    "ENTRY_POINT_GROUP",
    "Assumption",
    "PluginError",
    "ReferenceModel",
    "baseline_total",
    "discover",
    "get_reference",
    "reference_names",
    "references",
]
