"""This package's reference-model entries, and the entry point archaudit finds them through.

The entry types (:class:`~archaudit.references.ReferenceModel`, :class:`~archaudit.references.Assumption`) are
archaudit's plugin API; this package only fills them in. ``pyproject.toml`` declares :func:`references` in the
``archaudit.references`` entry-point group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from archaudit.claims.solver import Family
from archaudit.references import Assumption, ReferenceModel

CLAIMS_DIR = Path(__file__).resolve().parent / "claims"
"""The claims files of the documents these models are held against (package data)."""


def claims_files(*names: str) -> tuple[Path, ...]:
    return tuple(CLAIMS_DIR / name for name in names)


def family(name: str) -> Callable[[], Family]:
    """The solver family ``name`` of :mod:`reference_models.families`, built when a claim searches it (the
    families module imports the model modules, so it is imported only then)."""

    def build() -> Family:
        from .families import FAMILIES

        return FAMILIES[name]()

    return build


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
    order the modules happened to be imported in. The ``archaudit.references`` entry point."""
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


__all__ = ["Assumption", "ReferenceModel", "claims_files", "family", "get_reference", "reference_names", "references"]
