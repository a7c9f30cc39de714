"""archaudit's benchmarks, each a ratio against an anchor measured in the same run, written to
reports/benchmarks.md (with the machine they were measured on).

    python benchmarks/run.py [--output reports/benchmarks.md] [--quick]

1. `archaudit report amnl` wall time against `python -c "import torch"` (goals: the report at most 2.0x, with
   `--no-compare` and `flops amnl` at most 1.25x), and where the report's time goes, by section.
2. Parameters + MACs of a stack of nn.TransformerEncoderLayer(4096, 32, dim_feedforward=16384) built on meta,
   against FlopCounterMode on meta on the same built model (goal: at most 1.0x, peak memory no more than 100 MB
   above the build's), for 8, 16, 32 and 64 layers to show the cost grows linearly.
3. The solver's configurations per second against building each configuration and calling numel().
4. The commands beyond one forward pass (`flops --training`, `memory`, `flops --vary`, `memory --vary`, `diff`)
   on the 6.4-billion-parameter stack of 2. (benchmarks/stack.py), whole processes, against `archaudit flops`
   on the same model (goal: at most 1.5x).
5. `archaudit report` on that stack against FlopCounterMode's own script on it (goal: at most 1.0x).

Every timed figure is the median of 5 runs in fresh processes (so imports and memory are counted the way a user
meets them), taken in rounds that run each command of a table once beside its anchor (see ``walls``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def walls(cmds: list[list[str]], runs: int) -> list[float]:
    """Each command's median wall time over ``runs`` rounds, every round running each command once in turn: a
    noisy machine's drift over the run moves a command and its anchor alike, where timing one command's runs and
    then the next's would put the drift into their ratio."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for found, cmd in zip(times, cmds, strict=True):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            found.append(time.perf_counter() - start)
    return [statistics.median(found) for found in times]


STACK = r"""
import json, resource, sys, time
import torch
from torch import nn

def rss_kib():
    with open("/proc/self/status") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

layers, tool = int(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
with torch.device("meta"):
    model = nn.Sequential(*[nn.TransformerEncoderLayer(4096, 32, dim_feedforward=16384, batch_first=True)
                            for _ in range(layers)])
x = torch.empty(1, 512, 4096, device="meta")
build_s = time.perf_counter() - start
if tool == "archaudit":
    import archaudit
    from archaudit.macs import audit_macs
else:
    from torch.utils.flop_counter import FlopCounterMode
# torch's one-time lazy imports on a first meta forward (~3 s) are paid outside the timed region, by both tools
with torch.device("meta"):
    nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)(torch.empty(1, 2, 8))
after_build, _ = rss_kib()
start = time.perf_counter()
if tool == "archaudit":
    params = archaudit.audit_params(model).total
    macs = audit_macs(model, [x]).macs
else:
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    macs = counter.get_total_flops() // 2
seconds = time.perf_counter() - start
_, peak = rss_kib()
print(json.dumps({"layers": layers, "tool": tool, "build_s": build_s, "seconds": seconds, "params": params,
                  "macs": macs, "peak_above_build_mb": max(0, peak - after_build) / 1024}))
"""


SECTIONS = r"""
import json, time
marks = {}
start = time.perf_counter()
def mark(name):
    global start
    now = time.perf_counter()
    marks[name] = marks.get(name, 0.0) + now - start
    start = now
import archaudit
from archaudit.report_data import build_report
mark("import archaudit (torch included)")
audited = archaudit.audit("amnl")
mark("build, walk and trace (parameters, MACs)")
meta_half = audited.run_tools("meta")
mark("cross-tool: FlopCounterMode on meta (in the report's worker)")
cpu_half = audited.run_tools("cpu")
audited.line_up(meta_half.merged(cpu_half))
mark("cross-tool: torchinfo, fvcore, FlopCounterMode on CPU")
from archaudit.claims import check_document
from archaudit.references import get_reference
for path in get_reference("amnl").claims:
    check_document(path, default_inputs=audited.flops.inputs)
mark("documentation claims")
training = audited.training()
mark("training step")
audited.memory()
mark("memory")
from archaudit.report_data import _scaling
_scaling(audited.target)
mark("cost against the window T")
audited.estimates(training)
mark("estimates")
report = build_report("amnl")  # the record to render, built again: not timed (its sections are above)
start = time.perf_counter()
from archaudit.render.model import report_markdown
report_markdown(report)
mark("Markdown")
print(json.dumps(marks))
"""


