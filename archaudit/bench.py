"""Inference throughput of a model on the machine at hand: samples per second, median of repeated timed runs
after warm-up, with the spread, naming the hardware, threads and dtype. Hardware-dependent by nature: a figure
holds only for the machine it was measured on."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ArchauditError


class BenchError(ArchauditError, ValueError):
    """A benchmark cannot run as asked (no CUDA device, a bad batch size ...)."""


@dataclass(frozen=True)
class BenchResult:
    batch: int
    samples_per_s: float
    low: float
    high: float
    """Slowest and fastest of the timed runs, in samples per second."""
    repeats: int


@dataclass(frozen=True)
class BenchReport:
    model: str
    hardware: str
    device: str
    threads: int
    dtype: str
    torch_version: str
    results: tuple[BenchResult, ...]

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


def bench(
    name: str,
    build: Callable[[], nn.Module],
    example: Callable[[int, str], Sequence[torch.Tensor]],
    *,
    batches: Sequence[int] = (1, 64, 1024),
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 3,
    repeats: int = 10,
    min_seconds: float = 0.05,
) -> BenchReport:
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device on this machine")
    if any(b < 1 for b in batches):
        raise BenchError(f"--batch must be at least 1, got {list(batches)}")
    model = build().to(device=device, dtype=dtype).eval()
    results = []
    sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else _no_sync
    with torch.inference_mode():
        for batch in batches:
            inputs = [t.to(dtype) if t.is_floating_point() else t for t in example(batch, device)]
            for _ in range(warmup):
                model(*inputs)
            sync()
            # enough calls per timed run that a run lasts at least min_seconds
            start = time.perf_counter()
            model(*inputs)
            sync()
            once = max(time.perf_counter() - start, 1e-6)
            calls = max(1, int(min_seconds / once))
            rates = []
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(calls):
                    model(*inputs)
                sync()
                rates.append(batch * calls / (time.perf_counter() - start))
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
    )
