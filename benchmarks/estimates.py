"""The quoted transformer FLOPs estimates (6N, Kaplan, PaLM, Chinchilla, Megatron) beside archaudit's exact counts,
for GPT-2 small as published and a small Llama configuration, and the small Llama's cost against sequence length as
an exact polynomial with its terms stacked; written to reports/estimates.md, reports/estimates.json and
reports/estimates-cost.svg.

    python benchmarks/estimates.py [--output-dir reports]

Each model is built from its transformers config with random weights on the meta device (nothing loaded from a
hub), SDPA attention, no pad token, no key/value cache; the input is ``input_ids=1x1024:int64``, passed by name as
the CLI's ``--input`` passes it. For each: parameters (``audit_params``, held to ``numel()`` of every tensor once),
forward MACs (``audit_macs``), training MACs (``audit_training``: forward plus backward), then
``detect_dimensions`` and ``estimates`` with those exact counts.

The files hold counts only, no timings: they come out byte-identical on any machine with the pinned versions
(constraints.txt), and tests/test_estimates_report.py holds the committed ones to that.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python benchmarks/estimates.py"
SEQUENCE = 1024
INPUT = f"input_ids=1x{SEQUENCE}:int64"
VARIED_INPUT = "input_ids=1xT:int64"
CHART = "estimates-cost.svg"
CHART_SIZES = (128, 8192)
"""The chart's sequence lengths, T from 128 to 8192 (log scale): wide enough to show the small Llama's crossover."""


@dataclass(frozen=True)
class Spec:
    key: str
    title: str
    summary: str
    cls_name: str
    config_name: str
    config: dict[str, Any]


LLAMA_CONFIG = {
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
}
MODELS = (
    Spec(
        "gpt2",
        "GPT-2 small (as published)",
        "`GPT2LMHeadModel(GPT2Config())`, the config's defaults, which are GPT-2 small as published: 12 layers, "
        "n_embd 768, 12 heads, vocabulary 50,257, n_positions 1,024, lm_head tied to the token embedding.",
        "GPT2LMHeadModel",
        "GPT2Config",
        {},
    ),
    Spec(
        "llama",
        "A small Llama configuration (not a published model)",
        "`LlamaForCausalLM(LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, "
        "num_attention_heads=8, num_key_value_heads=2, vocab_size=32000, max_position_embeddings=2048))`: a small "
        "configuration chosen for this report, not a published model. Grouped-query attention (8 query heads, 2 "
        "key/value heads), SwiGLU MLP, rotary positions, untied lm_head.",
        "LlamaForCausalLM",
        "LlamaConfig",
        LLAMA_CONFIG,
    ),
)


def build(spec: Spec) -> nn.Module:
    import transformers

    # no pad token: a model would otherwise read token values to warn about padding, and meta tensors have none;
    # no cache: a decoder's key/value cache is not part of one forward pass's cost
    cfg = getattr(transformers, spec.config_name)(**spec.config, pad_token_id=None, use_cache=False)
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        model: nn.Module = getattr(transformers, spec.cls_name)(cfg).eval()
    return model


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


@dataclass(frozen=True)
class Audited:
    spec: Spec
    model: nn.Module
    params: int
    numel: int
    forward_macs: int
    training: Any
    """archaudit.training.TrainingAudit"""
    dims: Any
    """archaudit.estimates.TransformerDims"""
    found: tuple[Any, ...]
    """archaudit.estimates.Estimate, in the order estimates() gives them"""


def audit(spec: Spec) -> Audited:
    from archaudit.estimates import detect_dimensions, estimates
    from archaudit.inputs import parse_inputs
    from archaudit.macs import audit_macs
    from archaudit.training import audit_training
    from archaudit.walker import audit_params

    model = build(spec)
    positional, named = parse_inputs([INPUT])
    params = audit_params(model).total
    forward = audit_macs(model, positional, keyword_inputs=named)
    training = audit_training(model, positional, keyword_inputs=named)
    dims = detect_dimensions(model, (1, SEQUENCE))
    if dims is None:
        raise RuntimeError(f"benchmarks/estimates.py: {spec.cls_name} was not detected as a transformer")
    found = estimates(
        dims,
        params_total=params,
        params_non_embedding=params - dims.embedding_params,
        exact_forward_macs=forward.macs,
        exact_training_macs=training.total,
        tokens=dims.tokens,
    )
    return Audited(spec, model, params, _numel(model), forward.macs, training, dims, found)


# ----------------------------------------------------------------------------------------------- cost against T


@dataclass(frozen=True)
class Cost:
    model: str
    macs: Any
    """archaudit.polynomial.Polynomial: forward MACs in T"""
    quadratic: int
    """Expected T^2 coefficient: QK^T and PV, 2 x n_layer x n_heads x head_dim."""
    linear: dict[str, int]
    """Expected T coefficient, by part: per-token matmul weights of the layers, the lm_head, the rotary angles."""


def cost(audited: Audited) -> Cost:
    from archaudit.polynomial import parse_varied
    from archaudit.varied import vary

    varied = vary(audited.model, parse_varied([VARIED_INPUT], "T"), memory=False)
    macs = varied.polynomial("macs")
    d = audited.dims
    quadratic = 2 * d.n_layer * d.n_heads * d.head_dim  # QK^T and PV, each n_heads x head_dim per query and key
    layer = d.d_model * (d.n_heads + 2 * d.n_kv_heads) * d.head_dim + d.d_attn * d.d_model + 3 * d.d_model * d.d_ff
    linear = {
        "layer matmuls (Q, K, V, output projection, gate, up, down)": d.n_layer * layer,
        "lm_head": d.d_model * d.vocab,
        "rotary angles (head_dim / 2 per position)": d.head_dim // 2,
    }
    expected = (Fraction(0), Fraction(sum(linear.values())), Fraction(quadratic))
    if macs.coefficients != expected:
        raise RuntimeError(
            f"benchmarks/estimates.py: the fitted MACs {macs} are not {quadratic:,}*T^2 + "
            f"{sum(linear.values()):,}*T, the terms the dimensions give"
        )
    if macs(SEQUENCE) != audited.forward_macs:
        raise RuntimeError(
            f"benchmarks/estimates.py: the polynomial gives {macs(SEQUENCE):,} MACs at T={SEQUENCE}, "
            f"audit_macs {audited.forward_macs:,}"
        )
    return Cost(audited.spec.cls_name, macs, quadratic, linear)


def _sizes() -> list[int]:
    low, high = CHART_SIZES
    sizes, i = [], 0
    while (t := round(low * 2 ** (i / 16))) <= high:
        sizes.append(t)
        i += 1
    return sizes


def _power(power: int) -> str:
    return "constant" if power == 0 else "T" if power == 1 else f"T^{power}"


def _count(value: float, _pos: int) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def chart_svg(c: Cost, max_positions: int) -> bytes:
    """The MAC polynomial's terms stacked over T, the crossover marked; deterministic SVG (Agg, a fixed hash salt,
    text kept as text, no date in the metadata), as charts.py writes them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # matplotlib's built-in defaults (no matplotlibrc, nothing another caller set), then charts.py's font size
    settings = {"font.size": 9, "svg.hashsalt": "archaudit", "svg.fonttype": "none"}
    with plt.style.context("default"), matplotlib.rc_context(settings):
        return _draw(plt, c, max_positions)


