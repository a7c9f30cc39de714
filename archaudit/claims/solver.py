"""The solver: which configurations of a model family reproduce a claimed parameter count?

A :class:`Family` is a grid of hyperparameter axes and a list of components, each a function of a few axes
that returns its parameter count through archaudit's analytic formulas (no module is built). The grid's
totals are computed component by component: each component is evaluated over its own axes only, the small
arrays are broadcast-added with numpy, and a grid of millions is summed and searched a block at a time
(:func:`grid_blocks`), never held whole, so millions of configurations cost milliseconds.

For a claimed figure the solver reports how many configurations it admits, the nearest ones, and, when none
matches, why: a range argument (the claim lies outside every total the grid can produce) or a modular one
(every total is congruent to r modulo g, and the claim is not, e.g. every total is even and the claim odd).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
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

    def __post_init__(self) -> None:
        """A grid has at least one configuration: every axis takes a value, and every component names axes."""
        names = [a.name for a in self.axes]
        for axis in self.axes:
            if not axis.values:
                raise ValueError(f"family {self.name!r}: axis {axis.name!r} has no values")
        for component in self.components:
            unknown = [n for n in component.axes if n not in names]
            if unknown:
                raise ValueError(f"family {self.name!r}: component {component.name!r} names no axis {unknown[0]!r}")

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


BLOCK = 1 << 18
"""Totals the solver holds at once: a grid larger than this is never materialised, but summed and searched a block
of whole leading-axis slices at a time, in one reused buffer (2 MB). A fresh array of a whole grid of millions costs
more in the page faults of its first writes than the arithmetic on it does."""


def _parts(family: Family, limit: float) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """The grid's shape, and its components' totals as arrays of its dimensions (size 1 on the axes a component
    does not use), summed two at a time while the smallest such sum (fewest elements; then the first pair) has at
    most ``limit`` elements: partial sums over a few axes stay small (integer sums: the order changes no total)."""
    names = [a.name for a in family.axes]
    shape = tuple(len(a.values) for a in family.axes)
    parts: list[np.ndarray] = []
    for component in family.components:
        sub_axes = [family.axis(name) for name in component.axes]
        counts = [
            component.count(**dict(zip(component.axes, values, strict=True)))
            for values in itertools.product(*(a.values for a in sub_axes))
        ]  # in C order over the component's axes, as the reshape below reads them
        sub = np.array(counts, dtype=np.int64).reshape(tuple(len(a.values) for a in sub_axes))
        # place the component's axes at their positions in the full grid, size 1 elsewhere
        order = sorted(range(len(component.axes)), key=lambda i: names.index(component.axes[i]))
        sub = np.transpose(sub, order)
        view_shape = [1] * len(shape)
        for i in order:
            view_shape[names.index(component.axes[i])] = shape[names.index(component.axes[i])]
        parts.append(sub.reshape(view_shape))
    while len(parts) > 1:
        size, i, j = min(
            (math.prod(np.broadcast_shapes(a.shape, b.shape)), i, j)
            for i, a in enumerate(parts)
            for j, b in enumerate(parts[i + 1 :], start=i + 1)
        )
        if size > limit:
            break
        merged = parts[i] + parts[j]
        parts = [p for k, p in enumerate(parts) if k not in (i, j)] + [merged]
    return shape, parts


def evaluate_grid(family: Family) -> np.ndarray:
    """Totals over the whole grid, shaped ``[len(axis) for axis in family.axes]``."""
    shape, parts = _parts(family, math.inf)
    if not parts:
        return np.zeros(shape, dtype=np.int64)
    return np.ascontiguousarray(np.broadcast_to(parts[0], shape), dtype=np.int64)


def grid_blocks(family: Family) -> Iterator[tuple[int, np.ndarray]]:
    """The grid's totals in C order (as ``evaluate_grid(family).ravel()``), as (flat offset, block) pairs: each
    block whole slices of the leading axis, at most :data:`BLOCK` totals unless one slice is larger. A block is a
    view of one buffer that the next block overwrites: read it before asking for the next."""
    return _blocks(*_parts(family, BLOCK))


def _blocks(shape: tuple[int, ...], parts: list[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    if not shape:  # no axes: one configuration
        shape, parts = (1,), [p.reshape(1) for p in parts]
    row = math.prod(shape[1:])
    rows = max(1, BLOCK // max(row, 1))
    buffer = np.empty(min(shape[0], rows) * row, dtype=np.int64)
    for first in range(0, shape[0], rows):
        last = min(shape[0], first + rows)
        block = buffer[: (last - first) * row].reshape((last - first, *shape[1:]))
        if not parts:
            block.fill(0)
        for k, part in enumerate(parts):
            piece = part[first:last] if part.shape[0] > 1 else part
            if k == 0:
                np.copyto(block, piece)
            else:
                np.add(block, piece, out=block)
        yield first * row, block.reshape(-1)


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


def _modular(base: int, g: int, claimed: int) -> str:
    """The argument for totals ``base + multiples of g`` (``g`` their differences' greatest common divisor)."""
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


def _nearest(pool: list[tuple[np.ndarray, np.ndarray]], value: int, k: int) -> list[tuple[int, int]]:
    """The ``k`` (index, total) pairs nearest ``value`` among ``pool`` (arrays of flat indices, ascending across the
    pool, and their totals), ordered by (distance, index): a total order, the same on every machine."""
    if not pool:
        return []
    indices = np.concatenate([i for i, _ in pool])
    totals = np.concatenate([t for _, t in pool])
    order = np.argsort(np.abs(totals - value), kind="stable")[:k]  # stable: grid order among equal distances
    return [(int(indices[i]), int(totals[i])) for i in order]


def solve(family: Family, figure: Figure, *, nearest: int = 5) -> SolverResult:
    """Search the family's grid for ``figure``, a block of totals at a time (:func:`grid_blocks`): two passes, the
    first for the range, the matches and the k-th smallest distance, the second for the configurations within it
    (and the totals' common difference, when an argument needs it)."""
    start = time.perf_counter()
    # an open end ("at most", "at least") is int64's own bound: every total lies within it
    bounds = np.iinfo(np.int64)
    low = math.ceil(figure.low - 1e-9) if math.isfinite(figure.low) else int(bounds.min)
    high = math.floor(figure.high + 1e-9) if math.isfinite(figure.high) else int(bounds.max)
    value = round(figure.value)
    k = max(0, min(nearest, family.size))
    exact, smallest, largest = 0, None, None
    closest: list[np.ndarray] = []
    scratch = np.empty(0, dtype=np.int64)
    grid = _parts(family, BLOCK)  # the components evaluated once, for both passes
    for _, block in _blocks(*grid):
        lo, hi = int(block.min()), int(block.max())
        smallest = lo if smallest is None else min(smallest, lo)
        largest = hi if largest is None else max(largest, hi)
        exact += int(np.count_nonzero((block >= low) & (block <= high)))
        if k:
            if scratch.size < block.size:
                scratch = np.empty(block.size, dtype=np.int64)
            distance = scratch[: block.size]
            np.subtract(block, value, out=distance)
            np.abs(distance, out=distance)
            if distance.size > k:
                distance.partition(k - 1)  # the block's k smallest distances first (which of equals: no matter)
            closest.append(distance[:k].copy())
    assert smallest is not None and largest is not None  # a grid has at least one configuration
    # the k-th smallest distance over the grid is the k-th over the blocks' k smallest
    kth = int(np.sort(np.concatenate(closest))[k - 1]) if k else -1
    modular_wanted = exact == 0 and figure.tolerance == 0 and float(figure.value).is_integer()
    pool: list[tuple[np.ndarray, np.ndarray]] = []
    g = 0
    if k or modular_wanted:
        for offset, block in _blocks(*grid):
            if k:
                found = np.flatnonzero((block >= value - kth) & (block <= value + kth))
                pool.append((found + offset, block[found]))
            if modular_wanted:
                g = math.gcd(g, int(np.gcd.reduce(block - smallest)))
    best = _nearest(pool, value, k)
    seconds = time.perf_counter() - start
    matches = tuple(Match(family.config(i), total, i) for i, total in best)
    arguments: list[str] = []
    if exact == 0:
        if figure.high < smallest:
            arguments.append(f"the smallest configuration has {smallest:,} parameters, more than {figure.text} allows")
        elif figure.low > largest:
            arguments.append(f"the largest configuration has {largest:,} parameters, fewer than {figure.text} needs")
        if modular_wanted:
            modular = _modular(smallest, g, int(figure.value))  # g is 0 for one configuration
            if modular:
                arguments.append(modular)
        if not arguments:
            nearest_one = f": the nearest is {matches[0].total:,}" if matches else ""
            arguments.append(f"no configuration lands within {figure.text}'s rounding{nearest_one}")
    argument = "; and ".join(arguments)
    return SolverResult(family.name, figure.text, family.size, exact, matches, smallest, largest, argument, seconds)


def sample_configs(family: Family, count: int, seed: int = 0) -> Sequence[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [family.config(int(i)) for i in rng.integers(0, family.size, size=count)]
