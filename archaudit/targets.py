"""Resolving a TARGET into a built model.

A TARGET is one of

* ``package.module:callable``: imported by name;
* ``path/to/file.py:callable``: loaded from that file;
* a reference-model name (``archaudit list`` prints them; see :mod:`archaudit.references`).

The callable is called with no arguments and must return an ``nn.Module``. ``device="meta"`` builds it under
``torch.device("meta")``, so no weight is allocated; ``device="auto"`` builds on meta when the constructor allows
it and on the CPU when it does not (a constructor that computes its widths with tensor ops needs real values),
and says which was used. Every failure raises :class:`TargetError` with one line naming what was wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import TargetError
from .trace import spare_dynamo
from .usercode import user_code

if TYPE_CHECKING:
    from .references import ReferenceModel


@dataclass(frozen=True)
class BuiltTarget:
    name: str
    model: nn.Module
    reference: ReferenceModel | None = None
    """The reference-model registry entry, when TARGET named one."""
    device: str = "cpu"
    """Where it was built: ``"meta"`` or ``"cpu"``."""
    note: str = ""
    """Why it was built where it was, when that was not the device asked for."""
    cpu_copy: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    """Builds a fresh copy on the CPU (real tensors, for the peer tools that need them): the same builder called
    again, never the TARGET string resolved a second time."""


DEVICES = ("auto", "meta", "cpu")


def _load_file(path: Path, target: str) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"{target}: no such file {str(path)!r}")
    module_name = f"_archaudit_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{target}: {str(path)!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with user_code(target, TargetError, f"importing {str(path)!r}"):
            try:
                spec.loader.exec_module(module)
            except SyntaxError as exc:
                raise TargetError(f"{target}: syntax error in {exc.filename}, line {exc.lineno}: {exc.msg}") from None
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _load_module(name: str, target: str) -> ModuleType:
    with user_code(target, TargetError, f"importing {name!r}"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                raise TargetError(f"{target}: no module named {exc.name!r}") from None
            raise


def _resolve_callable(target: str) -> Callable[[], object]:
    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise TargetError(
            f"{target!r}: expected package.module:callable, path/to/file.py:callable or a reference-model name"
        )
    module = _load_file(Path(where), target) if where.endswith(".py") else _load_module(where, target)
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"{target}: {where} has no attribute {attr!r}") from None
    if not callable(obj):
        raise TargetError(f"{target}: {attr!r} is a {type(obj).__name__}, not a callable")
    return obj


def _call(target: str, builder: Callable[[], object], meta: bool) -> nn.Module:
    where = " on the meta device" if meta else ""
    if meta:
        spare_dynamo()  # before the user's code: a failure here is archaudit's, never the builder's
    with user_code(target, TargetError, f"calling it{where}"):
        if meta:
            with torch.device("meta"):
                model = builder()
        else:
            model = builder()
    if not isinstance(model, nn.Module):
        raise TargetError(f"{target}: returned a {type(model).__name__}, not an nn.Module")
    return model


def _build(
    target: str, name: str, builder: Callable[[], object], reference: ReferenceModel | None, device: str, meta: bool
) -> BuiltTarget:
    if device not in DEVICES:
        raise TargetError(f"{target}: unknown device {device!r}; one of {', '.join(DEVICES)}")

    def cpu_copy() -> nn.Module:
        return _call(target, builder, False)

    def built(model: nn.Module, where: str, note: str = "") -> BuiltTarget:
        return BuiltTarget(name, model, reference, where, note, cpu_copy)

    if meta or device == "meta":
        return built(_call(target, builder, True), "meta")
    if device == "cpu":
        return built(_call(target, builder, False), "cpu")
    try:
        return built(_call(target, builder, True), "meta")
    except TargetError as on_meta:
        why = str(on_meta).removeprefix(f"{target}: ")
        return built(_call(target, builder, False), "cpu", f"built on the CPU: {why}")


def same_target(a: str, b: str) -> bool:
    """Whether two TARGET strings name the same model: the same reference name, module path, or file (compared
    as resolved paths) and callable."""
    if ":" not in a or ":" not in b:
        return a == b
    (file_a, _, attr_a), (file_b, _, attr_b) = a.rpartition(":"), b.rpartition(":")
    if file_a.endswith(".py") and file_b.endswith(".py"):
        return attr_a == attr_b and Path(file_a).resolve() == Path(file_b).resolve()
    return a == b


def resolve_callable(target: str) -> Callable[[], object]:
    """The callable a ``module:callable`` or ``file.py:callable`` TARGET names (imported, not called)."""
    return _resolve_callable(target)


def build_target(target: str, *, meta: bool = False, device: str = "cpu") -> BuiltTarget:
    """Resolve and build TARGET (see the module docstring); ``meta=True`` is ``device="meta"``."""
    if ":" not in target:
        from .references import get_reference

        try:
            entry = get_reference(target)
        except LookupError as exc:
            raise TargetError(str(exc.args[0]) if exc.args else str(exc)) from None
        return _build(target, entry.name, entry.build, entry, device, meta)
    return _build(target, target, _resolve_callable(target), None, device, meta)
