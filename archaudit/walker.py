"""The model walker: who owns which parameter, and how each module is accounted for.

For every module path (``named_modules(remove_duplicate=False)``, so a module registered twice is seen at
both paths) the walker records the parameters the module owns itself (``recurse=False``), splits them into
trainable and frozen, counts a tensor shared between places once (at the first path that holds it) and
names every place that shares it, lists buffers apart, and gives the module exactly one status:

* ``formula``: its type (or a base class, along the MRO) has an analytic formula, and that formula was checked
  against ``numel()`` of the module's parameters (children included);
* ``direct``: no formula applies, and it holds parameters itself (plain ``nn.Parameter`` attributes: ViT's
  ``class_token``, a LayerScale's ``gamma``). ``numel()`` counts them exactly, so nothing is unknown: the record
  lists them by local name and shape;
* ``zero``: it owns no parameters (a known parameter-free layer, or a container whose children are counted);
* ``unsupported``: a formula applies and cannot be trusted here (it cannot read the module, or a subclass holds
  parameters its base's formula does not cover). Its ``numel()`` is still counted.

It also finds modules kept in plain Python lists, tuples, sets or dicts on a module: PyTorch does not
register them, so ``.parameters()``, ``.to()`` and every optimizer miss them.

Nothing here allocates: it reads shapes, so a model built on the meta device is walked as cheaply as any.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from . import formulas as _formulas  # noqa: F401  (registers every formula family)
from .errors import ArchauditError, FormulaMismatchError, LazyModuleError
from .records import ModelAudit, ModuleRecord, SharedTensor, Status, UnregisteredModule
from .registry import KNOWN_ZERO, REGISTRY, FormulaRegistry, LayerFormula


def _type_path(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _check_initialised(path: str, module: nn.Module) -> None:
    for kind, tensors in (("parameter", module._parameters), ("buffer", module._buffers)):
        for local, tensor in tensors.items():
            if tensor is not None and nn.parameter.is_lazy(tensor):
                where = path or "(root)"
                raise LazyModuleError(
                    f"module {where!r} ({type(module).__name__}) has an uninitialised {kind} {local!r}: "
                    "run one forward pass on an example input (or build it non-lazily) before auditing"
                )


def direct_parameters(module: nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The parameters ``module`` holds itself (``recurse=False``), by local name and shape, in registration order."""
    return tuple((local, tuple(p.shape)) for local, p in module._parameters.items() if p is not None)


def _direct_note(direct: tuple[tuple[str, tuple[int, ...]], ...]) -> str:
    """``"direct parameters: gamma (768), class_token (1x1x768)"``."""
    return "direct parameters: " + ", ".join(
        f"{local} ({'x'.join(map(str, shape)) or 'scalar'})" for local, shape in direct
    )


def _classify(
    module: nn.Module, own_params: int, registry: FormulaRegistry
) -> tuple[Status, str | None, str | None, int | None, int | None, str]:
    """(status, family, formula text, formula value, subtree numel, note) for one module."""
    found = registry.lookup(type(module))
    if found is None:
        if own_params == 0:
            note = "container: its children are counted" if len(module._modules) else "owns no parameters"
            return Status.ZERO, None, None, None, None, note
        return Status.DIRECT, None, None, None, None, _direct_note(direct_parameters(module))

    registered_as, entry = found
    inherited = registered_as is not type(module)
    if entry is KNOWN_ZERO:
        if own_params == 0:
            note = "container: its children are counted" if module._modules else "known parameter-free"
            return Status.ZERO, "zero", None, None, None, note
        # Its parameters are its own, held directly: numel() counts them exactly, as for a type without a rule.
        note = f"subclass of parameter-free {registered_as.__name__}; {_direct_note(direct_parameters(module))}"
        return Status.DIRECT, None, None, None, None, note

    if not isinstance(entry, LayerFormula):  # the registry holds nothing else
        raise TypeError(f"unexpected registry entry {entry!r}")
    subtree = sum(p.numel() for p in module.parameters())
    try:
        value = entry.count(module)
        text = entry.describe(module)
    except (AttributeError, TypeError, ValueError) as exc:
        return (
            Status.UNSUPPORTED,
            None,
            None,
            None,
            subtree,
            f"{registered_as.__name__} formula could not read this module: {exc}",
        )
    if value != subtree and inherited:
        return (
            Status.UNSUPPORTED,
            None,
            None,
            None,
            subtree,
            f"subclass of {registered_as.__name__} with parameters its formula does not cover "
            f"(formula {value:,}, numel {subtree:,})",
        )
    note = f"counted as {registered_as.__name__}" if inherited else ""
    if value != subtree:
        note = f"FORMULA DISAGREES WITH numel(): formula {value:,}, numel {subtree:,}"
    return Status.FORMULA, entry.family, text, value, subtree, note


