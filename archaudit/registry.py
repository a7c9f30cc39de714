"""One registry of layer rules, keyed by ``nn.Module`` type or by a type's qualified name.

A :class:`LayerRule` is everything archaudit counts for a layer type, declared once for the types it covers:

* its parameters: a :class:`LayerFormula` (an adapter that reads a small frozen spec off the module, pure
  arithmetic on that spec, and that arithmetic as text for a report), or :data:`KNOWN_ZERO` for a type that owns
  no parameters by construction;
* its compute: a MAC rule ``macs(module, call) -> MacCount`` for one forward call, which also fills the columns
  beside MACs (bias, norm, activation, softmax); or, deliberately, none, with the reason (``no_macs=``), and the
  module's own work is then counted from its traced ops.

A family's file declares its rules in one call per type group::

    REGISTRY.rule(
        nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
        family="conv", spec=conv_spec, params=conv_params, expression=_conv_expr, macs=_conv_call,
    )
    REGISTRY.zero(*DROPOUT, family="dropout", macs=_no_macs)

A key is an ``nn.Module`` subclass, or the qualified name ``f"{t.__module__}.{t.__qualname__}"`` of one
(``"transformers.pytorch_utils.Conv1D"``): a name is matched without importing the package that defines the type,
so declaring it costs nothing to a user who does not have that package. Lookup walks the module type's MRO and for
each base tries the rule keyed by that type, then the rule keyed by its name; the first rule found decides both
parameters and MACs. So a subclass inherits its base's rule (``NonDynamicallyQuantizableLinear`` is counted as a
``Linear``).

Registration refuses a key that is neither kind, and a key that already has a rule (a type and its own qualified
name are the same key) unless ``override=True`` asks for the replacement: one rule never silently replaces another.
All keys of one declaration are checked before any is added.

:meth:`FormulaRegistry.copy` gives an independent registry to extend or override for one call
(``audit_params(model, registry=mine)``, ``audit_macs(model, inputs, registry=mine)``), as FlopCounterMode's
``custom_mapping`` and fvcore's ``set_op_handle`` do, leaving :data:`REGISTRY` as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from torch import nn

from .errors import RegistryError
from .records import Call, MacCount

S = TypeVar("S")
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class LayerFormula(Generic[S]):
    """How one layer family's parameters are counted.

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
"""What a rule says of parameters: a formula, or known zero."""

MacRule = Callable[[Any, Call], MacCount]
"""``rule(module, call) -> MacCount``: the MACs (and bias, norm, activation, softmax) of one forward call."""

Key = type[nn.Module] | str
"""An ``nn.Module`` subclass, or a type's qualified name ``"package.module.Class"``."""


@dataclass(frozen=True)
class LayerRule:
    """Everything counted for the types of one declaration: parameters and compute, together.

    ``family`` names the declaration (``"conv"``, ``"dropout"`` ...); a formula's records carry it, a known-zero
    module's records carry ``"zero"``. Exactly one of ``macs`` (the MAC rule) and ``no_macs`` (why there is none)
    is given.
    """

    family: str
    parameters: Entry
    macs: MacRule | None = None
    no_macs: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise RegistryError(f"a rule needs a family name, got {self.family!r}")
        if not isinstance(self.parameters, (LayerFormula, _KnownZero)):
            raise RegistryError(f"rule {self.family!r}: parameters must be a LayerFormula or KNOWN_ZERO")
        if not isinstance(self.no_macs, str):
            raise RegistryError(f"rule {self.family!r}: no_macs must be the reason, a string, got {self.no_macs!r}")
        if self.macs is None and not self.no_macs.strip():
            raise RegistryError(
                f"rule {self.family!r} has no MAC rule: pass macs=, or no_macs= with the reason it has none"
            )
        if self.macs is not None and self.no_macs:
            raise RegistryError(f"rule {self.family!r} has both a MAC rule and no_macs={self.no_macs!r}")
        if self.macs is not None and not callable(self.macs):
            raise RegistryError(f"rule {self.family!r}: macs must be callable, got {self.macs!r}")


def qualified_name(layer_type: type) -> str:
    """``f"{t.__module__}.{t.__qualname__}"``: what a name key is matched against."""
    return f"{layer_type.__module__}.{layer_type.__qualname__}"


def _check_key(key: object) -> Key:
    if isinstance(key, type) and issubclass(key, nn.Module):
        return key
    if isinstance(key, str):
        parts = key.split(".")
        if len(parts) >= 2 and all(part.isidentifier() for part in parts):
            return key
    raise RegistryError(
        f"rule keys must be nn.Module subclasses or qualified type names ('package.module.Class'), got {key!r}"
    )


def _describe(key: Key) -> str:
    return key if isinstance(key, str) else key.__qualname__


