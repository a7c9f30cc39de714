"""The ``archaudit`` command line. Thin: it parses arguments, calls the public API and writes output.

Exit codes (also in the README):

====  ==========================================================================================
0     success
1     a check failed (a claim that does not hold, a budget exceeded)
2     bad input: usage, TARGET, file, lazy module; one line on stderr names what was wrong
3     internal error: an archaudit bug (for instance a formula that disagrees with numel()); please report
130   interrupted (Ctrl-C)
====  ==========================================================================================
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from .errors import ArchauditError, FormulaMismatchError, InputSpecError
from .optim import OPTIMIZERS, PRECISIONS
from .usercode import folded

if TYPE_CHECKING:
    from .bench import Example
    from .claims.records import Document
    from .diff import Snapshot
    from .inputs import InputSpec
    from .targets import BuiltTarget

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns the documented code."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _emit(text: str) -> None:
    """A command's output, to standard output; one that cannot take it (closed, a full disk) is an
    :class:`~archaudit.output.OutputError` (exit 2, one line), as an ``--output`` file's would be. A reader that
    went away (``| head``) is main's ``BrokenPipeError``."""
    from .output import OutputError

    if sys.stdout is None:
        raise OutputError(
            "standard output is closed: nothing can be written (give --output PATH where a command has it)"
        )
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _lost.append(exc)  # said once, here: exit_process's last flush fails again on what is still buffered
        raise OutputError(f"standard output: cannot be written: {exc.strerror or exc}") from None


_lost: list[OSError] = []
"""The write errors a command's output met (see :func:`_emit`)."""


