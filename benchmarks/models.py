"""archaudit on the models people use: Hugging Face models built from small configs (random weights, on the meta
device, nothing loaded from a hub), and two small vision models made of the timm and torchvision blocks that
archaudit has rules for, each audited and held to independent oracles, written to reports/models.md.

torchvision's wheels on the project machine are CUDA-linked and fail to import, and timm needs torchvision, so the
vision models use the torch-only equivalents in tests/vision_blocks.py: each written from the upstream source and
carrying the upstream qualified name, so archaudit's rules match them as they match the real classes.

    python benchmarks/models.py [--output reports/models.md] [--only NAME ...]

For each model:
- parameters against ``numel()`` of every tensor once (the oracle), and MACs against FlopCounterMode on meta / 2
  over the same forward pass (the oracle);
- modules per outcome (formula, ops, direct, zero, unsupported) for parameters and for MACs, and the extra columns;
- a budget set at the model's own figures (``check_budget(params=(p, p), macs=(m, m))`` without
  ``allow_unsupported``) must pass;
- archaudit's time (parameters + MACs) as a ratio to FlopCounterMode's on the same model, measured in this run.

transformers is a test dependency (``pip install -e '.[test]'``), not a runtime one. The table's times hold for the
machine named in it; the counts hold anywhere.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


class Keywords(nn.Module):
    """Calls ``model(**dict(zip(names, inputs)))``: archaudit and FlopCounterMode pass inputs positionally."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        # a decoder's key/value cache is not part of one forward pass's cost
        self.extra = {"use_cache": False} if hasattr(model.config, "use_cache") else {}

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.model(**dict(zip(self.names, inputs, strict=True)), **self.extra)


def _ids(*shape: int) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.int64, device="meta")


def _text(
    cls_name: str, config_name: str, attention: str = "sdpa", **config: Any
) -> Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        import transformers

        # no pad token: a model would otherwise read token values to warn about padding, and meta tensors have none
        cfg = getattr(transformers, config_name)(**config, pad_token_id=None)
        cfg._attn_implementation = attention
        model = getattr(transformers, cls_name)(cfg)
        return Keywords(model.eval(), ("input_ids",)), (_ids(2, 16),)

    return build


def _seq2seq(cls_name: str, config_name: str, **config: Any) -> Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        import transformers

        cfg = getattr(transformers, config_name)(**config)
        model = getattr(transformers, cls_name)(cfg)
        return Keywords(model.eval(), ("input_ids", "decoder_input_ids")), (_ids(2, 16), _ids(2, 8))

    return build


def _vit() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    import transformers

    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128
    )
    model = transformers.ViTModel(cfg)
    return Keywords(model.eval(), ("pixel_values",)), (torch.empty(2, 3, 32, 32, device="meta"),)


def _whisper() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    import transformers

    cfg = transformers.WhisperConfig(
        vocab_size=100,
        pad_token_id=0,  # Whisper's default pad token (50256) lies outside a 100-token vocabulary
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        num_mel_bins=16,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=16,
        max_target_positions=32,
    )
    model = transformers.WhisperModel(cfg)
    features = torch.empty(2, 16, 32, device="meta")  # 2 x mel bins x 2*max_source_positions frames
    return Keywords(model.eval(), ("input_features", "decoder_input_ids")), (features, _ids(2, 8))


