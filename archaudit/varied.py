"""Cost as a function of one input dimension (``archaudit flops TARGET --input 1xTx17 --vary T``).

The model is built once; at each size the fit asks for (:data:`archaudit.polynomial.DEFAULT_POINTS`, in their
order) it is traced again (``flops --vary``: MACs and the columns, one pass on meta) or its memory measured
again (``memory --vary``: a pass with gradients for the saved activations and the training peak, and one without
for the inference peak, on fake tensors, a repeated block's later calls replayed:
:class:`archaudit.memory.MemoryMeter`; each pass only at the sizes its own quantities' fits ask for, over fake
weights made once).

Every quantity is fitted on its own as an exact polynomial in the dimension and verified at sizes the fit did not
use; a quantity that is no polynomial (a peak that is a maximum of two, a stride's rounding) is reported as such
with its values, never fitted wrongly, and the others still are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ArchauditError
from .memory import MemoryMeter
from .polynomial import DEFAULT_POINTS, NotPolynomialError, Polynomial, VariedInputs, describe, fit_polynomial
from .trace import trace_device
from .workers import run_all, workers

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
    from .targets import BuiltTarget, build_target
    from .walker import audit_params

    if isinstance(target, BuiltTarget):
        built = target
    elif isinstance(target, str):
        built = build_target(target, device=device)
    else:
        built = built_model(target)
    parameters = audit_params(built.model).total
    meter = MemoryMeter(built.model, optimizer=optimizer, precision=precision) if memory else None

    def macs(positional: list[Any], named: dict[str, Any]) -> dict[str, int]:
        return audit_macs(built.model, positional, keyword_inputs=named).counts.as_dict()

    def training(positional: list[Any], named: dict[str, Any]) -> dict[str, int]:
        saved, peak = _need(meter).training_bytes(positional, named)
        return {"saved_activation_bytes": saved, "training_peak_bytes": peak}

    def inference(positional: list[Any], named: dict[str, Any]) -> dict[str, int]:
        return {"inference_peak_bytes": _need(meter).inference_bytes(positional, named)}

    # Each pass runs only at the sizes a quantity it gives asks for: a linear inference peak needs one size fewer
    # than a quadratic training one, and its no-grad pass is not run at that size. With several workers a miss
    # also measures side by side (archaudit.workers) the next sizes the fit has said it will ask for (its
    # ``ahead``: those a polynomial of the degree its values prove needs), and no others: a round of one pass runs
    # here, without a fork. Only a model whose passes run on meta or fake tensors (a large one:
    # archaudit.trace.trace_device) is measured ahead: a small one's CPU passes take less than forking a worker.
    measured: dict[tuple[str, int], dict[str, int] | Exception] = {}
    planned: list[int] = []
    positional, named = varied.at(DEFAULT_POINTS[0])
    together = workers() if trace_device(built.model, [*positional, *named.values()]) == "meta" else 1

    def plan(sizes: Sequence[int]) -> None:
        planned[:] = sizes

    def at(source: Callable[[list[Any], dict[str, Any]], dict[str, int]], size: int) -> dict[str, int]:
        name = source.__name__
        if (name, size) not in measured:
            later = planned[planned.index(size) + 1 :] if size in planned else []
            sizes = [size, *(n for n in later if (name, n) not in measured)][: together if name != "weights" else 1]
            for n, value in zip(sizes, run_all([_task(source, varied, n) for n in sizes]), strict=True):
                measured[name, n] = value
        value = measured[name, size]
        if isinstance(value, Exception):
            raise value
        return value

    def weights(positional: list[Any], named: dict[str, Any]) -> dict[str, int]:
        return {"parameters": parameters}

    found: list[tuple[str, Polynomial]] = []
    refused: list[tuple[str, str]] = []
    for key, _ in QUANTITIES:
        if key != "parameters" and key.endswith("_bytes") != memory:
            continue
        source = (
            weights
            if key == "parameters"
            else inference
            if key == "inference_peak_bytes"
            else training
            if memory
            else macs
        )
        try:
            found.append((key, fit_polynomial(_one(at, source, key), variable=varied.name, ahead=plan)))
        except NotPolynomialError as exc:
            refused.append((key, str(exc)))
    return VariedCosts(built.name, varied, tuple(found), tuple(refused))


def _need(meter: MemoryMeter | None) -> MemoryMeter:
    if meter is None:
        raise TypeError("a memory quantity was fitted without memory=True")
    return meter


def _task(
    source: Callable[[list[Any], dict[str, Any]], dict[str, int]], varied: VariedInputs, size: int
) -> Callable[[], dict[str, int] | Exception]:
    """``source`` at ``size``, its error returned (saying at which size it arose) rather than raised."""

    def run() -> dict[str, int] | Exception:
        positional, named = varied.at(size)
        try:
            return source(positional, named)
        except ArchauditError as exc:
            return type(exc)(f"--vary {varied.name}={size}: {exc}")
        except Exception as exc:  # noqa: BLE001 - raised only if the fit asks for this size, as a loop would
            return exc

    return run


def _one(
    at: Callable[[Callable[..., dict[str, int]], int], dict[str, int]],
    source: Callable[..., dict[str, int]],
    key: str,
) -> Callable[[int], int]:
    return lambda size: at(source, size)[key]


def summary(costs: VariedCosts) -> list[tuple[str, str]]:
    """(label, one line: the formula, its dominant term and where each term overtakes the next) per quantity."""
    return [(LABELS[key], describe(found)) for key, found in costs.polynomials]