def _cmd_params(args: argparse.Namespace) -> int:
    from . import audit as audit_target
    from .render import params_json, params_markdown

    audited = audit_target(args.target, device="meta" if args.meta else "cpu", macs=False)
    audit = audited.params
    if args.format == "json":
        _emit(json.dumps(params_json(audit), indent=2))
    else:
        _emit(params_markdown(audit, title=audited.name))
    if audit.mismatches:
        names = ", ".join(r.name or "(root)" for r in audit.mismatches)
        print(f"archaudit: internal error: formula disagrees with numel() at {names}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def _cmd_flops(args: argparse.Namespace) -> int:
    from . import audit
    from .inputs import parse_inputs
    from .render import flops_json, flops_markdown

    if args.optimizer is not None and not args.training:
        raise InputSpecError("--optimizer is for --training (the optimizer step's element-wise work)")
    if args.vary is not None:
        return _flops_varied(args)
    positional, named = parse_inputs(args.input or [])
    audited = audit(args.target, *positional, device=args.device, keyword_inputs=named)
    assert audited.flops is not None  # audit() counts MACs unless asked not to
    comparison = audited.compare() if args.compare else None
    training = audited.training(args.optimizer or "adam") if args.training else None
    found = audited.estimates(training) if training is not None else None
    if args.format == "json":
        out = flops_json(audited.flops, comparison)
        if training is not None:
            from .render.training import estimates_json, training_json

            out["training"] = training_json(training)
            out["estimates"] = estimates_json(found)
        _emit(json.dumps(out, indent=2))
    else:
        text = flops_markdown(audited.flops, comparison, title=audited.name)
        if training is not None:
            from .render.training import training_markdown

            text += "\n" + training_markdown(training, found, title=audited.name)
        _emit(text)
    return EXIT_OK


def _flops_varied(args: argparse.Namespace) -> int:
    if args.compare or args.training:
        raise InputSpecError("--vary gives costs as polynomials: it does not combine with --compare or --training")
    return _varied(args)


def _varied(args: argparse.Namespace, **memory: str) -> int:
    """``flops --vary`` (MACs and columns) or, with ``memory``'s optimizer and precision, ``memory --vary``."""
    from .polynomial import parse_varied
    from .render.polynomial import varied_json, varied_markdown
    from .varied import vary

    varied = parse_varied(args.input or [], args.vary)
    result = vary(args.target, varied, device=args.device, memory=bool(memory), **memory)
    _emit(json.dumps(varied_json(result), indent=2) if args.format == "json" else varied_markdown(result))
    return EXIT_OK


def _cmd_memory(args: argparse.Namespace) -> int:
    from . import audit
    from .inputs import parse_inputs
    from .render.memory import memory_json, memory_markdown

    if args.vary is not None:
        if args.kv_cache_tokens is not None:  # a cache of a fixed size would not vary with the dimension
            raise InputSpecError(
                "--kv-cache-tokens does not combine with --vary: the inference peak is fitted without it"
            )
        return _varied(args, optimizer=args.optimizer, precision=args.precision)
    positional, named = parse_inputs(args.input or [])
    # the memory passes need the inputs, not the MAC trace
    audited = audit(args.target, *positional, device=args.device, keyword_inputs=named, macs=False, with_inputs=True)
    memory = audited.memory(args.optimizer, args.precision, kv_cache_tokens=args.kv_cache_tokens)
    _emit(json.dumps(memory_json(memory), indent=2) if args.format == "json" else memory_markdown(memory, audited.name))
    return EXIT_OK


def _diff_side(text: str, args: argparse.Namespace) -> Snapshot:
    """A side of ``diff``: a committed JSON output (``flops``/``params --format json``), else a TARGET audited on
    the given inputs."""
    from . import audit
    from .diff import load_baseline, snapshot
    from .inputs import parse_inputs

    if text.endswith(".json"):
        return load_baseline(text)
    positional, named = parse_inputs(args.input or [])
    audited = audit(text, *positional, device=args.device, keyword_inputs=named)
    memory = None
    if args.memory:
        measured = audited.memory()
        memory = {r.name: r.total for r in measured.records}
    return snapshot(audited.params, audited.flops, memory, source=text)


def _cmd_diff(args: argparse.Namespace) -> int:
    from .diff import FIGURE_LABELS, DiffError, diff
    from .render.diff import diff_json, diff_markdown

    before, after = _diff_side(args.a, args), _diff_side(args.b, args)
    found = diff(before, after)
    _emit(json.dumps(diff_json(found), indent=2) if args.format == "json" else diff_markdown(found))
    if args.fail_over is None:
        return EXIT_OK
    if found.inputs_differ:  # a gate on MACs of other inputs would fail or pass on the inputs, not the model
        raise DiffError(
            f"--fail-over: the inputs differ ({', '.join(before.inputs or ())} before, "
            f"{', '.join(after.inputs or ())} after): give --input as the baseline was taken"
        )
    compared = [d.name for d in found.totals if d.before is not None and d.after is not None]
    if not compared:
        raise DiffError(
            f"--fail-over: no total is held by both sides ({args.a}: "
            f"{', '.join(k for k, v in before.totals.items() if v is not None) or 'none'}; {args.b}: "
            f"{', '.join(k for k, v in after.totals.items() if v is not None) or 'none'}), so the gate would check "
            "nothing"
        )
    grown = found.grown_over(args.fail_over)
    for delta in grown:
        print(
            f"archaudit: {FIGURE_LABELS[delta.name]} grew {delta.before:,} -> {delta.after:,} "
            f"({'+' if delta.percent is None else f'{float(delta.percent):+.2f}'}%), more than {args.fail_over}%",
            file=sys.stderr,
        )
    return EXIT_CHECK_FAILED if grown else EXIT_OK


def _cmd_claims(args: argparse.Namespace) -> int:
    from .claims import check_document, load_claims
    from .progress import progress
    from .render import claims_json, claims_markdown

    document = load_claims(args.file)  # read once: its claim count sizes the progress line
    with progress(f"claims {args.file}", total=len(document.claims)) as step:
        audit = check_document(document, target=args.target, inputs=args.input, step=step)
    _emit(json.dumps(claims_json(audit), indent=2) if args.format == "json" else claims_markdown(audit))
    return EXIT_CHECK_FAILED if audit.failed else EXIT_OK


def _cmd_draft(args: argparse.Namespace) -> int:
    from .draft import draft
    from .output import atomic_write, output_path

    if args.output is not None:
        output_path(args.output)  # refused before any work: an empty path, a directory, a device node
    drafted = draft(args.document, target=args.target, inputs=args.input, output=args.output)
    if args.output is None:
        _emit(drafted.text)
    else:
        atomic_write(args.output, drafted.text)
        print(f"wrote {args.output}: {len(drafted.claims)} claims to review", file=sys.stderr)
    if drafted.stopped_at:
        print(f"archaudit: warning: the draft is full: it stops at line {drafted.stopped_at:,}", file=sys.stderr)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from .inputs import parse_inputs
    from .output import output_path
    from .report_data import build_report

    if args.output is not None:
        output_path(args.output)  # refused before any work: an empty path, a directory, a device node

    inputs, keyword_inputs = parse_inputs(args.input or [])
    claims_documents, claims_target = _claims_documents(args)
    throughput = None
    if args.bench:
        from .bench import bench
        from .progress import progress
        from .targets import build_target

        built = build_target(args.target)
        if built.reference is None and not args.input:
            raise InputSpecError(f"{args.target}: --bench needs --input for a model that is not a reference model")
        example = _bench_example(built, inputs, keyword_inputs)
        with progress(f"bench {built.name}", total=3 * 11) as step:  # 3 batch sizes x (warm-up + 10 runs)
            measured = bench(built.name, lambda: built.model, example, batches=(1, 64, 1024), step=step)
        for warning in measured.warnings:
            print(f"archaudit: warning: {warning}", file=sys.stderr)
        throughput = measured.measurement()
    report = build_report(
        args.target,
        inputs=inputs,
        keyword_inputs=keyword_inputs,
        claims_files=claims_documents or None,
        claims_target=claims_target,
        compare=not args.no_compare,
        throughput=throughput,
        device=args.device,
    )
    if args.output is not None:
        from .regenerate import write_report

        for path in write_report(report, args.output, fmt=args.format, depth=args.depth):
            print(f"wrote {path}", file=sys.stderr)
    elif args.format == "json":
        from .regenerate import dump_json
        from .render.model import report_json

        _emit(dump_json(report_json(report)))
    else:
        from .render.model import report_markdown

        _emit(report_markdown(report, depth=args.depth))
    failed = sum(len(a.failed) for a in report.claims)
    return EXIT_OK if not failed or not args.strict else EXIT_CHECK_FAILED


def _claims_documents(args: argparse.Namespace) -> tuple[list[Document], str | None]:
    """The ``--claims`` files of ``report TARGET``, each read once, and what they are checked against: TARGET with
    ``--against-target``; else each file's own model, which must be TARGET (a file about another model is
    refused, never checked silently)."""
    if not args.claims:
        return [], None
    from .claims import load_claims, resolve_model
    from .targets import same_target

    documents = [load_claims(path) for path in args.claims]
    if args.against_target:
        return documents, args.target
    for path, document in zip(args.claims, documents, strict=True):
        named = resolve_model(document, None)
        if not same_target(named, args.target):
            raise InputSpecError(
                f"{path}: its claims are about {named}, and this report is on {args.target}: "
                "pass --against-target to check them against it, or report on the model the file names"
            )
    return documents, None


def _cmd_reports(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .output import OutputError
    from .regenerate import regenerate

    if args.directory == "" or (Path(args.directory).exists() and not Path(args.directory).is_dir()):
        raise OutputError(f"{args.directory!r}: is not a directory; give the directory to write the reports to")

    from .progress import progress

    with progress(f"reports into {args.directory}") as step:
        written = regenerate(args.directory, step=step)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from .budgets.file import run_budgets
    from .render.budget import budgets_text

    report = run_budgets(args.file)
    _emit(budgets_text(report))
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _bench_example(built: BuiltTarget, positional: list[InputSpec], keywords: dict[str, InputSpec]) -> Example:
    """What bench feeds the model at each batch size: the given inputs with dim 0 replaced by the batch size, else
    a reference model's own example input."""
    from .bench import ShapedInputs

    if positional or keywords:
        return ShapedInputs(tuple(positional), keywords)
    entry = built.reference
    assert entry is not None  # both callers refuse a TARGET that is not a reference model without --input first
    return lambda batch, device: entry.example_input(batch=batch, device=device)


def _cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from .bench import bench
    from .inputs import parse_inputs
    from .progress import progress
    from .targets import build_target

    if not args.input and ":" in args.target:  # with a ':' it is never a reference-model name (archaudit.targets)
        raise InputSpecError(
            f"{args.target}: bench needs --input for a model that is not a reference model, such as "
            "--input 1x3x32x32 or --input input_ids=1x128:int64 (each --batch replaces dim 0)"
        )
    positional, keywords = parse_inputs(args.input or [])
    built = build_target(args.target)
    example = _bench_example(built, positional, keywords)
    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.dtype]
    batches = args.batch or (1, 64, 1024)
    with progress(f"bench {built.name}", total=len(batches) * (args.repeats + 1)) as step:
        report = bench(
            built.name,
            lambda: built.model,
            example,
            batches=batches,
            device=args.device,
            dtype=dtype,
            repeats=args.repeats,
            step=step,
        )
    from .render.bench import bench_json, bench_markdown

    _emit(json.dumps(bench_json(report), indent=2) if args.format == "json" else bench_markdown(report))
    for warning in report.warnings:  # after the report: the last thing on a terminal
        print(f"archaudit: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from .references import references
    from .render.references import references_json, references_markdown

    entries = references()
    _emit(json.dumps(references_json(entries), indent=2) if args.format == "json" else references_markdown(entries))
    return EXIT_OK


def _depth(text: str) -> int:
    if not text.isdigit() or len(text) > 3:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: expected a depth from 0 to 999")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number from 1 to 999,999,999")
    return int(text)


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a percentage (a number such as 5 or 0.5)") from None
    if not 0 <= value <= 1e6:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}: a percentage from 0 to 1,000,000")
    return value


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        choices=("auto", "meta", "cpu"),
        default="auto",
        help="where to build the model: meta (allocates nothing), cpu, or auto (meta when its "
        "constructor allows it, else cpu; the output says which)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="archaudit",
        description="Audit PyTorch model architectures: parameters, FLOPs and the claims their documents make.",
        epilog="exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error",
    )
    parser.add_argument("--version", action="version", version=f"archaudit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    target_help = (
        "package.module:callable, path/to/file.py:callable (called with no arguments, returning an "
        "nn.Module) or a reference-model name (see `archaudit list`)"
    )
    p = sub.add_parser("params", help="count parameters per module, with ownership, sharing and status")
    p.add_argument("target", metavar="TARGET", help=target_help)
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("--meta", action="store_true", help="build the model on the meta device (allocates nothing)")
    p.set_defaults(run=_cmd_params)

    input_help = (
        "input shape, such as 1x30x17, or 1x128:int64 for token ids, or NAME=SHAPE for an input passed by name "
        "(input_ids=1x128:int64); repeat for several inputs, positional ones first (default: the example the "
        "model carries: a reference model's, example_input_array or dummy_inputs)"
    )
    p = sub.add_parser("flops", help="MACs and FLOPs per module from shapes captured in one pass on the meta device")
    p.add_argument("target", metavar="TARGET", help=target_help)
    p.add_argument("--input", action="append", metavar="[NAME=]SHAPE", help=input_help)
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument(
        "--compare",
        action="store_true",
        help="run torchinfo, fvcore and FlopCounterMode on the same model and explain the differences",
    )
    p.add_argument(
        "--training",
        action="store_true",
        help="one training step: forward, backward for activation and weight gradients (none for frozen weights) "
        "and the optimizer's element-wise work, per module; for a transformer, the quoted closed-form estimates "
        "(6N, Kaplan, PaLM, Chinchilla, Megatron) beside the exact count",
    )
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, help="with --training: the optimizer whose step is counted (default adam)"
    )
    p.add_argument(
        "--vary",
        metavar="NAME",
        help="a dimension named in --input (1xTx17 --vary T; Bx3x32x32 --vary B): parameters, MACs and every column "
        "as exact polynomials in it, with the dominant term and where one term overtakes another (memory --vary "
        "for bytes)",
    )
    _add_device(p)
    p.set_defaults(run=_cmd_flops)

    p = sub.add_parser(
        "memory",
        help="bytes of a training step (weights, gradients, optimizer state, saved activations, peak) and of "
        "inference (weights, largest live activations, KV cache)",
    )
    p.add_argument("target", metavar="TARGET", help=target_help)
    p.add_argument("--input", action="append", metavar="[NAME=]SHAPE", help=input_help)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument(
        "--kv-cache-tokens",
        type=_positive_int,
        metavar="N",
        help="add a decoder's KV cache for N tokens (batch x sequence length) to the inference peak",
    )
    p.add_argument(
        "--vary",
        metavar="NAME",
        help="a dimension named in --input: saved activations and the peaks as exact polynomials in it (two passes "
        "per size, several sizes)",
    )
    p.add_argument("--format", choices=("md", "json"), default="md")
    _add_device(p)
    p.set_defaults(run=_cmd_memory)

    p = sub.add_parser(
        "diff",
        help="modules added, removed and changed between two models (or a model and its committed JSON), with "
        "parameters, MACs and memory before and after",
    )
    p.add_argument(
        "a", metavar="A", help="before: a TARGET, or a committed `archaudit flops/params --format json` file"
    )
    p.add_argument("b", metavar="B", help="after: the same kinds as A")
    p.add_argument("--input", action="append", metavar="[NAME=]SHAPE", help=input_help + "; the same for both sides")
    p.add_argument(
        "--memory", action="store_true", help="also compare bytes (weights, gradients, optimizer, activations)"
    )
    p.add_argument(
        "--fail-over",
        type=_percent,
        metavar="PCT",
        help="exit 1 when a compared total (parameters, MACs, memory) grows by more than PCT percent",
    )
    p.add_argument("--format", choices=("md", "json"), default="md")
    _add_device(p)
    p.set_defaults(run=_cmd_diff)

    p = sub.add_parser(
        "claims", help="check a claims file: every claim's verdict with its evidence (exit 1 when any claim fails)"
    )
    p.add_argument("file", metavar="FILE", help="claims file (TOML), e.g. reference_models/claims/amnl_000.toml")
    p.add_argument(
        "--target",
        metavar="TARGET",
        help="check the claims against this model instead of the file's [document] model: " + target_help,
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]SHAPE",
        help="the input MAC and FLOP claims are for, instead of the file's [document] input; repeatable",
    )
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.set_defaults(run=_cmd_claims)

    p = sub.add_parser(
        "draft",
        help="draft a claims file from a Markdown or plain-text document: every figure it prints, where it "
        "stands and a guessed kind, each guess marked REVIEW",
    )
    p.add_argument("document", metavar="DOCUMENT", help="the document (.md/.markdown as Markdown, else plain text)")
    p.add_argument(
        "--target",
        metavar="TARGET",
        help="the model the document describes: its module paths and types are matched to the document's row "
        "labels by name, and it becomes the draft's [document] model; " + target_help,
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]SHAPE",
        help="the input the document's MAC and FLOP figures are for (default: a reference model's own); repeatable",
    )
    p.add_argument("--output", metavar="PATH", help="write the draft here (atomically) instead of standard output")
    p.set_defaults(run=_cmd_draft)

    p = sub.add_parser(
        "report",
        help="the whole audit of a model: findings, parameters, distribution, layers, FLOPs "
        "cross-check, training, memory and scaling, efficiency, documentation claims, provenance",
    )
    p.add_argument("target", metavar="NAME", help="a reference-model name, or " + target_help)
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument(
        "--output",
        metavar="PATH",
        help="write here (atomically; charts land beside a Markdown file) instead of standard output",
    )
    p.add_argument("--input", action="append", metavar="[NAME=]SHAPE", help=input_help)
    p.add_argument(
        "--claims",
        action="append",
        metavar="FILE",
        help="claims file to check (default: the reference model's own); repeatable; a file about another model "
        "is refused unless --against-target",
    )
    p.add_argument("--no-compare", action="store_true", help="skip the cross-tool FLOPs table")
    p.add_argument(
        "--against-target",
        action="store_true",
        help="check every --claims file against TARGET, whatever model the file names",
    )
    p.add_argument(
        "--depth",
        type=_depth,
        metavar="N",
        help="fold the layers table below depth N into its parents (the root is 0; as torchinfo's depth)",
    )
    _add_device(p)
    p.add_argument("--strict", action="store_true", help="exit 1 when any documentation claim fails")
    p.add_argument(
        "--bench",
        action="store_true",
        help="measure throughput on this machine so throughput claims get a verdict (for this machine)",
    )
    p.set_defaults(run=_cmd_report)

    p = sub.add_parser("reports", help="regenerate every reference model's report and the baselines comparison")
    p.add_argument("directory", metavar="DIR", nargs="?", default="reports")
    p.set_defaults(run=_cmd_reports)

    p = sub.add_parser(
        "check",
        help="check a budgets file: every model within its limits, every claims file as expected (exit 1 when not)",
    )
    p.add_argument("file", metavar="FILE", help="budgets file (TOML)")
    p.set_defaults(run=_cmd_check)

    p = sub.add_parser(
        "bench",
        help="inference throughput of a model on this machine (samples/s, median of timed runs, with their spread)",
    )
    p.add_argument("target", metavar="TARGET", help=target_help)
    p.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]SHAPE",
        help="input shape, batch dimension first: SHAPE (1x3x32x32, or 1x128:int64 for token ids) for a positional "
        "argument of forward, NAME=SHAPE (input_ids=1x128:int64) for one passed by name; repeatable. Each batch "
        "size replaces dim 0 of every input (1x3x32x32 at --batch 64 runs on 64x3x32x32); integer inputs are "
        "zeros, floating ones seeded random values cast to --dtype. Needed unless TARGET is a reference model, "
        "whose own example input is the default",
    )
    p.add_argument(
        "--batch", type=_positive_int, action="append", metavar="N", help="batch size (repeatable; default 1, 64, 1024)"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=10,
        help="timed runs per batch size (median reported; a warning when the fastest outpaces the slowest by more "
        "than 2x, archaudit.bench.SPREAD_LIMIT: the median is then unreliable)",
    )
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.set_defaults(run=_cmd_bench)

    p = sub.add_parser("list", help="list the reference models")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.set_defaults(run=_cmd_list)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