def _draw(plt: Any, c: Cost, max_positions: int) -> bytes:
    from archaudit.polynomial import Polynomial, formula
    from archaudit.render.charts import finish_svg
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    sizes = _sizes()
    terms = sorted(c.macs.terms, key=lambda term: term.power)  # lowest power at the bottom of the stack
    names = {0: "constant", 1: "per-token matmuls (projections, MLP, lm_head, rotary)", 2: "attention QK^T and PV"}
    labels = [
        f"{formula(Polynomial((Fraction(0),) * t.power + (t.coefficient,), 'T'))}: {names.get(t.power, '')}"
        for t in terms
    ]
    values = [[float(t.coefficient * size**t.power) for size in sizes] for t in terms]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.stackplot(sizes, values, labels=labels, colors=["#4C72B0", "#C44E52", "#55A868"][: len(terms)])
    for crossing in c.macs.crossovers():
        ax.axvline(crossing.at, color="#333333", linestyle="--", linewidth=1)
        ax.annotate(
            f"{_power(crossing.higher.power)} term passes {_power(crossing.lower.power)} term at T={crossing.at:,}",
            (crossing.at, 0.55),
            xycoords=("data", "axes fraction"),
            xytext=(-4, 0),
            textcoords="offset points",
            ha="right",
            fontsize=8,
        )
    ax.axvline(max_positions, color="#777777", linestyle=":", linewidth=1)
    ax.annotate(
        f"max_position_embeddings = {max_positions:,}",
        (max_positions, 0.75),
        xycoords=("data", "axes fraction"),
        xytext=(-4, 0),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        color="#555555",
    )
    ax.set_xscale("log", base=2)
    ticks = [2**k for k in range(7, 14)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(_count))
    ax.set_xlim(*CHART_SIZES)
    ax.set_xlabel("sequence length T (input_ids 1 x T, log scale)")
    ax.set_ylabel("forward MACs (FLOPs = 2 x MACs)")
    ax.set_title(f"{c.model} (small config): forward MACs against T, terms stacked")
    ax.legend(fontsize=8, loc="upper left")
    # SVG, as every chart of reports/: text, the same bytes whatever the image libraries
    return finish_svg(plt, fig, ax).encode("utf-8")


