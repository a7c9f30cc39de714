"""MAC counts and the shapes they are computed from.

The convention, stated once: **MACs** (multiply-accumulates of weight and attention products) are the unit;
**FLOPs = 2 x MACs**. Work that is not a multiply-accumulate of that kind is counted in its own named column
and never mixed into MACs, so that each other tool's convention can be rebuilt from the columns:

``bias``         one addition per output element per bias vector;
``norm``         elements normalised (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm);
``activation``   elements through a non-linearity (including gate non-linearities inside RNN cells);
``softmax``      elements through a softmax (attention scores, Softmax layers).

Not counted anywhere: residual additions, RNN gate products, pooling windows, attention's 1/sqrt(d) scaling,
dropout masks, copies and reshapes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from math import prod
from typing import Any

COLUMNS = ("macs", "bias", "norm", "activation", "softmax")


@dataclass(frozen=True)
class MacCount:
    macs: int = 0
    bias: int = 0
    norm: int = 0
    activation: int = 0
    softmax: int = 0

    @property
    def flops(self) -> int:
        """2 x MACs: the convention of FlopCounterMode and of most papers."""
        return 2 * self.macs

    def __add__(self, other: MacCount) -> MacCount:
        return MacCount(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scaled(self, factor: int) -> MacCount:
        return MacCount(*(getattr(self, f.name) * factor for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ZERO = MacCount()

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Call:
    """One forward call of one module, as shapes: what MAC formulas read (never tensors)."""

    args: tuple[Any, ...]
    """Per positional argument: a shape tuple for a tensor, a :class:`Packed` for a PackedSequence, else None."""
    kwargs: tuple[tuple[str, Any], ...]
    outputs: tuple[Shape, ...]
    training: bool = False
    grad_enabled: bool = False

    def arg(self, index: int, name: str | None = None) -> Any:
        """Positional argument ``index``, or keyword ``name`` when it was passed by keyword."""
        if index < len(self.args):
            return self.args[index]
        if name is not None:
            for key, value in self.kwargs:
                if key == name:
                    return value
        return None

    @property
    def input(self) -> Shape:
        first = self.arg(0)
        if not isinstance(first, tuple):
            raise ValueError(f"the first argument is not a tensor ({first!r})")
        return first

    @property
    def output(self) -> Shape:
        return self.outputs[0]


@dataclass(frozen=True)
class Packed:
    """A PackedSequence, as shapes: its data shape and the real number of sequences per time step."""

    data: Shape
    batch_sizes: tuple[int, ...]


def numel(shape: Shape) -> int:
    return prod(shape)
