"""Inference throughput of a model on the machine at hand: samples per second, median of repeated timed runs
after warm-up, with the spread, naming the hardware, threads and dtype. Hardware-dependent by nature: a figure
holds only for the machine it was measured on.

The inputs are a reference model's own example input at each batch size, or shapes given as ``--input``
(:class:`ShapedInputs`), whose dim 0 each batch size replaces: ``--input 1x3x32x32 --batch 64`` runs on
64x3x32x32.

A batch size whose timed runs disagree by more than :data:`SPREAD_LIMIT` (fastest over slowest) gets a warning
in the report: its median is unreliable.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import ArchauditError, ForwardError
from .inputs import InputSpec
from .progress import Step, no_step
from .usercode import user_code


class BenchError(ArchauditError, ValueError):
    """A benchmark cannot run as asked (no CUDA device, a bad batch size ...)."""


SPREAD_LIMIT = 2.0
"""The most that a batch size's fastest timed run may outpace its slowest (in samples per second) before the
report warns that its median is unreliable. Each timed run lasts at least ``min_seconds`` (50 ms), long enough
that on a machine doing nothing else the runs agree within tens of percent: on this project's 2-core machine,
under a load of 4, dcnn's ten runs at batch 1, 64 and 256 ranged 1.08x, 1.12x and 1.55x. A run at less than half
the speed of another means something else took the machine for at least half of that run (another process,
thermal or power throttling, swapping); then where the median lands depends on how many runs were disturbed, not
on the model, and a throughput claim checked against it could get either verdict."""


@dataclass(frozen=True)
class BenchResult:
    batch: int
    samples_per_s: float
    low: float
    high: float
    """Slowest and fastest of the timed runs, in samples per second."""
    repeats: int

    @property
    def spread(self) -> float:
        """Fastest run over slowest: 1.0 when every run went at the same speed."""
        return self.high / self.low


@dataclass(frozen=True)
class BenchReport:
    model: str
    hardware: str
    device: str
    threads: int
    dtype: str
    torch_version: str
    results: tuple[BenchResult, ...]
    inputs: tuple[str, ...] | None = None
    """The ``--input`` shapes with dim 0 written ``B`` (the batch size replaced it), such as ``Bx3x32x32`` and
    ``input_ids=Bx128:int64``; None for a reference model's own example input."""
    warnings: tuple[str, ...] = ()
    """One line per batch size whose median is unreliable (see :data:`SPREAD_LIMIT`)."""

    @property
    def best(self) -> BenchResult:
        return max(self.results, key=lambda r: r.samples_per_s)

    def measurement(self) -> dict[str, object]:
        """What a throughput claim is checked against."""
        return {
            "samples_per_s": self.best.samples_per_s,
            "hardware": f"{self.hardware} ({self.device}, {self.threads} threads, {self.dtype}, batch "
            f"{self.best.batch}, torch {self.torch_version})",
        }


@dataclass(frozen=True)
class ForwardInputs:
    """The arguments of one forward call: ``model(*args, **kwargs)``."""

    args: tuple[torch.Tensor, ...]
    kwargs: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class ShapedInputs:
    """Inputs given as shapes (``archaudit.inputs.parse_inputs``), made real at each batch size: dim 0 of every
    input becomes the batch size; integer and bool inputs are zeros (valid token ids, indices and masks),
    floating ones standard normal from a fixed seed, so every run of a bench sees the same values."""

    positional: tuple[InputSpec, ...]
    keywords: Mapping[str, InputSpec] = field(default_factory=dict)
    seed: int = 0

    def __call__(self, batch: int, device: str) -> ForwardInputs:
        generator = torch.Generator(device=device).manual_seed(self.seed)

        def real(spec: InputSpec) -> torch.Tensor:
            shape = (batch, *spec.shape[1:])
            if spec.dtype.is_floating_point:
                return torch.randn(shape, generator=generator, dtype=spec.dtype, device=device)
            return torch.zeros(shape, dtype=spec.dtype, device=device)

        return ForwardInputs(tuple(real(s) for s in self.positional), {k: real(s) for k, s in self.keywords.items()})

    def describe(self) -> tuple[str, ...]:
        """Each input's shape with dim 0 written ``B``: ``Bx3x32x32``, ``input_ids=Bx128:int64``."""

        def batched(spec: InputSpec) -> str:
            _, colon, dtype = str(spec).partition(":")
            return "x".join(["B", *(str(d) for d in spec.shape[1:])]) + colon + dtype

        return tuple(batched(s) for s in self.positional) + tuple(f"{k}={batched(s)}" for k, s in self.keywords.items())