# ----------------------------------------------------------------------------------------------- reports


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.2f}%"


def markdown(rows: list[Audited], c: Cost) -> str:
    from archaudit.estimates import CONVENTION
    from archaudit.polynomial import describe
    from archaudit.render._fmt import n, table
    from archaudit.render.training import estimates_markdown

    parts = [
        "# The quoted transformer FLOPs estimates, audited",
        "",
        "Each closed-form estimate the literature quotes for a transformer's cost (6N; Kaplan et al. 2020's 6N and "
        "their forward 2N + 2 n_layer n_ctx d_attn; PaLM's 6N + 12LHQT; Chinchilla's Appendix F; Megatron-LM's "
        "with and without activation recomputation) is set beside the exact count for the same input: archaudit's "
        "analytic forward MACs x 2 for a forward estimate, its training MACs (forward plus backward) x 2 for a "
        "training one. The convention is stated once: FLOPs = 2 x MACs, over all tokens of the input (batch x "
        "n_ctx); the exact count is archaudit's analytic one, checked against FlopCounterMode on meta "
        "elsewhere (tests/test_models_benchmark.py for the forward pass, tests/test_estimates.py for forward plus "
        "backward, tests/test_estimates_report.py for the small Llama's training count here). The error is "
        "(estimate - exact) / exact, and the gap is split into causes computed from the model's dimensions. "
        "Regenerated by "
        f"`{COMMAND}` (models built from their transformers configs on the meta device, random weights, nothing "
        "downloaded). The file holds counts only, no timings, so it comes out byte-identical on any machine, as do "
        "reports/estimates.json and the chart.",
        "",
        "## Relative error of each estimate",
        "",
    ]
    names = [e.name for e in rows[0].found]
    if any([e.name for e in r.found] != names for r in rows):
        raise RuntimeError("benchmarks/estimates.py: the models' estimates are not the same list")
    summary = [
        (
            name,
            rows[0].found[i].covers.value,
            *(_percent(r.found[i].relative_error) for r in rows),
        )
        for i, name in enumerate(names)
    ]
    parts += [
        table(summary, ["estimate", "pass", *(r.spec.title for r in rows)], ["left", "left", "right", "right"]),
        "",
    ]
    for r in rows:
        tr = r.training
        exact = [
            ("parameters (audited)", n(r.params)),
            ("parameters (numel, every tensor once)", n(r.numel)),
            (f"forward MACs, {INPUT}", n(r.forward_macs)),
            ("training MACs (forward + backward)", n(tr.total)),
            ("backward / forward", f"{tr.backward / tr.forward:.5f}"),
            ("modules with forward MACs but no backward rule", ", ".join(u.name for u in tr.uncounted) or "none"),
        ]
        parts += [
            f"## {r.spec.title}",
            "",
            r.spec.summary,
            "",
            table(exact, ["exact count", "value"], ["left", "right"]),
            "",
            estimates_markdown(r.dims, r.found).rstrip("\n"),
            "",
        ]
        if r.dims.notes:
            parts += ["Detection notes: " + "; ".join(r.dims.notes) + ".", ""]
        if any(u.type == "LlamaRotaryEmbedding" for u in tr.uncounted):
            parts += [
                "The rotary embedding has forward MACs (its angles, inv_freq x positions) and no backward rule; its "
                "backward is 0 in fact, since neither a buffer nor integer positions need a gradient (FlopCounterMode "
                "on meta over forward and backward agrees: tests/test_estimates_report.py).",
                "",
            ]
    small = next(r for r in rows if r.spec.cls_name == c.model)
    linear = " + ".join(f"{value:,} {what}" for what, value in c.linear.items())
    d = small.dims
    parts += [
        "## Cost against sequence length: the small Llama",
        "",
        f"archaudit's `vary` fits the forward MACs of the small Llama configuration on `{VARIED_INPUT}` as an "
        "exact polynomial in T (interpolated at "
        + ", ".join(f"T={t}" for t in c.macs.fitted_at)
        + ", verified at "
        + ", ".join(f"T={t}" for t in c.macs.verified_at)
        + "):",
        "",
        f"    forward MACs: {describe(c.macs)}",
        "",
        f"The T^2 coefficient is 2 x n_layer {d.n_layer} x n_heads {d.n_heads} x head_dim {d.head_dim} = "
        f"{c.quadratic:,} (QK^T and PV over the full T x T); the T coefficient is {linear} = "
        f"{sum(c.linear.values()):,}. At T = {SEQUENCE:,} the polynomial gives {n(c.macs(SEQUENCE))} MACs, the "
        f"forward MACs above. {CONVENTION}; the chart plots MACs from T = {CHART_SIZES[0]:,} to "
        f"{CHART_SIZES[1]:,}, past the config's max_position_embeddings of {LLAMA_CONFIG['max_position_embeddings']:,} "
        "(rotary positions hold no table, so the model runs there) so that the crossover shows.",
        "",
        f"![forward MACs of the small Llama against T, terms stacked]({CHART})",
        "",
    ]
    return "\n".join(parts)


