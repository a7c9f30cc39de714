"""Cross-tool table: archaudit's MACs per top-level module beside torchinfo, fvcore and FlopCounterMode, run in
the same process on the same model, with the known reason for each difference.

Every figure is converted to MACs: torchinfo reports mult-adds (MACs), fvcore one "flop" per MAC, and
FlopCounterMode 2 FLOPs per MAC. A tool that cannot run on a model is reported with its error, never as 0.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import sys
import sysconfig
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .records import FlopsAudit, FlopsRecord, MacCount
from .trace import meta_autocast, op_name, spare_dynamo
from .usercode import one_line

TOOLS = ("torchinfo", "fvcore", "flop_counter_meta", "flop_counter_cpu")
TOOL_LABELS = {
    "torchinfo": "torchinfo",
    "fvcore": "fvcore",
    "flop_counter_meta": "FlopCounterMode (meta)",
    "flop_counter_cpu": "FlopCounterMode (CPU)",
}


@dataclass
class _Attribution:
    """What one tool says of each module path: the MACs it attributes to that module's own work, and the ops it
    says it could not count there (fvcore's ``unsupported_ops``; empty for the tools that do not say)."""

    own: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _own_from_inclusive(inclusive: dict[str, int], model: nn.Module) -> dict[str, int]:
    """Per module path, a tool's inclusive figure less its children's (a path the tool does not list stands for
    the sum of its children's, as a ModuleList that is never called itself)."""
    own: dict[str, int] = {}
    for path, module in model.named_modules():
        children = sum(
            _subtree_flops(inclusive, f"{path}.{name}" if path else name, child)
            for name, child in module._modules.items()
            if child is not None
        )
        own[path] = _subtree_flops(inclusive, path, module) - children
    return own


@dataclass(frozen=True)
class ToolRow:
    name: str
    """Top-level module path (``"(own)"`` for the root module's own work)."""
    type: str
    archaudit: int
    tools: dict[str, int | None]
    reasons: dict[str, str]


@dataclass(frozen=True)
class ToolComparison:
    rows: tuple[ToolRow, ...]
    totals: dict[str, int | None]
    """archaudit and each tool's total MACs (None where the tool could not run)."""
    errors: dict[str, str] = field(default_factory=dict)
    """Why a tool has no figure."""
    notes: dict[str, str] = field(default_factory=dict)
    """How a tool's figure was obtained when not as plainly run (a fallback after a failure)."""


def _top_level(path: str) -> str:
    return path.split(".", 1)[0] if path else "(own)"


def _torchinfo(
    model: nn.Module, inputs: Sequence[torch.Tensor], seen: _Attribution, keywords: Mapping[str, torch.Tensor]
) -> dict[str, int]:
    import torchinfo

    paths = {id(m): p for p, m in model.named_modules()}
    device = next(iter([*inputs, *keywords.values()])).device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # torchinfo passes the keyword arguments it does not know itself on to forward
        forward_keywords: dict[str, Any] = dict(keywords)
        summary = torchinfo.summary(model, input_data=list(inputs), verbose=0, device=device, **forward_keywords)
    per: dict[str, int] = {"__total__": int(summary.total_mult_adds)}
    for layer in summary.summary_list:
        if layer.is_leaf_layer:  # torchinfo counts leaves only: a module with children has no figure of its own
            path = paths.get(id(layer.module), "")
            key = _top_level(path)
            per[key] = per.get(key, 0) + int(layer.macs)
            seen.own[path] = seen.own.get(path, 0) + int(layer.macs)
    return per


class _ByName(nn.Module):
    """Calls ``model`` with its last inputs passed by name: fvcore's tracer passes inputs positionally only."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> Any:
        split = len(inputs) - len(self.names)
        return self.model(*inputs[:split], **dict(zip(self.names, inputs[split:], strict=True)))


def _fvcore(
    model: nn.Module, inputs: Sequence[torch.Tensor], seen: _Attribution, keywords: Mapping[str, torch.Tensor]
) -> dict[str, int]:
    names = tuple(keywords)
    traced = _ByName(model, names) if names else model

    def traced_path(path: str) -> str:  # the model's path as fvcore names it (under _ByName's ``model``)
        return path if not names else f"model.{path}" if path else "model"

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis  # its import warns about torch.jit.script

        analysis = FlopCountAnalysis(traced, (*inputs, *keywords.values()))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        raw = analysis.by_module()
        by_module = {path: int(raw.get(traced_path(path), 0)) for path, _ in model.named_modules()}
        total = int(analysis.total())
        for path, _ in model.named_modules():
            ops = analysis.unsupported_ops(traced_path(path))
            if ops:
                seen.unsupported[path] = tuple(sorted(ops))
    seen.own.update(_own_from_inclusive(by_module, model))
    per = {"__total__": total}
    children = [name for name, _ in model.named_children()]
    for name in children:
        per[name] = int(by_module.get(name, 0))
    per["(own)"] = total - sum(per[name] for name in children)
    return per


# Frames in these are the tools' and torch's machinery: a failure is placed in the first frame outside them.
_MACHINERY = ("torch", "fvcore", "torchinfo", "iopath", "functorch")
_ARCHAUDIT = Path(__file__).resolve().parent
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def _shown_path(filename: str) -> tuple[str, bool]:
    """``(path as shown, is machinery)``: installed files from their package directory, others from the working
    directory when under it."""
    path = Path(filename)
    text = path.as_posix()
    if "site-packages/" in text:
        shown = text.rsplit("site-packages/", 1)[1]
        return shown, shown.split("/")[0] in _MACHINERY
    resolved = path.resolve()
    if resolved.is_relative_to(_ARCHAUDIT) or resolved.is_relative_to(_STDLIB) or filename.startswith("<"):
        return text, True
    with contextlib.suppress(ValueError):
        return resolved.relative_to(Path.cwd()).as_posix(), False
    return text, False


def failure(tool: str, exc: BaseException) -> str:
    """Why ``tool`` could not run, from its traceback: the error, whether it was raised while torch.jit.trace ran the
    model (fvcore's tracer), and the innermost frame outside torch, the tools and archaudit (the model's own code,
    or the library it calls, where the failure lies)."""
    frames = traceback.extract_tb(exc.__traceback__)
    text = one_line(exc)
    if any(Path(f.filename).as_posix().endswith("torch/jit/_trace.py") for f in frames):
        text += ", raised under torch.jit.trace" + (" (fvcore's tracer)" if tool == "fvcore" else "")
    for frame in reversed(frames):
        shown, machinery = _shown_path(frame.filename)
        if not machinery:
            return f"{text} in {shown}:{frame.lineno} ({frame.name})"
    return text


def _strip_root(key: str, root: str) -> str:
    if key == root:
        return ""
    return key[len(root) + 1 :] if key.startswith(root + ".") else key


class _OpLog(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Every aten op that reaches FlopCounterMode, by the innermost module call on ``stack`` (entered inside
    FlopCounterMode, it sees each op before FlopCounterMode counts or decomposes it)."""

    def __init__(self, stack: list[str], ops: dict[str, dict[str, int]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in torch
        self.stack, self.ops = stack, ops

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        if not isinstance(func, torch._ops.HigherOrderOperator):
            own = self.ops.setdefault(self.stack[-1] if self.stack else "", {})
            name = op_name(func._overloadpacket)
            own[name] = own.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def _run_flop_counter(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    uncounted: dict[str, tuple[str, ...]] | None = None,
    keywords: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, int]:
    """FlopCounterMode's inclusive FLOPs per module path, as the tool reports them (RNNs run their recurrence).
    ``uncounted`` gets, per module path, the ops of its own calls that carry matrix work FlopCounterMode has no
    formula for: an attention kernel outside its table (``aten._scaled_dot_product_flash_attention_for_cpu``, what
    scaled_dot_product_attention runs on CPU), or an op archaudit calls unsupported (no formula, no column, not
    free)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .macs import COLUMN_OPS, COUNTED_OPS, unsupported_ops

    attention = {op for op in COLUMN_OPS["softmax"] if "attention" in op} - COUNTED_OPS

    paths = {id(m): name for name, m in model.named_modules()}
    stack: list[str] = []
    ops: dict[str, dict[str, int]] = {}

    def enter(module: nn.Module, args: Any) -> None:
        stack.append(paths[id(module)])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()  # a forward hook's return value would replace the output: none is returned

    handles = []
    for module in dict(model.named_modules()).values():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    counter = FlopCounterMode(display=False)
    spare_dynamo()  # FlopCounterMode's own dispatch is wrapped to disable dynamo (imported above, so looked at now)
    try:
        with torch.no_grad(), counter, _OpLog(stack, ops):
            model(*inputs, **(keywords or {}))
    finally:
        for handle in handles:
            handle.remove()
    if uncounted is not None:
        for path, own in ops.items():
            missing = sorted(attention.intersection(own) | {op for op, _ in unsupported_ops(own)})
            if missing:
                uncounted[path] = tuple(missing)
    root = type(model).__name__
    return {
        _strip_root(key, root): sum(ops.values()) for key, ops in counter.get_flop_counts().items() if key != "Global"
    }


def _subtree_flops(fc: dict[str, int], name: str, module: nn.Module) -> int:
    """FlopCounterMode FLOPs of a module path and everything below it: a ModuleList is never called itself, so its
    children stand for it."""
    if name in fc:
        return fc[name]
    return sum(
        _subtree_flops(fc, f"{name}.{child_name}" if name else child_name, child)
        for child_name, child in module._modules.items()
        if child is not None
    )


def _flop_counter(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    notes: dict[str, str],
    tool: str,
    seen: _Attribution,
    keywords: Mapping[str, torch.Tensor],
) -> dict[str, int]:
    """FlopCounterMode's MACs per top-level module. When it fails on the model as given (its module tracker's
    autograd hooks fail on some models), it is run again on a copy with ``requires_grad_(False)``, and ``notes``
    says so: a peer tool's failure is a finding about that tool, not a failure of the audit."""
    try:
        counts = _run_flop_counter(model, inputs, seen.unsupported, keywords)
    except Exception as exc:  # noqa: BLE001 - any failure of the peer tool is a finding, retried on a copy
        first = one_line(exc)
        seen.unsupported.clear()
        counts = _run_flop_counter(copy.deepcopy(model).requires_grad_(False), inputs, seen.unsupported, keywords)
        notes[tool] = f"failed on the model as given ({first}); counted on a copy with requires_grad_(False)"
    total = counts.get("", 0) // 2
    seen.own.update({path: flops // 2 for path, flops in _own_from_inclusive(counts, model).items()})
    per = {"__total__": total}
    for name, child in model.named_children():
        per[name] = _subtree_flops(counts, name, child) // 2
    per["(own)"] = total - sum(v for k, v in per.items() if k != "__total__")
    return per


def _factor(factor: int, output: tuple[int, ...]) -> str:
    """What a per-parameter factor is, in terms of the module's output shape, where it is one of the two products
    a tool takes of it: its dim 0 (the batch), or every dim but dim 1 (read as a convolution's channels)."""
    if len(output) >= 2 and factor == output[0] and factor != math.prod(output):
        return ", its output's dim 0 (the batch)"
    if len(output) >= 3 and factor == output[0] * math.prod(output[2:]):
        return ", its output's size without dim 1 (read as channels)"
    return ""


def _mechanism(
    tool: str, ours: MacCount, theirs: int, params: int, unsupported: tuple[str, ...], output: tuple[int, ...] = ()
) -> str:
    """How ``theirs`` (one module's own MACs as the tool counts them) follows from this module's own audited
    work, found by arithmetic on the audit's columns, the module's parameters and its output shape, never from
    its type."""
    label = TOOL_LABELS[tool]
    if theirs == 0:
        if unsupported:
            return f"counts 0 ({label} has no formula for {', '.join(unsupported)})"
        # torchinfo's figures are parameters x output dims (every other reason of its shows it): none, no figure
        return "counts 0 (it owns no parameters)" if tool == "torchinfo" and params == 0 else "counts 0"
    gap = theirs - ours.macs
    if ours.bias and gap == ours.bias:
        return "counts the bias adds as MACs"
    for per_element in (1, 2, 3, 4, 5):
        if ours.norm and gap == per_element * ours.norm:
            return f"counts normalisation as {per_element} MAC{'s' if per_element > 1 else ''} per element"
        if ours.norm and ours.bias and gap == ours.bias + per_element * ours.norm:
            return f"counts the bias adds and normalisation ({per_element} per element) as MACs"
    if params and theirs % params == 0:
        return f"counts parameters x {theirs // params:,}{_factor(theirs // params, output)}"
    if unsupported and theirs < ours.macs:
        return f"misses the work of {', '.join(unsupported)}, which {label} says it cannot count"
    return "differs"


def _reasons(
    tool: str,
    subtree: list[tuple[nn.Module, FlopsRecord]],
    tool_value: int | None,
    ours: int,
    seen: _Attribution | None,
) -> str:
    """Why a tool's figure for one row differs from archaudit's, derived module by module: each module whose own
    MACs differ is explained by arithmetic (:func:`_mechanism`), modules explained alike are grouped with their
    share of the gap, and what no module accounts for is said to be unexplained."""
    if tool_value is None:
        return ""
    if tool_value == ours:
        return "agrees"
    if seen is None:
        return "unexplained difference"
    groups: dict[tuple[str, str], list[int]] = {}
    for module, record in subtree:
        theirs = seen.own.get(record.name, 0)
        if theirs == record.macs:
            continue
        params = sum(p.numel() for p in module.parameters(recurse=False))
        output = record.output_shapes[0] if record.output_shapes else ()
        mechanism = _mechanism(tool, record.counts, theirs, params, seen.unsupported.get(record.name, ()), output)
        groups.setdefault((record.type, mechanism), []).append(theirs - record.macs)
    parts = []
    explained = 0
    for (kind, mechanism), gaps in groups.items():
        explained += sum(gaps)
        count = f" x{len(gaps)}" if len(gaps) > 1 else ""
        parts.append(f"{kind}{count} {mechanism} ({sum(gaps):+,})")
    rest = tool_value - ours - explained
    if rest:
        parts.append(f"{rest:+,} that no module accounts for (unexplained)")
    if any(mechanism == "differs" for _, mechanism in groups):
        parts.append("unexplained per module")
    return "; ".join(parts) if parts else "unexplained difference"


def cpu_inputs(inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Real (CPU) inputs of the same shapes and dtypes, for the tools that need real tensors: zeros for integer
    inputs (token ids), seeded normal values otherwise, so that every run feeds the same values."""
    generator = torch.Generator().manual_seed(0)
    return [
        torch.randn(t.shape, dtype=t.dtype, generator=generator)
        if t.dtype.is_floating_point
        else torch.zeros(t.shape, dtype=t.dtype)
        for t in inputs
    ]


@dataclass
class ToolRuns:
    """What some of the tools gave, before they are lined up: per tool, its MACs per top-level module (and
    ``"__total__"``) or its error, a note on how it was run, and what it attributes to each module path. Plain
    values, so a half run in a worker crosses back to the process that lines them up."""

    results: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    seen: dict[str, _Attribution] = field(default_factory=dict)

    def merged(self, other: ToolRuns) -> ToolRuns:
        return ToolRuns(
            {**self.results, **other.results},
            {**self.errors, **other.errors},
            {**self.notes, **other.notes},
            {**self.seen, **other.seen},
        )


HALVES = ("meta", "cpu")
"""The two independent halves of the tools' runs: the tools on meta (FlopCounterMode, the slow one: torch's Python
meta decompositions; and torchinfo where no CPU copy may be made), and those on a CPU copy (torchinfo, fvcore and
FlopCounterMode), or the reason they did not run."""


def run_tools(
    meta_model: nn.Module,
    meta_inputs: Sequence[torch.Tensor],
    cpu_copy: Callable[[], nn.Module] | None = None,
    *,
    half: str | None = None,
    meta_keywords: Mapping[str, torch.Tensor] | None = None,
    cpu_limit_params: int = 200_000_000,
    cpu_limit_input_bytes: int = 256 * 2**20,
) -> ToolRuns:
    """Run the tools of one of :data:`HALVES` (``half``), or all of them, on the same model and inputs.

    torchinfo and FlopCounterMode run on the model as built (on meta); fvcore (which traces real tensors) and
    FlopCounterMode on CPU run on ``cpu_copy()``, a fresh CPU copy from the same builder, when it is given and the
    model has at most ``cpu_limit_params`` parameters. No tool is handed a TARGET to resolve again.
    """
    if half not in (None, *HALVES):
        raise ValueError(f"half must be one of {HALVES} or None, not {half!r}")
    keywords = dict(meta_keywords or {})
    runs = ToolRuns()
    results, errors, notes = runs.results, runs.errors, runs.notes

    def attempt(tool: str, fn: Callable[[_Attribution], dict[str, int]], *, on_meta: bool = False) -> None:
        seen = runs.seen[tool] = _Attribution()
        try:
            # the same harness as archaudit's own trace: stdout kept off archaudit's output, and torch.autocast a null
            # context on meta (torch knows no autocast there; it casts nothing that a tool would count)
            if on_meta:
                spare_dynamo()  # torch's Python meta kernels would import dynamo
            with contextlib.redirect_stdout(sys.stderr), meta_autocast():
                results[tool] = fn(seen)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a tool failing is a finding, reported beside the others
            errors[tool] = failure(tool, exc)

    n_params = sum(p.numel() for p in meta_model.parameters())
    input_bytes = sum(t.numel() * t.element_size() for t in [*meta_inputs, *keywords.values()])
    on_cpu = cpu_copy is not None and n_params <= cpu_limit_params and input_bytes <= cpu_limit_input_bytes
    if half in (None, "meta"):
        attempt(
            "flop_counter_meta",
            lambda seen: _flop_counter(meta_model, meta_inputs, notes, "flop_counter_meta", seen, keywords),
            on_meta=True,
        )
        if not on_cpu:
            # torchinfo's figures do not depend on the device; on meta it pays for the meta decompositions
            attempt("torchinfo", lambda seen: _torchinfo(meta_model, meta_inputs, seen, keywords), on_meta=True)
    if half == "meta":
        return runs
    if cpu_copy is None or not on_cpu:
        if cpu_copy is None:
            why = "needs real tensors; no CPU build was given"
        elif n_params > cpu_limit_params:
            why = f"needs real tensors; skipped for a model of {n_params:,} parameters (at most {cpu_limit_params:,})"
        else:
            why = f"needs real tensors; skipped for inputs of {input_bytes:,} bytes (at most {cpu_limit_input_bytes:,})"
        for tool in ("fvcore", "flop_counter_cpu"):
            errors[tool] = why
        return runs
    cpu_model = cpu_copy()
    real = cpu_inputs([*meta_inputs, *keywords.values()])
    real_inputs, real_keywords = (
        real[: len(meta_inputs)],
        dict(zip(keywords, real[len(meta_inputs) :], strict=True)),
    )
    cpu_model.eval()
    attempt("torchinfo", lambda seen: _torchinfo(cpu_model, real_inputs, seen, real_keywords))
    attempt("fvcore", lambda seen: _fvcore(cpu_model, real_inputs, seen, real_keywords))
    attempt(
        "flop_counter_cpu",
        lambda seen: _flop_counter(cpu_model, real_inputs, notes, "flop_counter_cpu", seen, real_keywords),
    )
    return runs


def compare_tools(
    audit: FlopsAudit,
    meta_model: nn.Module,
    meta_inputs: Sequence[torch.Tensor],
    cpu_copy: Callable[[], nn.Module] | None = None,
    *,
    meta_keywords: Mapping[str, torch.Tensor] | None = None,
    cpu_limit_params: int = 200_000_000,
    cpu_limit_input_bytes: int = 256 * 2**20,
) -> ToolComparison:
    """Run each tool on the same model and inputs (:func:`run_tools`) and line their MACs up per top-level
    module (:func:`line_up`)."""
    runs = run_tools(
        meta_model,
        meta_inputs,
        cpu_copy,
        meta_keywords=meta_keywords,
        cpu_limit_params=cpu_limit_params,
        cpu_limit_input_bytes=cpu_limit_input_bytes,
    )
    return line_up(audit, meta_model, runs)


def line_up(audit: FlopsAudit, model: nn.Module, runs: ToolRuns) -> ToolComparison:
    """The tools' MACs beside archaudit's per top-level module of ``model`` (the audited model, on any device: only
    its structure is read), with the known reason for each difference. A tool in neither half given is said not to
    have run, never shown as a bare gap."""
    results, notes = runs.results, runs.notes
    errors = dict(runs.errors)
    for tool in TOOLS:
        if tool not in results and tool not in errors:
            errors[tool] = "not run (its half of the tools' runs was not given)"
    seen = {tool: runs.seen.get(tool, _Attribution()) for tool in TOOLS}
    modules = dict(model.named_modules())
    subtrees: dict[str, list[tuple[nn.Module, FlopsRecord]]] = {}
    for record in audit.records:
        subtrees.setdefault(_top_level(record.name), []).append((modules[record.name], record))
    ours: dict[str, int] = {}
    for record in audit.records:
        key = _top_level(record.name)
        ours[key] = ours.get(key, 0) + record.macs
    names = [name for name, _ in model.named_children()] + ["(own)"]
    rows = []
    for name in names:
        values = {tool: results[tool].get(name, 0) if tool in results else None for tool in TOOLS}
        if name == "(own)" and not ours.get(name) and not any(values.values()):
            continue
        module = getattr(model, name, None) if name != "(own)" else model
        rows.append(
            ToolRow(
                name=name,
                type=type(module).__name__,
                archaudit=ours.get(name, 0),
                tools=values,
                reasons={
                    tool: _reasons(
                        tool,
                        subtrees.get(name, []),
                        values[tool],
                        ours.get(name, 0),
                        seen[tool] if tool in results else None,
                    )
                    for tool in TOOLS
                },
            )
        )
    totals: dict[str, int | None] = {"archaudit": audit.macs}
    totals.update({tool: results[tool]["__total__"] if tool in results else None for tool in TOOLS})
    return ToolComparison(tuple(rows), totals, errors, notes)