Example = Callable[[int, str], Sequence[torch.Tensor] | ForwardInputs]
"""``example(batch, device)``: the forward's inputs at a batch size, as positional tensors or :class:`ForwardInputs`."""


def rate_text(value: float) -> str:
    """Samples per second as the reports print them: whole numbers from 100 up, 3 significant digits below (a
    slow model's 1.4 samples/s is not rounded to 1)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def spread_warning(result: BenchResult, limit: float = SPREAD_LIMIT) -> str | None:
    """The report's warning for ``result`` when its runs spread by more than ``limit`` (fastest over slowest)."""
    if result.spread <= limit:
        return None
    times = f"{result.spread:.3g}" if result.spread < 1000 else f"{result.spread:,.0f}"
    ranged = f"{rate_text(result.low)}..{rate_text(result.high)}"
    return (
        f"batch {result.batch}: runs ranged {ranged} samples/s (spread {times}x, more than {limit:g}x); "
        "the median is unreliable: rerun on an idle machine or with more --repeats"
    )


def _no_sync() -> None:
    """The CPU runs each call to completion: nothing to wait for."""


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _forward_inputs(example: Example, batch: int, device: str, dtype: torch.dtype) -> ForwardInputs:
    got = example(batch, device)
    given = got if isinstance(got, ForwardInputs) else ForwardInputs(tuple(got))

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype) if t.is_floating_point() else t

    return ForwardInputs(tuple(cast(t) for t in given.args), {k: cast(t) for k, t in given.kwargs.items()})


def bench(
    name: str,
    build: Callable[[], nn.Module],
    example: Example,
    *,
    batches: Sequence[int] = (1, 64, 1024),
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 3,
    repeats: int = 10,
    min_seconds: float = 0.05,
    step: Step = no_step,
    clock: Callable[[], float] = time.perf_counter,
) -> BenchReport:
    """Throughput of ``build()`` on ``example(batch, device)`` at each batch size (floating inputs cast to
    ``dtype``). ``step`` is called once per batch size as its warm-up begins and once per timed run
    (``len(batches) * (repeats + 1)`` calls in all), for a progress display; ``clock`` times the runs."""
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device on this machine")
    if any(b < 1 for b in batches):
        raise BenchError(f"--batch must be at least 1, got {list(batches)}")
    model = build().to(device=device, dtype=dtype).eval()
    results = []
    sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else _no_sync
    with torch.inference_mode():
        for batch in batches:
            step(f"batch {batch}: warm-up")
            inputs = _forward_inputs(example, batch, device, dtype)
            args, kwargs = inputs.args, inputs.kwargs
            with user_code(name, ForwardError, f"the forward pass at batch {batch}"):
                for _ in range(warmup):
                    model(*args, **kwargs)
                sync()
                # enough calls per timed run that a run lasts at least min_seconds
                start = clock()
                model(*args, **kwargs)
                sync()
                once = max(clock() - start, 1e-6)
                calls = max(1, int(min_seconds / once))
                rates = []
                for run in range(repeats):
                    step(f"batch {batch}: run {run + 1}/{repeats}")
                    start = clock()
                    for _ in range(calls):
                        model(*args, **kwargs)
                    sync()
                    rates.append(batch * calls / max(clock() - start, 1e-9))
            results.append(BenchResult(batch, statistics.median(rates), min(rates), max(rates), repeats))
    hardware = torch.cuda.get_device_name() if device == "cuda" else cpu_name()
    return BenchReport(
        name,
        hardware,
        device,
        torch.get_num_threads(),
        str(dtype).removeprefix("torch."),
        torch.__version__,
        tuple(results),
        inputs=example.describe() if isinstance(example, ShapedInputs) else None,
        warnings=tuple(w for w in map(spread_warning, results) if w is not None),
    )
