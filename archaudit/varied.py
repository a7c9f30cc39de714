"""Cost as a function of one input dimension (``archaudit flops TARGET --input 1xTx17 --vary T``).

The model is built once; at each size the fit asks for (:data:`archaudit.polynomial.DEFAULT_POINTS`, in their
order) it is traced again (``flops --vary``: MACs and the columns, one pass on meta) or its memory measured
again (``memory --vary``: a pass with gradients and one without, on fake tensors, which cost several times a
trace). Every quantity is fitted on its own as an exact polynomial in the dimension and verified at sizes
the fit did not use; a quantity that is no polynomial (a peak that is a maximum of two, a stride's rounding) is
reported as such with its values, never fitted wrongly, and the others still are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ArchauditError
from .polynomial import NotPolynomialError, Polynomial, VariedInputs, describe, fit_polynomial

QUANTITIES = (
    ("parameters", "parameters"),
    ("macs", "MACs"),
    ("bias", "bias additions"),
    ("norm", "normalised elements"),
    ("activation", "activation elements"),
    ("softmax", "softmax elements"),
    ("saved_activation_bytes", "activations saved for backward (bytes)"),
    ("training_peak_bytes", "training peak (bytes)"),
    ("inference_peak_bytes", "inference peak (bytes)"),
)
"""Every quantity fitted, in the order shown: its JSON key and its label."""
LABELS = dict(QUANTITIES)


@dataclass(frozen=True)
class VariedCosts:
    target: str
    inputs: VariedInputs
    polynomials: tuple[tuple[str, Polynomial], ...]
    """The quantities that are exact polynomials in the dimension, in :data:`QUANTITIES` order."""
    refused: tuple[tuple[str, str], ...] = ()
    """The quantities that are not (at most degree 4), with the values that show it."""

    @property
    def variable(self) -> str:
        return self.inputs.name

    def polynomial(self, key: str) -> Polynomial:
        for name, found in self.polynomials:
            if name == key:
                return found
        raise KeyError(f"{key!r} is not a polynomial here: {dict(self.refused).get(key, 'not fitted')}")

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "inputs": str(self.inputs),
            "variable": self.variable,
            "quantities": {key: found.as_json() for key, found in self.polynomials},
            "not_polynomial": dict(self.refused),
        }


def vary(
    target: Any,
    varied: VariedInputs,
    *,
    device: str = "auto",
    memory: bool = False,
    optimizer: str = "adam",
    precision: str = "fp32",
) -> VariedCosts:
    """Fit the parameters and, without ``memory``, the MACs and columns of :data:`QUANTITIES`, with it the memory
    ones (for ``optimizer`` at ``precision``), as polynomials in ``varied``'s dimension, for ``target`` (a TARGET
    string, an ``nn.Module`` or a built target)."""
    from .audit import built_model
    from .macs import audit_macs
    from .memory import audit_memory
    from .targets import BuiltTarget, build_target
    from .walker import audit_params

    if isinstance(target, BuiltTarget):
        built = target
    elif isinstance(target, str):
        built = build_target(target, device=device)
    else:
        built = built_model(target)
    parameters = audit_params(built.model).total
    measured: dict[int, dict[str, int]] = {}

    def at(size: int) -> dict[str, int]:
        if size not in measured:
            positional, named = varied.at(size)
            try:
                values: dict[str, int] = {"parameters": parameters}
                if not memory:
                    values |= audit_macs(built.model, positional, keyword_inputs=named).counts.as_dict()
                else:
                    bytes_ = audit_memory(
                        built.model, positional, keyword_inputs=named, optimizer=optimizer, precision=precision
                    )
                    values |= {
                        "saved_activation_bytes": bytes_.activations,
                        "training_peak_bytes": bytes_.training_peak,
                        "inference_peak_bytes": bytes_.inference_peak,
                    }
            except ArchauditError as exc:  # the same error, saying at which size it arose
                raise type(exc)(f"--vary {varied.name}={size}: {exc}") from None
            measured[size] = values
        return measured[size]

    found: list[tuple[str, Polynomial]] = []
    refused: list[tuple[str, str]] = []
    for key, _ in QUANTITIES:
        if key != "parameters" and key.endswith("_bytes") != memory:
            continue
        try:
            found.append((key, fit_polynomial(_one(at, key), variable=varied.name)))
        except NotPolynomialError as exc:
            refused.append((key, str(exc)))
    return VariedCosts(built.name, varied, tuple(found), tuple(refused))


def _one(at: Callable[[int], dict[str, int]], key: str) -> Callable[[int], int]:
    return lambda size: at(size)[key]


def summary(costs: VariedCosts) -> list[tuple[str, str]]:
    """(label, one line: the formula, its dominant term and where each term overtakes the next) per quantity."""
    return [(LABELS[key], describe(found)) for key, found in costs.polynomials]
