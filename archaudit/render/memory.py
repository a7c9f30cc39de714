"""Memory of a training step and of inference (``archaudit memory``), as Markdown and plain dicts."""

from __future__ import annotations

from typing import Any

from ..memory import MemoryAudit
from ._fmt import cell, n, path, table


def memory_json(memory: MemoryAudit) -> dict[str, Any]:
    return memory.as_json()


def mb(value: int) -> str:
    """Bytes as megabytes (10^6 bytes), beside the exact bytes."""
    return f"{value / 1e6:,.2f} MB ({value:,} B)"


def memory_markdown(memory: MemoryAudit, title: str | None = None) -> str:
    kv = memory.kv_cache
    parts = [
        f"# Memory: {cell(title or memory.model_type)}",
        "",
        f"Input: {cell(', '.join(memory.inputs))}; optimizer {memory.optimizer_name.value}; precision "
        f"{memory.precision.value}. Activations are the tensors autograd saves for backward, each storage once, "
        "parameters and buffers apart; measured in one forward pass on fake tensors (nothing allocated). "
        "1 MB = 10^6 bytes.",
        "",
    ]
    training = [
        ("weights", mb(memory.weights)),
        ("buffers", mb(memory.buffers)),
        ("gradients (trainable parameters)", mb(memory.gradients)),
        (f"optimizer state ({memory.optimizer_name.value})", mb(memory.optimizer)),
        ("activations saved for backward", mb(memory.activations)),
        ("total (the above together)", mb(memory.total)),
        ("backward transient allowed for (2 x the largest activation)", mb(memory.transient)),
        ("training peak (estimate, an upper bound)", mb(memory.training_peak)),
    ]
    parts += ["## Training step", "", table(training, ["quantity", "bytes"], ["left", "right"]), ""]
    inference = [
        ("weights and buffers", mb(memory.weights + memory.buffers)),
        (
            f"largest live activations (at {cell(path(memory.inference_peak_module))})",
            mb(memory.inference_activations),
        ),
    ]
    if kv is not None:
        inference.append(
            (
                f"KV cache: 2 x {kv.layers} layers x {kv.kv_heads} heads x {kv.head_dim} x {kv.tokens:,} tokens x "
                f"{kv.element_size} B ({cell(kv.source)})",
                mb(kv.bytes),
            )
        )
    inference.append(("inference peak", mb(memory.inference_peak)))
    parts += ["## Inference (no gradients)", "", table(inference, ["quantity", "bytes"], ["left", "right"]), ""]
    rows = [
        (
            cell(path(r.name)),
            cell(r.type),
            n(r.weights),
            n(r.gradients),
            n(r.optimizer),
            n(r.activations),
            n(r.saved_tensors),
            n(r.total),
        )
        for r in memory.records
        if r.total
    ]
    parts += ["## Modules (bytes each holds or saved itself)", ""]
    parts += [
        table(
            rows,
            ["module", "type", "weights", "gradients", "optimizer", "activations", "saved storages", "total"],
            ["left", "left", "right", "right", "right", "right", "right", "right"],
        ),
        "",
    ]
    if memory.notes:
        parts += ["Notes:", "", *(f"- {cell(note)}" for note in memory.notes), ""]
    return "\n".join(parts).rstrip() + "\n"