class FormulaRegistry:
    """Maps ``nn.Module`` types and qualified type names to a :class:`LayerRule`."""

    def __init__(self) -> None:
        self._rules: dict[Key, LayerRule] = {}
        self._has_names = False

    # --- declaring ---------------------------------------------------------------------------------------------

    def rule(
        self,
        *keys: Key,
        family: str,
        spec: Callable[[M], S],
        params: Callable[[S], int],
        expression: Callable[[S], str],
        macs: Callable[[M, Call], MacCount] | None = None,
        no_macs: str = "",
        override: bool = False,
    ) -> LayerRule:
        """Declare the rule of a layer family for each of ``keys``: its spec adapter, parameter formula,
        printable expression, and MAC rule (or ``no_macs=`` with the reason it has none)."""
        # Lookup walks the MRO from a module's own type to a registered key, so ``spec`` and ``macs`` are only
        # ever handed instances of the types they are declared for: the subclass they are annotated with.
        formula = LayerFormula(family, cast("Callable[[nn.Module], S]", spec), params, expression)
        return self.add(LayerRule(family, formula, cast("MacRule | None", macs), no_macs), *keys, override=override)

    def zero(
        self,
        *keys: Key,
        family: str,
        macs: Callable[[M, Call], MacCount] | None = None,
        no_macs: str = "",
        override: bool = False,
    ) -> LayerRule:
        """Declare types that own no parameters (their ``numel()`` total is 0 by construction), with their MAC
        rule (or ``no_macs=`` with the reason they have none)."""
        return self.add(LayerRule(family, KNOWN_ZERO, cast("MacRule | None", macs), no_macs), *keys, override=override)

    def add(self, rule: LayerRule, *keys: Key, override: bool = False) -> LayerRule:
        """Register ``rule`` under every one of ``keys``, or under none: every key is checked before any is added.

        A key that already has a rule is refused unless ``override=True``, which replaces that rule (a type and
        its qualified name count as one key). Returns ``rule``.
        """
        if not isinstance(rule, LayerRule):
            raise RegistryError(f"add() needs a LayerRule, got {rule!r}")
        if not keys:
            raise RegistryError(f"rule {rule.family!r} needs at least one nn.Module type or qualified type name")
        checked = [_check_key(key) for key in keys]
        if len(set(checked)) != len(checked):
            raise RegistryError(f"a key is listed twice in {keys!r}")
        names = {qualified_name(key) for key in checked if isinstance(key, type)}
        for key in checked:
            if isinstance(key, str) and key in names:
                raise RegistryError(f"{key} is listed twice in {keys!r}, once as a type and once by name")
        replaced: list[Key] = []
        for key in checked:
            existing = self._registered_as(key)
            if existing is not None and not override:
                raise RegistryError(
                    f"{_describe(key)} is already registered (as {self._rules[existing].family!r}); "
                    "pass override=True to replace its rule"
                )
            if existing is not None:
                replaced.append(existing)
        for existing in replaced:
            if existing not in checked:  # a type replaced by its name, or a name by its type
                del self._rules[existing]
        for key in checked:
            self._rules[key] = rule
        self._has_names = any(isinstance(key, str) for key in self._rules)
        return rule

    def _registered_as(self, key: Key) -> Key | None:
        """The key under which ``key`` already has a rule: itself, its qualified name, or the type of that name."""
        if key in self._rules:
            return key
        if isinstance(key, str):
            return next((t for t in self._rules if isinstance(t, type) and qualified_name(t) == key), None)
        name = qualified_name(key)
        return name if name in self._rules else None

    def copy(self) -> FormulaRegistry:
        """An independent registry holding the same rules: adding to it, or overriding in it, leaves this one as
        it is (rules are frozen, so they are shared)."""
        other = FormulaRegistry()
        other._rules = dict(self._rules)
        other._has_names = self._has_names
        return other

    # --- looking up --------------------------------------------------------------------------------------------

    def lookup_rule(self, layer_type: type) -> tuple[type[nn.Module], LayerRule] | None:
        """The rule for ``layer_type``, with the base of its MRO it was found for: for each base in MRO order, the
        rule keyed by that type, then the rule keyed by its qualified name."""
        rules = self._rules
        for base in layer_type.__mro__:
            if not issubclass(base, nn.Module):
                continue
            found = rules.get(base)
            if found is None and self._has_names:
                found = rules.get(qualified_name(base))
            if found is not None:
                return base, found
        return None

    def lookup(self, layer_type: type) -> tuple[type[nn.Module], Entry] | None:
        """The parameter entry (a :class:`LayerFormula` or :data:`KNOWN_ZERO`) for ``layer_type``, with the type it
        was found for."""
        found = self.lookup_rule(layer_type)
        return None if found is None else (found[0], found[1].parameters)

    def lookup_macs(self, layer_type: type) -> tuple[type[nn.Module], MacRule] | None:
        """The MAC rule for ``layer_type``, with the type it was found for; None when no rule is found, or the rule
        found has none (``no_macs``)."""
        found = self.lookup_rule(layer_type)
        if found is None or found[1].macs is None:
            return None
        return found[0], found[1].macs

    # --- listing -----------------------------------------------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        return key in self._rules

    def __iter__(self) -> Iterator[Key]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def rules(self) -> Iterator[tuple[Key, LayerRule]]:
        """``(key, rule)`` in the order the keys were registered."""
        return iter(self._rules.items())

    def items(self) -> Iterator[tuple[Key, Entry]]:
        """``(key, parameter entry)`` in the order the keys were registered."""
        return ((key, rule.parameters) for key, rule in self._rules.items())

    def keys(self, family: str | None = None) -> list[Key]:
        """Every key, or those of one ``family``'s rules."""
        return [key for key, rule in self._rules.items() if family is None or rule.family == family]

    def families(self) -> list[str]:
        """The family names of the rules, each once, in registration order."""
        return list(dict.fromkeys(rule.family for rule in self._rules.values()))

    def formula_types(self) -> list[Key]:
        return [key for key, rule in self._rules.items() if isinstance(rule.parameters, LayerFormula)]

    def zero_types(self) -> list[Key]:
        return [key for key, rule in self._rules.items() if rule.parameters is KNOWN_ZERO]

    def mac_types(self) -> list[Key]:
        return [key for key, rule in self._rules.items() if rule.macs is not None]


REGISTRY = FormulaRegistry()
"""The registry every family module in :mod:`archaudit.formulas` declares its rules in."""