GC_THRESHOLDS = (10_000, 50, 100)
"""The CLI's garbage-collection thresholds (CPython 3.11's defaults are 700, 10, 10). After torch, a process holds
some 170,000 objects, and a full collection over them, which a command's own new objects trigger about once by
default, costs about a tenth of a second: a command's objects mostly die young, by reference counting. See
``archaudit.cli.main``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code. Collects garbage less often while it runs (:data:`GC_THRESHOLDS`),
    then restores the thresholds it found."""
    found = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _main(argv)
    finally:
        gc.set_threshold(*found)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help and --version exit 0 through argparse
        return int(exc.code or 0)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return run(args)
    except FormulaMismatchError as exc:
        print(f"archaudit: internal error: {folded(exc, 1000)}", file=sys.stderr)
        return EXIT_INTERNAL
    except ArchauditError as exc:
        print(f"archaudit: {folded(exc, 1000)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # archaudit never exits from inside a command: this came from the user's code
        print(f"archaudit: the model's code called sys.exit({exc.code!r})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("archaudit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`archaudit params amnl | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # an archaudit bug: one line, and the traceback only on request
        if os.environ.get("ARCHAUDIT_DEBUG"):
            raise
        print(
            f"archaudit: internal error: {type(exc).__name__}: {folded(exc, 1000)} "
            "(set ARCHAUDIT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    except BaseException as exc:  # noqa: BLE001 - a custom BaseException from the user's code
        print(f"archaudit: the model's code raised {type(exc).__name__}: {folded(exc, 1000)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def exit_process(code: int) -> NoReturn:
    """End the process with ``code`` once a command is done, without Python's teardown of its modules: after torch,
    that teardown (freeing every module's objects, one by one) takes about a third of a second, longer than most
    commands' own work. What a normal exit does that anyone can see is kept: the ``atexit`` handlers run (the
    model's own, torch's, ``weakref.finalize``'s), then stdout and stderr are flushed. Everything archaudit writes is
    closed by then (atomically written files included); a file the model's code left open and unflushed is not
    flushed, and a thread it left running is not waited for, as after a crash."""
    atexit._run_exitfuncs()
    try:
        if sys.stdout is not None:  # None where the process was started without one (`archaudit list >&-`)
            sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (as in main), or the stream was closed
        pass
    except OSError as exc:  # a full disk, /dev/full: the output is lost, and the exit says so, as --output's would
        if not _lost:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                print(f"archaudit: could not write standard output: {exc.strerror or exc}", file=sys.stderr)
        code = code or EXIT_BAD_INPUT
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    os._exit(code)


def entry_point() -> None:  # pragma: no cover - thin wrapper for the console script
    exit_process(main())
