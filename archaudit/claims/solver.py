"""The solver: which configurations of a model family reproduce a claimed parameter count?

A :class:`Family` is a grid of hyperparameter axes and a list of components, each a function of a few axes
that returns its parameter count through archaudit's analytic formulas (no module is built). The grid's
totals are computed component by component: each component is evaluated over its own axes only, then the
arrays are broadcast-added over the whole grid with numpy, so millions of configurations cost milliseconds.

For a claimed figure the solver reports how many configurations it admits, the nearest ones, and, when none
matches, why: a range argument (the claim lies outside every total the grid can produce) or a modular one
(every total is congruent to r modulo g, and the claim is not, e.g. every total is even and the claim odd).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .figures import Figure


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Component:
    name: str
    axes: tuple[str, ...]
    count: Callable[..., int]
    """``count(**{axis: value})``: parameters of this component, by the analytic formulas."""


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    axes: tuple[Axis, ...]
    components: tuple[Component, ...]
    build: Callable[..., Any] | None = field(default=None, repr=False)
    """Optional: builds a real module for a configuration (``build(**config)``), for cross-checks."""

    @property
    def size(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def axis(self, name: str) -> Axis:
        return next(a for a in self.axes if a.name == name)

    def config(self, flat_index: int) -> dict[str, Any]:
        index = np.unravel_index(flat_index, tuple(len(a.values) for a in self.axes))
        return {a.name: a.values[int(i)] for a, i in zip(self.axes, index, strict=False)}

    def count(self, config: dict[str, Any]) -> int:
        """The analytic total of one configuration."""
        return sum(c.count(**{name: config[name] for name in c.axes}) for c in self.components)


def evaluate_grid(family: Family) -> np.ndarray:
    """Totals over the whole grid, shaped ``[len(axis) for axis in family.axes]``."""
    names = [a.name for a in family.axes]
    shape = tuple(len(a.values) for a in family.axes)
    total = np.zeros(shape, dtype=np.int64)
    for component in family.components:
        sub_axes = [family.axis(name) for name in component.axes]
        sub = np.empty(tuple(len(a.values) for a in sub_axes), dtype=np.int64)
        for index in itertools.product(*(range(len(a.values)) for a in sub_axes)):
            sub[index] = component.count(**{a.name: a.values[i] for a, i in zip(sub_axes, index, strict=False)})
        # place the component's axes at their positions in the full grid, size 1 elsewhere
        order = sorted(range(len(component.axes)), key=lambda i: names.index(component.axes[i]))
        sub = np.transpose(sub, order)
        view_shape = [1] * len(shape)
        for i in order:
            view_shape[names.index(component.axes[i])] = shape[names.index(component.axes[i])]
        total += sub.reshape(view_shape)
    return total


@dataclass(frozen=True)
class Match:
    config: dict[str, Any]
    total: int
    index: int = 0
    """The configuration's position in the grid (C order over the family's axes): the tie-break key."""

    def describe(self, family: Family) -> str:
        varying = [a.name for a in family.axes if len(a.values) > 1]
        return ", ".join(f"{name}={self.config[name]}" for name in varying) or "(the only configuration)"


@dataclass(frozen=True)
class SolverResult:
    family: str
    claim: str
    configurations: int
    exact: int
    """Configurations whose total the claimed figure admits (within its rounding)."""
    nearest: tuple[Match, ...]
    smallest: int
    largest: int
    argument: str
    """Why no configuration matches ("" when some do)."""
    seconds: float

    @property
    def rate(self) -> float:
        return self.configurations / self.seconds if self.seconds > 0 else float("inf")


def modular_argument(totals: np.ndarray, claimed: int) -> str:
    """ "every total is ≡ r (mod g)" when the claim is not, else ""."""
    flat = totals.ravel()
    base = int(flat.min())
    g = int(np.gcd.reduce(flat - base)) if flat.size > 1 else 0
    if g <= 1:
        return ""
    if (claimed - base) % g == 0:
        return ""
    r = base % g
    if g == 2:
        parity = "even" if r == 0 else "odd"
        other = "odd" if claimed % 2 else "even"
        return f"every configuration's total is {parity} and {claimed:,} is {other}"
    text = f"every configuration's total is ≡ {r} (mod {g}), and {claimed:,} ≡ {claimed % g} (mod {g})"
    if g % 2 == 0 and r % 2 != claimed % 2:
        text += (
            f": every total is {'even' if r % 2 == 0 else 'odd'} and {claimed:,} is {'odd' if claimed % 2 else 'even'}"
        )
    return text


def nearest_indices(distance: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` smallest distances' flat indices, ordered by (distance, index): a total order.

    ``np.argpartition`` alone would break ties by whichever CPU kernel numpy dispatches to (AVX-512 machines
    pick other configurations at the same distance), so it only finds the k-th smallest distance; every index
    at or below it is then sorted by distance with a stable sort, which keeps grid order among equals.
    """
    k = min(k, distance.size)
    if k <= 0:
        return np.arange(0)
    if distance.size > k:
        kth = distance[np.argpartition(distance, k - 1)[k - 1]]
        candidates = np.flatnonzero(distance <= kth)  # ascending indices, whatever the partition did
    else:
        candidates = np.arange(distance.size)
    return candidates[np.argsort(distance[candidates], kind="stable")][:k]


def solve(family: Family, figure: Figure, *, nearest: int = 5) -> SolverResult:
    start = time.perf_counter()
    totals = evaluate_grid(family)
    flat = totals.ravel()
    admitted = (
        (flat >= math.ceil(figure.low - 1e-9)) & (flat <= math.floor(figure.high + 1e-9))
        if math.isfinite(figure.high)
        else flat >= math.ceil(figure.low - 1e-9)
    )
    exact = int(admitted.sum())
    distance = np.abs(flat - round(figure.value))
    best = nearest_indices(distance, nearest)
    seconds = time.perf_counter() - start
    matches = tuple(Match(family.config(int(i)), int(flat[i]), int(i)) for i in best)
    smallest, largest = int(flat.min()), int(flat.max())
    arguments: list[str] = []
    if exact == 0:
        if figure.high < smallest:
            arguments.append(f"the smallest configuration has {smallest:,} parameters, more than {figure.text} allows")
        elif figure.low > largest:
            arguments.append(f"the largest configuration has {largest:,} parameters, fewer than {figure.text} needs")
        if figure.tolerance == 0 and float(figure.value).is_integer():
            modular = modular_argument(totals, int(figure.value))
            if modular:
                arguments.append(modular)
        if not arguments:
            arguments.append(
                f"no configuration lands within {figure.text}'s rounding: the nearest is {matches[0].total:,}"
            )
    argument = "; and ".join(arguments)
    return SolverResult(family.name, figure.text, int(flat.size), exact, matches, smallest, largest, argument, seconds)


def sample_configs(family: Family, count: int, seed: int = 0) -> Sequence[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [family.config(int(i)) for i in rng.integers(0, family.size, size=count)]