def as_json(rows: list[Audited], c: Cost) -> dict[str, Any]:
    from archaudit.estimates import CONVENTION
    from archaudit.estimates import as_json as estimates_json

    return {
        "convention": CONVENTION,
        "command": COMMAND,
        "input": INPUT,
        "models": [
            {
                "key": r.spec.key,
                "title": r.spec.title,
                "class": r.spec.cls_name,
                "config": r.spec.config_name,
                "config_arguments": r.spec.config,
                "exact": {
                    "parameters": r.params,
                    "numel": r.numel,
                    "forward_macs": r.forward_macs,
                    "training_macs": r.training.total,
                    "backward_macs": r.training.backward,
                    "forward_flops": 2 * r.forward_macs,
                    "training_flops": r.training.flops,
                    "uncounted_modules": [rec.name for rec in r.training.uncounted],
                },
                "estimates": estimates_json(r.dims, r.found),
            }
            for r in rows
        ],
        "cost_against_sequence_length": {
            "model": c.model,
            "inputs": VARIED_INPUT,
            "macs": c.macs.as_json(),
            "chart": CHART,
            "chart_sizes": list(CHART_SIZES),
        },
    }


def write(output_dir: Path, log: Callable[[str], None] = lambda _: None) -> list[Audited]:
    from archaudit.output import atomic_write

    rows = []
    for spec in MODELS:
        log(f"auditing {spec.title} ...")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transformers' notices on meta (no weights to initialise)
            rows.append(audit(spec))
    llama = next(r for r in rows if r.spec.key == "llama")
    log("fitting the small Llama's MACs in T ...")
    c = cost(llama)
    atomic_write(output_dir / "estimates.md", markdown(rows, c))
    atomic_write(output_dir / "estimates.json", json.dumps(as_json(rows, c), indent=2, sort_keys=False) + "\n")
    atomic_write(output_dir / CHART, chart_svg(c, LLAMA_CONFIG["max_position_embeddings"]))
    for name in ("estimates.md", "estimates.json", CHART):
        log(f"wrote {output_dir / name}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output-dir", default=str(ROOT / "reports"))
    args = parser.parse_args(argv)
    rows = write(Path(args.output_dir), lambda line: print(line, file=sys.stderr))
    failures = [r.spec.title for r in rows if r.params != r.numel]
    for title in failures:
        print(f"{title}: the audited parameters differ from numel()", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
