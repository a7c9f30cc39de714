"""One registry of analytic formulas, keyed by ``nn.Module`` type.

A formula is a pure function of a small frozen *spec*; an adapter builds the spec from a module. Lookup
walks the module type's MRO, so a subclass inherits its base class's formula (``NonDynamicallyQuantizableLinear``
is counted as a ``Linear``). Registration refuses a key that is not an ``nn.Module`` subclass and a type
that is already registered, so one formula can never silently replace another.

Types known to own no parameters (activations, dropout, pooling ...) are registered as *known zero*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from torch import nn

from .errors import RegistryError

S = TypeVar("S")
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class LayerFormula(Generic[S]):
    """How one layer family is counted.

    ``spec`` reads the module's hyperparameters into a frozen spec; ``params`` is pure arithmetic on that
    spec and gives every parameter the module holds *including its children* (what ``module.parameters()``
    yields); ``expression`` renders that arithmetic for a report, e.g. ``"256*128 + 128"``.
    """

    family: str
    spec: Callable[[nn.Module], S]
    params: Callable[[S], int]
    expression: Callable[[S], str]

    def count(self, module: nn.Module) -> int:
        return self.params(self.spec(module))

    def describe(self, module: nn.Module) -> str:
        return self.expression(self.spec(module))


class _KnownZero:
    """Marker for types that own no parameters by construction."""

    family = "zero"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "KNOWN_ZERO"


KNOWN_ZERO = _KnownZero()

Entry = LayerFormula[Any] | _KnownZero


def _check_key(key: object) -> type[nn.Module]:
    if not (isinstance(key, type) and issubclass(key, nn.Module)):
        raise RegistryError(f"formula keys must be nn.Module subclasses, got {key!r}")
    return key


MacRule = Callable[[Any, Any], Any]
"""``rule(module, call) -> MacCount``: the MACs of one forward call (see :mod:`archaudit.records`)."""


def _along_mro(table: dict[type[nn.Module], Any], layer_type: type[nn.Module]) -> tuple[type[nn.Module], Any] | None:
    for base in layer_type.__mro__:
        value = table.get(base)
        if value is not None:
            return base, value
    return None


class FormulaRegistry:
    """Maps ``nn.Module`` types to a :class:`LayerFormula` or to :data:`KNOWN_ZERO` (parameters), and to a MAC
    rule (compute). The two maps are kept apart so that each can be checked for completeness on its own."""

    def __init__(self) -> None:
        self._entries: dict[type[nn.Module], Entry] = {}
        self._macs: dict[type[nn.Module], MacRule] = {}

    def _add(self, keys: tuple[object, ...], entry: Entry) -> None:
        """Add ``entry`` under every key, or under none: all keys are checked before any is added."""
        checked: list[type[nn.Module]] = []
        for key in keys:
            layer_type = _check_key(key)
            if layer_type in self._entries:
                raise RegistryError(
                    f"{layer_type.__qualname__} is already registered (as {self._entries[layer_type].family!r})"
                )
            checked.append(layer_type)
        if len(set(keys)) != len(keys):
            raise RegistryError(f"a type is listed twice in {keys!r}")
        for layer_type in checked:
            self._entries[layer_type] = entry

    def register(
        self,
        *layer_types: type[nn.Module],
        family: str,
        params: Callable[[S], int],
        expression: Callable[[S], str],
    ) -> Callable[[Callable[[M], S]], Callable[[M], S]]:
        """Decorate a spec adapter to register ``params`` for each of ``layer_types``."""
        if not layer_types:
            raise RegistryError("register() needs at least one nn.Module type")
        for key in layer_types:
            _check_key(key)

        def decorate(adapter: Callable[[M], S]) -> Callable[[M], S]:
            # Lookup walks the MRO from a module's own type to a registered key, so the adapter is only ever
            # handed instances of ``layer_types``: the subclass it is annotated with.
            spec = cast("Callable[[nn.Module], S]", adapter)
            self._add(layer_types, LayerFormula(family=family, spec=spec, params=params, expression=expression))
            return adapter

        return decorate

    def register_zero(self, *layer_types: type[nn.Module]) -> None:
        """Register types that own no parameters (their ``numel()`` total is 0 by construction)."""
        self._add(layer_types, KNOWN_ZERO)

    def register_macs(self, *layer_types: type[nn.Module]) -> Callable[[MacRule], MacRule]:
        """Decorate ``rule(module, call) -> MacCount`` to register it for each of ``layer_types``."""
        if not layer_types:
            raise RegistryError("register_macs() needs at least one nn.Module type")
        for key in layer_types:
            _check_key(key)
            if key in self._macs:
                raise RegistryError(f"{key.__qualname__} already has a MAC rule")
        if len(set(layer_types)) != len(layer_types):
            raise RegistryError(f"a type is listed twice in {layer_types!r}")

        def decorate(rule: MacRule) -> MacRule:
            for key in layer_types:
                self._macs[key] = rule
            return rule

        return decorate

    def lookup_macs(self, layer_type: type[nn.Module]) -> tuple[type[nn.Module], MacRule] | None:
        """The MAC rule for ``layer_type``, found along its MRO, with the type it was registered under."""
        return _along_mro(self._macs, layer_type)

    def mac_types(self) -> list[type[nn.Module]]:
        return list(self._macs)

    def lookup(self, layer_type: type[nn.Module]) -> tuple[type[nn.Module], Entry] | None:
        """The entry for ``layer_type``, found along its MRO, with the type it was registered under."""
        return _along_mro(self._entries, layer_type)

    def __contains__(self, layer_type: object) -> bool:
        return layer_type in self._entries

    def __iter__(self) -> Iterator[type[nn.Module]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[tuple[type[nn.Module], Entry]]:
        return iter(self._entries.items())

    def formula_types(self) -> list[type[nn.Module]]:
        return [t for t, e in self._entries.items() if isinstance(e, LayerFormula)]

    def zero_types(self) -> list[type[nn.Module]]:
        return [t for t, e in self._entries.items() if e is KNOWN_ZERO]


REGISTRY = FormulaRegistry()
"""The registry every formula module in :mod:`archaudit.formulas` registers into."""
