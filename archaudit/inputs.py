"""Example inputs as shapes: ``InputSpec``, the ``--input`` syntax (``1x30x17``, ``1x128:int64``) and its bounds,
and the meta tensors a trace runs on."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import InputSpecError

_DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "int64": torch.int64,
    "long": torch.int64,
    "int32": torch.int32,
    "int": torch.int32,
    "bool": torch.bool,
}
_SHAPE = re.compile(r"^\d+(x\d+)*$")


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32

    def __str__(self) -> str:
        text = "x".join(str(d) for d in self.shape)
        return text if self.dtype == torch.float32 else f"{text}:{str(self.dtype).removeprefix('torch.')}"

    def meta_tensor(self) -> torch.Tensor:
        return torch.empty(self.shape, dtype=self.dtype, device="meta")


MAX_DIMENSION = 2**31 - 1
"""The largest size of one input dimension (PyTorch indexes a dimension with a signed 32-bit count on most
kernels)."""
MAX_DIMENSIONS = 8
MAX_ELEMENTS = 2**48
"""The most elements an input may have: a meta tensor allocates nothing, but shapes past this overflow the
64-bit products of the MAC rules' arithmetic in PyTorch's own shape checks."""


def parse_input(text: str, *, given: str | None = None) -> InputSpec:
    """``"1x30x17"`` or ``"1x128:int64"`` (token ids); dimensions are positive integers, each at most
    :data:`MAX_DIMENSION`, at most :data:`MAX_DIMENSIONS` of them and :data:`MAX_ELEMENTS` elements in all."""
    if not isinstance(text, str):
        raise InputSpecError(f"input {text!r}: expected a shape string such as 1x30x17")
    given = text if given is None else given  # the whole --input value, when text is the shape part of it
    shown = given if len(given) <= 40 else given[:40] + "..."
    if len(text) > 200:
        raise InputSpecError(f"--input {shown!r}: {len(text):,} characters; a shape has at most 200")
    shape_text, _, dtype_text = text.strip().partition(":")
    if not _SHAPE.match(shape_text):
        raise InputSpecError(f"--input {shown!r}: expected dimensions joined by 'x', such as 1x30x17 or 1x128:int64")
    digits = shape_text.split("x")
    if len(digits) > MAX_DIMENSIONS:
        raise InputSpecError(f"--input {shown!r}: {len(digits)} dimensions; at most {MAX_DIMENSIONS}")
    if any(len(d) > 10 or int(d) > MAX_DIMENSION for d in digits):
        raise InputSpecError(f"--input {shown!r}: a dimension is larger than {MAX_DIMENSION:,}")
    shape = tuple(int(d) for d in digits)
    if any(d == 0 for d in shape):
        raise InputSpecError(f"--input {shown!r}: every dimension must be at least 1")
    if math.prod(shape) > MAX_ELEMENTS:
        raise InputSpecError(f"--input {shown!r}: {math.prod(shape):,} elements; at most {MAX_ELEMENTS:,}")
    if dtype_text and dtype_text not in _DTYPES:
        raise InputSpecError(
            f"--input {shown!r}: unknown dtype {dtype_text[:20]!r}; one of {', '.join(sorted(_DTYPES))}"
        )
    return InputSpec(shape, _DTYPES[dtype_text] if dtype_text else torch.float32)


KEYWORD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def parse_inputs(texts: Sequence[str]) -> tuple[list[InputSpec], dict[str, InputSpec]]:
    """``--input`` values, in order: ``SHAPE`` for a positional input, ``NAME=SHAPE`` for one passed by name
    (``input_ids=1x128:int64``). Positional inputs come first; a name is a Python identifier, given once."""
    positional: list[InputSpec] = []
    keywords: dict[str, InputSpec] = {}
    for text in texts:
        name, sep, shape = text.partition("=") if isinstance(text, str) else ("", "", text)
        if not sep:
            if keywords:
                raise InputSpecError(
                    f"--input {text[:40]!r}: a positional input after one passed by name ({next(iter(keywords))}=)"
                )
            positional.append(parse_input(text))
            continue
        name = name.strip()
        if not KEYWORD_NAME.match(name):
            raise InputSpecError(f"--input {text[:40]!r}: {name[:40]!r} is not a keyword name (a Python identifier)")
        if name in keywords:
            raise InputSpecError(f"--input {text[:40]!r}: {name} is given twice")
        keywords[name] = parse_input(shape, given=text)
    return positional, keywords


def meta_tensors(inputs: Sequence[Any]) -> list[torch.Tensor]:
    """Meta tensors for a list of :class:`InputSpec` shapes and/or tensors (same shapes and dtypes)."""
    return [i.meta_tensor() if isinstance(i, InputSpec) else torch.empty_like(i, device="meta") for i in inputs]


def zero_tensors(inputs: Sequence[Any]) -> list[torch.Tensor]:
    """Zero CPU tensors of the shapes and dtypes of ``inputs`` (:class:`InputSpec` shapes and/or tensors): a CPU trace's
    inputs, the same on every run (a token id 0 is valid for any vocabulary); an input given twice gets one stand-in."""
    made: dict[int, torch.Tensor] = {}  # one stand-in per object: a tensor given twice (self-attention's q, k, v)
    for i in inputs:
        if id(i) not in made:
            made[id(i)] = torch.zeros(tuple(i.shape), dtype=i.dtype, device="cpu")
    return [made[id(i)] for i in inputs]