FCM_SCRIPT = r"""
import sys
sys.path.insert(0, "benchmarks")
import torch
from torch.utils.flop_counter import FlopCounterMode
from stack import build
with torch.device("meta"):
    model = build()
with FlopCounterMode(display=False) as counter, torch.no_grad():
    model(torch.empty(1, 512, 4096, device="meta"))
print(counter.get_total_flops())
"""


def stack_run(layers: int, tool: str) -> dict:
    out = subprocess.run([sys.executable, "-c", STACK, str(layers), tool], check=True, capture_output=True, text=True,
                         cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    import torch

    from archaudit.bench import cpu_name

    return (f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "reports" / "benchmarks.md"))
    parser.add_argument("--quick", action="store_true", help="fewer runs and layer counts (a smoke run)")
    args = parser.parse_args()
    runs = 1 if args.quick else 5
    lines = ["# Benchmarks", "", f"Measured on: {machine()}.", "",
             "Ratios against anchors measured in the same run; timings are medians of "
             f"{runs} fresh process{'es' if runs > 1 else ''}, taken in rounds that run each command of a table once "
             "beside its anchor. "
             "Regenerate with `python benchmarks/run.py` (figures are specific to the machine above).", ""]

    exe = [sys.executable, "-m", "archaudit"]
    torch_s, quick_exit_s, meta_s, report_s, no_compare_s, params_s, flops_s = walls(
        [
            [sys.executable, "-c", "import torch"],
            # what the anchor costs when it ends as archaudit's entry points end (archaudit.cli.exit_process)
            [sys.executable, "-c", "import torch, atexit, os, sys; atexit._run_exitfuncs(); sys.stdout.flush(); "
             "sys.stderr.flush(); os._exit(0)"],
            # torch's Python meta kernels import torch._dynamo and sympy on first use: any meta forward outside
            # archaudit pays it
            [sys.executable, "-c", "import torch; torch.nn.ReLU()(torch.empty(1, device='meta'))"],
            [*exe, "report", "amnl"],
            [*exe, "report", "amnl", "--no-compare"],
            [*exe, "params", "amnl", "--meta"],
            [*exe, "flops", "amnl"],
        ],
        runs,
    )
    lines += ["## 1. `archaudit report amnl` against `python -c \"import torch\"` (goals: at most 2.0x, and 1.25x "
              "for `--no-compare` and `flops`)", "",
              "| command | seconds | ratio to import torch | ratio to import torch + one meta op |",
              "|---|---:|---:|---:|",
              f"| `python -c \"import torch\"` (anchor) | {torch_s:.2f} | 1.00x | |",
              f"| `import torch` ending as archaudit's commands end, without Python's teardown of its modules "
              f"(for comparison) | {quick_exit_s:.2f} | {quick_exit_s / torch_s:.2f}x | |",
              f"| `import torch` + one meta op, `nn.ReLU()` on a meta tensor (second anchor) | {meta_s:.2f} | "
              f"{meta_s / torch_s:.2f}x | 1.00x |",
              f"| `archaudit report amnl` | {report_s:.2f} | {report_s / torch_s:.2f}x | {report_s / meta_s:.2f}x |",
              f"| `archaudit report amnl --no-compare` | {no_compare_s:.2f} | {no_compare_s / torch_s:.2f}x | "
              f"{no_compare_s / meta_s:.2f}x |",
              f"| `archaudit params amnl --meta` | {params_s:.2f} | {params_s / torch_s:.2f}x | {params_s / meta_s:.2f}x |",
              f"| `archaudit flops amnl` | {flops_s:.2f} | {flops_s / torch_s:.2f}x | {flops_s / meta_s:.2f}x |",
              "",
              "The second anchor is what any shape capture on meta tensors pays outside archaudit: torch's Python "
              "meta kernels import torch._dynamo (and a meta convolution sympy) on first use, whatever the model. "
              "archaudit lets those kernels run without importing dynamo while nothing else has imported it.",
              "Every archaudit command ends its process once its atexit handlers have run and its output is "
              "flushed, without Python's teardown of torch's modules (archaudit.cli.exit_process); the anchors "
              "pay that teardown, as any script that imports torch does. The third row shows what it costs: "
              "the anchor less that row is the part of each ratio that the quick exit saves. A command also "
              "collects garbage less often while it runs (archaudit.cli.GC_THRESHOLDS).",
              "`flops amnl` and `report amnl --no-compare` trace the model, and measure its memory, on a zero CPU "
              "copy (a small model). The full report runs torchinfo, fvcore and FlopCounterMode (on meta and on "
              "CPU) for its cross-tool section: FlopCounterMode on meta (the BiLSTM's Python meta decompositions) "
              "in a forked worker beside the other sections, the other tools first in the report's own process.",
              ""]
    sections = json.loads(subprocess.run([sys.executable, "-c", SECTIONS], check=True, capture_output=True,
                                         text=True, cwd=ROOT).stdout.strip().splitlines()[-1])
    total = sum(sections.values())
    lines += ["### Where `archaudit report amnl`'s time goes", "",
              "One fresh process, each step of the report timed one after another in the order the report makes "
              "them (a first step pays the one-time costs it meets first: imports, torch's first meta op). The "
              "report itself runs FlopCounterMode on meta in a worker beside the others.", "",
              "| section | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f}% |" for name, seconds in sections.items()]
    lines += [f"| total | {total:.2f} | 100% |", ""]

    counts = [8, 16] if args.quick else [8, 16, 32, 64]
    rows = []
    for layers in counts:
        pairs = [(stack_run(layers, "archaudit"), stack_run(layers, "flop_counter")) for _ in range(runs)]
        ours, theirs = [a for a, _ in pairs], [f for _, f in pairs]
        a = statistics.median(r["seconds"] for r in ours)
        f = statistics.median(r["seconds"] for r in theirs)
        assert ours[0]["macs"] == theirs[0]["macs"], (ours[0], theirs[0])
        rows.append((layers, ours[0]["params"], ours[0]["macs"], statistics.median(r["build_s"] for r in ours), a, f,
                     max(r["peak_above_build_mb"] for r in ours), max(r["peak_above_build_mb"] for r in theirs)))
    lines += ["## 2. Parameters + MACs of a TransformerEncoderLayer(4096, 32, dim_feedforward=16384) stack on meta, "
              "against FlopCounterMode on meta (goal: at most 1.0x, at most 100 MB above the build's peak)", "",
              "Input 1x512x4096. Both tools run on the same model, built on the meta device, and give the same MACs. "
              "torch's one-time lazy imports on a first meta forward (torch._dynamo and sympy, about 3 s) are paid "
              "before the timed region, by both.", "",
              "| layers | parameters | MACs | build s | archaudit s | FlopCounterMode s | ratio | archaudit MB above build | FlopCounterMode MB above build |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for layers, params, macs, build_s, a, f, mem_a, mem_f in rows:
        lines.append(f"| {layers} | {params:,} | {macs:,} | {build_s:.2f} | {a:.3f} | {f:.3f} | {a / f:.2f}x | "
                     f"{mem_a:.1f} | {mem_f:.1f} |")
    per_layer = [a / layers for layers, _, _, _, a, _, _, _ in rows]
    lines += ["", f"archaudit seconds per layer: {', '.join(f'{x * 1000:.1f} ms' for x in per_layer)} "
                  f"(8 to {counts[-1]} layers): linear.", ""]

    from bench_solver import measure

    solver = measure()
    lines += ["## 3. The solver against building each configuration and calling numel()", "",
              "| method | configurations/s | ratio |", "|---|---:|---:|",
              f"| build on meta + numel() (anchor) | {solver['build_numel_rate']:,.0f} | 1x |",
              f"| build on meta + archaudit walk | {solver['build_walk_rate']:,.0f} | "
              f"{solver['build_walk_rate'] / solver['build_numel_rate']:.2f}x |",
              f"| solver (analytic formulas on a numpy grid of {solver['configurations']:,}) | "
              f"{solver['solver_rate']:,.0f} | {solver['ratio']:,.0f}x |", "",
              "Goal: at least 100,000 configurations per second.", ""]

    stack = "benchmarks/stack.py:build"
    at = ["--device", "meta", "--input", "1x512x4096"]
    varied = ["--device", "meta", "--input", "1xTx4096", "--vary", "T"]
    commands = [
        ("flops --training", [*exe, "flops", stack, *at, "--training"]),
        ("memory", [*exe, "memory", stack, *at]),
        ("flops --vary T", [*exe, "flops", stack, *varied]),
        ("memory --vary T", [*exe, "memory", stack, *varied]),
        ("diff A A", [*exe, "diff", stack, stack, *at]),
    ]
    anchor_s, *seconds_each = walls([[*exe, "flops", stack, *at], *(cmd for _, cmd in commands)], runs)
    fcm_stack, report_stack = walls(
        [[sys.executable, "-c", FCM_SCRIPT], [*exe, "report", stack, *at, "--no-compare"]], runs
    )
    section5 = ["## 5. `archaudit report` on the 6.4-billion-parameter stack against FlopCounterMode's own script "
              "(goal: at most 1.0x)", "",
              "Whole processes: `archaudit report benchmarks/stack.py:build --device meta --input 1x512x4096 "
              "--no-compare` against a script that imports torch, builds the same model on meta and runs "
              "FlopCounterMode over one forward pass. The report measures the model's memory (on fake tensors) "
              "in a forked worker beside its trace and training audit.", "",
              "| command | seconds | ratio |", "|---|---:|---:|",
              f"| FlopCounterMode script (anchor) | {fcm_stack:.2f} | 1.00x |",
              f"| `archaudit report` | {report_stack:.2f} | {report_stack / fcm_stack:.2f}x |", ""]
    lines += ["## 4. The commands beyond one forward pass on the 6.4-billion-parameter stack (goal: at most 1.5x "
              "`archaudit flops`)", "",
              "The stack of section 2 at 32 layers (benchmarks/stack.py, 6,444,154,880 parameters), built on meta, "
              "input 1x512x4096 (1xTx4096 where T varies); whole processes, imports included.", "",
              "| command | seconds | ratio to `archaudit flops` |", "|---|---:|---:|",
              f"| `archaudit flops` (anchor) | {anchor_s:.2f} | 1.00x |"]
    for (label, _), seconds in zip(commands, seconds_each, strict=True):
        lines.append(f"| `archaudit {label}` | {seconds:.2f} | {seconds / anchor_s:.2f}x |")
    lines += ["", "`--vary` evaluates the model at as many sizes as the fit needs (degree + 1, and 2 more to verify: 5 "
              "for a transformer), a large model's next sizes side by side in forked workers (one per CPU), and only "
              "sizes the fit will ask for (those a polynomial of the degree its values prove needs): here the "
              "sizes go in rounds of two, two and one; "
              "`memory --vary` runs a pass with gradients at each size its training figures need and one without "
              "at each its inference peak needs, on fake tensors. A pass with gradients measures the first call of "
              "each of the 32 identical layers (per input layout: the first layer's input needs no gradient, the "
              "second's does) and replays the 30 others (archaudit.memory._Repeats), which give the same figures "
              "(tests/test_memory_replay.py). No command imports "
              "torch._dynamo on this stack: those that trace on meta spare it (archaudit.trace.spare_dynamo), and "
              "`memory`'s "
              "fake tensor mode reads only dynamo's configuration module, loaded alone "
              "(archaudit.trace.lend_dynamo_config). What `memory` pays beyond a trace is the fake mode's work per "
              "op on the layers it measures and, in each process at its first pass, its import of torch's symbolic "
              "shapes (sympy) at its "
              "first uncached op and of torch.distributed.tensor at its first view (torch's C++ dispatch of a "
              "tensor subclass looks DTensor up), which makes a process's first pass the longest. "
              "`memory --vary` needs five training passes, which two processes share.", ""]
    lines += section5

    from archaudit.output import atomic_write

    atomic_write(args.output, "\n".join(lines).rstrip() + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