def _vision_blocks() -> Any:
    """tests/vision_blocks.py, loaded by path (it is test scaffolding, not a package), once per process."""
    import importlib.util

    if "vision_blocks" not in sys.modules:
        spec = importlib.util.spec_from_file_location("vision_blocks", ROOT / "tests" / "vision_blocks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["vision_blocks"] = module
        spec.loader.exec_module(module)
    return sys.modules["vision_blocks"]


class TimmBlock(nn.Module):
    """timm's vision_transformer.Block at drop path 0: pre-norm Attention and Mlp, each scaled by a LayerScale."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        vb = _vision_blocks()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = vb.Attention(dim, heads, qkv_bias=True)
        self.ls1 = vb.LayerScale(dim, init_values=1e-5)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.ls2 = vb.LayerScale(dim, init_values=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class TimmViT(nn.Module):
    """A small timm-style ViT: patch embedding, class token and position embedding held directly (timm's
    ``cls_token`` and ``pos_embed``), two blocks, final norm, head on the class token."""

    def __init__(self, dim: int = 64, depth: int = 2, heads: int = 4, patch: int = 8, image: int = 32) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*(TimmBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class SwinBlock(nn.Module):
    """torchvision's SwinTransformerBlock: pre-norm ShiftedWindowAttention and MLP, each through StochasticDepth."""

    def __init__(self, dim: int, heads: int, window: list[int], shift: list[int]) -> None:
        super().__init__()
        vb = _vision_blocks()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = vb.ShiftedWindowAttention(dim, window, shift, heads)
        self.stochastic_depth = vb.StochasticDepth(0.1, "row")
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class CNBlock(nn.Module):
    """torchvision's ConvNeXt CNBlock: depthwise 7x7, channels-last LayerNorm and MLP, scaled by its own
    ``layer_scale`` parameter (held directly, as torchvision holds it), through StochasticDepth, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        vb = _vision_blocks()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)
        self.stochastic_depth = vb.StochasticDepth(0.1, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return x + self.stochastic_depth(self.layer_scale * y)


class TorchvisionBlocks(nn.Module):
    """A small model of torchvision's blocks: a Conv2dNormActivation stem (conv, BatchNorm, ReLU), a ConvNeXt
    CNBlock, two Swin blocks (window 4x4, shifted by 0 then 2, torchvision's alternation), a LayerNorm and a head."""

    def __init__(self, dim: int = 32, heads: int = 2) -> None:
        super().__init__()
        vb = _vision_blocks()
        self.stem = vb.Conv2dNormActivation(3, dim, kernel_size=4, stride=4)
        self.cnblock = CNBlock(dim)
        self.swin = nn.Sequential(SwinBlock(dim, heads, [4, 4], [0, 0]), SwinBlock(dim, heads, [4, 4], [2, 2]))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.swin(self.cnblock(self.stem(x)).permute(0, 2, 3, 1))  # N, H, W, C, as torchvision's Swin runs
        return self.head(self.norm(x).mean(dim=(1, 2)))


def _image(model: type[nn.Module]) -> Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    def build() -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
        return model().eval(), (torch.empty(2, 3, 32, 32, device="meta"),)

    return build


SMALL = {"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]] = {
    "GPT-2": _text("GPT2Model", "GPT2Config", vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=32),
    # BERT and ALBERT's SDPA path tests its mask's values (all ones?) before attending: eager attention on meta
    "BERT (eager)": _text("BertModel", "BertConfig", "eager", **SMALL),
    "ALBERT (eager)": _text("AlbertModel", "AlbertConfig", "eager", embedding_size=32, **SMALL),
    "T5": _seq2seq("T5Model", "T5Config", vocab_size=100, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4),
    "Llama (GQA 4/2)": _text("LlamaModel", "LlamaConfig", num_key_value_heads=2, **SMALL),
    "Mistral (GQA 4/2)": _text("MistralModel", "MistralConfig", num_key_value_heads=2, **SMALL),
    "Qwen2 (GQA 4/2)": _text("Qwen2Model", "Qwen2Config", num_key_value_heads=2, **SMALL),
    "ViT": _vit,
    "Whisper": _whisper,
    "timm ViT blocks (torch-only)": _image(TimmViT),
    "torchvision Swin and ConvNeXt blocks (torch-only)": _image(TorchvisionBlocks),
}


def gpt2() -> nn.Module:
    """GPT-2 from the small config above, as a TARGET for the CLI (built where the CLI builds it):
    ``archaudit flops benchmarks/models.py:gpt2 --input 2x16:int64 --compare``."""
    return MODELS["GPT-2"]()[0]


@dataclass
class Row:
    name: str
    params: int
    numel: int
    macs: int
    flop_counter_macs: int
    params_outcomes: Counter[str]
    macs_outcomes: Counter[str]
    columns: dict[str, int]
    unsupported_ops: dict[str, int]
    budget_ok: bool
    ratio: float


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _flop_counter_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from archaudit.trace import meta_autocast  # torch has no autocast on meta; archaudit's trace runs under the same

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), meta_autocast(), counter:
        model(*inputs)
    return counter.get_total_flops() // 2


def _best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def measure(name: str, runs: int = 3) -> Row:
    import archaudit

    with torch.device("meta"):
        model, inputs = MODELS[name]()
    fc_s, fc_macs = _best_of(runs, lambda: _flop_counter_macs(model, inputs))
    ours_s, audited = _best_of(runs, lambda: archaudit.audit(model, *inputs))
    flops = audited.flops
    assert flops is not None
    params = audited.params
    budget = archaudit.check_budget(
        model, input=list(inputs), params=(params.total, params.total), macs=(flops.macs, flops.macs)
    )
    return Row(
        name=name,
        params=params.total,
        numel=_numel(model),
        macs=flops.macs,
        flop_counter_macs=fc_macs,
        params_outcomes=Counter(r.status.value for r in params.records),
        macs_outcomes=Counter(r.status.value for r in flops.records),
        columns={c: v for c, v in flops.counts.as_dict().items() if c != "macs"},
        unsupported_ops=dict(flops.unsupported_ops),
        budget_ok=budget.ok,
        ratio=ours_s / fc_s,
    )


def _outcomes(counts: Counter[str]) -> str:
    order = ("formula", "ops", "direct", "zero", "unsupported")
    return ", ".join(f"{k} {counts[k]}" for k in order if counts[k])


def markdown(rows: list[Row]) -> str:
    from archaudit.bench import cpu_name
    from archaudit.render._fmt import table

    head = (
        "# archaudit on the models people use\n\n"
        "Regenerated by `python benchmarks/models.py`. Each Hugging Face model is built from a small config with "
        "random weights on the meta device; the last two rows are small models of timm's and torchvision's blocks, "
        "written torch-only in tests/vision_blocks.py under their upstream qualified names (torchvision's wheels "
        "here are CUDA-linked and fail to import, and timm needs torchvision). Parameters are held to `numel()` (every tensor once) and MACs to FlopCounterMode on "
        "meta / 2 over the same forward pass. The budget column is `check_budget` at the model's own parameters "
        "and MACs without `allow_unsupported`. Time is archaudit's audit (parameters and MACs) against "
        f"FlopCounterMode's run on the same model, best of 3, on {cpu_name()} ({platform.python_version()}, "
        f"torch {torch.__version__}); the counts hold on any machine, the times on this one.\n\n"
    )
    body = table(
        (
            (
                r.name,
                f"{r.params:,}",
                "yes" if r.params == r.numel else f"NO ({r.numel:,})",
                f"{r.macs:,}",
                "yes" if r.macs == r.flop_counter_macs else f"NO ({r.flop_counter_macs:,})",
                _outcomes(r.params_outcomes),
                _outcomes(r.macs_outcomes),
                ", ".join(f"{c} {v:,}" for c, v in r.columns.items()),
                ", ".join(f"{op} x{n}" for op, n in sorted(r.unsupported_ops.items())) or "none",
                "passes" if r.budget_ok else "FAILS",
                f"{r.ratio:.2f}x",
            )
            for r in rows
        ),
        [
            "model",
            "parameters",
            "= numel",
            "MACs",
            "= FlopCounterMode/2",
            "modules (parameters)",
            "modules (MACs)",
            "columns",
            "unsupported ops",
            "budget",
            "time vs FlopCounterMode",
        ],
    )
    return head + body + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "reports" / "models.md"))
    parser.add_argument("--only", nargs="*", choices=sorted(MODELS), default=None)
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or MODELS:
        print(f"measuring {name} ...", file=sys.stderr)
        rows.append(measure(name))  # a model that cannot be measured stops the run: no row is left out silently
    from archaudit.output import atomic_write

    atomic_write(Path(args.output), markdown(rows))
    print(f"wrote {args.output}", file=sys.stderr)
    failures = [r.name for r in rows if r.params != r.numel or r.macs != r.flop_counter_macs or not r.budget_ok]
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