def _plain_container_modules(value: object, where: str, depth: int = 0) -> Iterator[tuple[str, nn.Module]]:
    """Modules inside plain lists, tuples, sets and dicts (nested), with their index path."""
    if depth > 4:
        return
    if isinstance(value, nn.Module):
        yield where, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _plain_container_modules(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _plain_container_modules(item, f"{where}[{key!r}]", depth + 1)
    elif isinstance(value, (set, frozenset)):
        for i, item in enumerate(value):
            yield from _plain_container_modules(item, f"{where}{{{i}}}", depth + 1)


_REGISTERED_SLOTS = frozenset({"_modules", "_parameters", "_buffers"})


def _find_unregistered(
    paths: list[tuple[str, nn.Module]], registered_modules: set[int], registered_tensors: set[int]
) -> tuple[UnregisteredModule, ...]:
    found: list[UnregisteredModule] = []
    seen: set[int] = set()
    stack = [(path, module) for path, module in paths]
    while stack:
        path, module = stack.pop(0)
        for attr, value in vars(module).items():
            if attr in _REGISTERED_SLOTS or not isinstance(value, (list, tuple, dict, set, frozenset)):
                continue
            base = f"{path}.{attr}" if path else attr
            for where, hidden in _plain_container_modules(value, base):
                if id(hidden) in registered_modules or id(hidden) in seen:
                    continue
                seen.add(id(hidden))
                extra = sum(p.numel() for p in hidden.parameters() if id(p) not in registered_tensors)
                found.append(UnregisteredModule(where, type(hidden).__name__, extra))
                # Look inside it too: a hidden module may hide more of its own.
                stack.extend((f"{where}.{n}" if n else where, m) for n, m in hidden.named_modules())
    return tuple(found)


class ModuleCycleError(ArchauditError, ValueError):
    """A module contains itself (directly or through its children): PyTorch's own walks never end on it."""


def module_paths(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every path to every module, a module registered twice at each of its paths (as
    ``named_modules(remove_duplicate=False)`` lists them, in the same order), refusing a module that contains
    itself, where that listing recurses without end."""
    out: list[tuple[str, nn.Module]] = []
    # (path, module, ids of the modules above it): depth first, children in registration order
    pending: list[tuple[str, nn.Module, frozenset[int]]] = [("", model, frozenset())]
    while pending:
        path, module, above = pending.pop()
        out.append((path, module))
        inner = above | {id(module)}
        children = []
        for name, child in module._modules.items():
            if child is None:
                continue
            child_path = f"{path}.{name}" if path else name
            if id(child) in inner:
                holder = next(p for p, m in out if m is child)
                raise ModuleCycleError(
                    f"module path {child_path!r} is {holder or '(root)'!r} itself: the model "
                    "contains itself, so no walk of it ends"
                )
            children.append((child_path, child, inner))
        pending.extend(reversed(children))
    return out


def audit_params(model: nn.Module, *, registry: FormulaRegistry = REGISTRY, strict: bool = False) -> ModelAudit:
    """Walk ``model`` and return its immutable parameter audit.

    ``strict=True`` raises :class:`FormulaMismatchError` when a formula disagrees with ``numel()`` on a
    module of exactly its registered type; otherwise such modules are kept and listed in
    :attr:`ModelAudit.mismatches`.
    Raises :class:`LazyModuleError` naming the first lazy module with uninitialised parameters.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"audit_params expects an nn.Module, got {type(model).__name__}")

    paths = module_paths(model)
    for path, module in paths:
        _check_initialised(path, module)

    first_holder: dict[int, list[str]] = {}
    buffer_holder: dict[int, list[str]] = {}
    tensor_size: dict[int, int] = {}
    records: list[ModuleRecord] = []
    for path, module in paths:
        own = counted = trainable = frozen = nbytes = 0
        shared_here: list[str] = []
        for local, p in module._parameters.items():
            if p is None:
                continue
            qualified = f"{path}.{local}" if path else local
            n = p.numel()
            own += n
            holders = first_holder.setdefault(id(p), [])
            holders.append(qualified)
            tensor_size[id(p)] = n
            if len(holders) > 1:
                shared_here.append(local)
                continue
            counted += n
            nbytes += n * p.element_size()
            if p.requires_grad:
                trainable += n
            else:
                frozen += n
        buffers = buffer_bytes = 0
        for local, b in module._buffers.items():
            if b is None:
                continue
            holders = buffer_holder.setdefault(id(b), [])
            holders.append(f"{path}.{local}" if path else local)
            tensor_size[id(b)] = b.numel()
            if len(holders) == 1:
                buffers += b.numel()
                buffer_bytes += b.numel() * b.element_size()

        status, family, text, value, subtree, note = _classify(module, own, registry)
        if status is Status.FORMULA and value != subtree and strict:
            raise FormulaMismatchError(
                f"module {path or '(root)'!r} ({type(module).__name__}): formula {text} = {value:,} "
                f"but numel() = {subtree:,}"
            )
        records.append(
            ModuleRecord(
                name=path,
                type=type(module).__name__,
                type_path=_type_path(type(module)),
                depth=path.count(".") + 1 if path else 0,
                leaf=not module._modules,
                own_params=own,
                params=counted,
                trainable=trainable,
                frozen=frozen,
                param_bytes=nbytes,
                buffers=buffers,
                buffer_bytes=buffer_bytes,
                status=status,
                family=family,
                formula=text,
                formula_params=value,
                subtree_params=subtree,
                shared=tuple(shared_here),
                note=note,
                direct=direct_parameters(module) if status is Status.DIRECT else (),
            )
        )

    shared = tuple(
        SharedTensor(tuple(names), tensor_size[key], kind)
        for kind, holders in (("parameter", first_holder), ("buffer", buffer_holder))
        for key, names in holders.items()
        if len(names) > 1
    )
    unregistered = _find_unregistered(paths, {id(m) for _, m in paths}, set(first_holder) | set(buffer_holder))
    device = _device_of(model)
    return ModelAudit(type(model).__name__, device, tuple(records), shared, unregistered)


def _device_of(model: nn.Module) -> str:
    devices = {str(t.device) for t in model.parameters()} | {str(t.device) for t in model.buffers()}
    if not devices:
        return "none"
    return ", ".join(sorted(devices))


__all__ = ["ModuleCycleError", "audit_params", "direct_parameters", "module_paths"]
