"""The rules for timm and torchvision blocks (archaudit/formulas/vision.py), keyed by qualified name, on the torch-only
equivalents of tests/vision_blocks.py (neither package imports on the test machine). Oracles, named in each test:

* **the upstream names**: each equivalent's qualified name is the pinned upstream one, and the rule is found for it;
* **numel()** of the equivalent's parameters, built on meta;
* **FlopCounterMode on meta**, over the module's forward, restricted to the module's own work (its called children's
  counts taken off), in MACs (FLOPs / 2);
* **hand arithmetic**, for the softmax and bias columns (FlopCounterMode counts neither).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import vision_blocks as vb
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies_vision import VISION_STRATEGIES, timm_attention_input_shapes, window_attention_input_shapes
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archaudit
from archaudit import REGISTRY, Status
from archaudit.formulas import vision
from archaudit.macs import audit_macs
from archaudit.records import MacCount
from archaudit.registry import LayerFormula, qualified_name

FEW = settings(max_examples=8, deadline=None)

UPSTREAM = [
    # huggingface/pytorch-image-models: timm/layers/layer_scale.py
    (vb.LayerScale, "timm.layers.layer_scale.LayerScale"),
    # huggingface/pytorch-image-models: timm/layers/attention.py (earlier timm: timm/models/vision_transformer.py)
    (vb.Attention, "timm.layers.attention.Attention"),
    # pytorch/vision: torchvision/ops/stochastic_depth.py
    (vb.StochasticDepth, "torchvision.ops.stochastic_depth.StochasticDepth"),
    # pytorch/vision: torchvision/ops/misc.py
    (vb.Conv2dNormActivation, "torchvision.ops.misc.Conv2dNormActivation"),
    # pytorch/vision: torchvision/models/swin_transformer.py
    (vb.ShiftedWindowAttention, "torchvision.models.swin_transformer.ShiftedWindowAttention"),
]


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def own_counted_macs(module: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode on meta over ``module(x)``, less what its called children counted: the module's own MACs."""
    counter = FlopCounterMode(display=False)
    with counter:
        module(x)
    counts = counter.get_flop_counts()
    name = type(module).__name__
    total = sum(counts.get(name, {}).values())
    children = sum(sum(ops.values()) for key, ops in counts.items() if key.count(".") == 1 and key.startswith(name))
    assert (total - children) % 2 == 0
    return (total - children) // 2


# --------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(("cls", "name"), UPSTREAM, ids=[name for _, name in UPSTREAM])
def test_equivalent_carries_the_upstream_name_and_finds_its_rule(cls: type[nn.Module], name: str) -> None:
    """Oracle: the upstream names, pinned (upstream file beside each). The registry finds the rule keyed by it."""
    assert qualified_name(cls) == name
    found = REGISTRY.lookup_rule(cls)
    assert found is not None and found[0] is cls and found[1] is dict(REGISTRY.rules())[name]
    assert name in VISION_STRATEGIES


def test_the_vision_rules_are_the_ones_declared() -> None:
    """Oracle: the registry's listing, against the names vision.py exports."""
    keys = {k for k in REGISTRY if isinstance(k, str) and k.startswith(("timm.", "torchvision."))}
    assert keys == {name for _, name in UPSTREAM} == set(VISION_STRATEGIES)
    assert keys == {getattr(vision, n) for n in vision.__all__}


# --------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("key", [vision.LAYER_SCALE, vision.SHIFTED_WINDOW_ATTENTION], ids=["LayerScale", "SWA"])
@FEW
@given(st.data())
def test_formula_equals_numel(key: str, data: st.DataObject) -> None:
    """Oracle: numel() of the equivalent on meta (LayerScale's gamma; Swin's table plus its qkv and proj Linears)."""
    module = data.draw(VISION_STRATEGIES[key])
    entry = dict(REGISTRY.rules())[key].parameters
    assert isinstance(entry, LayerFormula)
    assert entry.count(module) == numel(module), entry.describe(module)
    audit = archaudit.audit_params(module)
    assert audit.record("").status is Status.FORMULA and audit.total == numel(module) and audit.mismatches == ()


@pytest.mark.parametrize("key", [vision.TIMM_ATTENTION, vision.STOCHASTIC_DEPTH, vision.CONV2D_NORM_ACTIVATION],
                         ids=["Attention", "StochasticDepth", "Conv2dNormActivation"])
@FEW
@given(st.data())
def test_known_zero_owns_nothing_and_children_are_counted(key: str, data: st.DataObject) -> None:
    """Oracle: numel() of the equivalent's own parameters (0) and of all of them (the walker's total)."""
    module = data.draw(VISION_STRATEGIES[key])
    assert sum(p.numel() for p in module.parameters(recurse=False)) == 0
    audit = archaudit.audit_params(module)
    assert audit.record("").status is Status.ZERO and audit.total == numel(module) and audit.mismatches == ()


# --------------------------------------------------------------------------------------------- MACs and columns


@FEW
@given(st.data())
def test_timm_attention_macs_equal_flop_counter_on_meta(data: st.DataObject) -> None:
    """Oracle: FlopCounterMode on meta, less qkv and proj (children, counted at their own calls), for the MACs;
    hand arithmetic for the softmax column, B x heads x N x N. Fused and explicit paths, every option."""
    module = data.draw(VISION_STRATEGIES[vision.TIMM_ATTENTION])
    (shape,) = data.draw(timm_attention_input_shapes(module))
    record = audit_macs(module, [meta(shape)], flop_counter=False).record("")
    assert record.source == "formula"
    assert record.macs == own_counted_macs(module, meta(shape))
    b, n, _ = shape
    assert (record.counts.softmax, record.counts.bias, record.counts.norm) == (b * module.num_heads * n * n, 0, 0)


@FEW
@given(st.data())
def test_window_attention_macs_equal_flop_counter_on_meta(data: st.DataObject) -> None:
    """Oracle: FlopCounterMode on meta over the whole forward (qkv and proj are applied with F.linear, never
    called, so all of it is the module's own); hand arithmetic for softmax (windows x heads x T x T) and bias
    (qkv 3*dim and proj dim per token, padded). Windows 1..7 x 1..7, shifts, inputs not a multiple of the window."""
    module = data.draw(VISION_STRATEGIES[vision.SHIFTED_WINDOW_ATTENTION])
    (shape,) = data.draw(window_attention_input_shapes(module))
    record = audit_macs(module, [meta(shape)], flop_counter=False).record("")
    assert record.source == "formula"
    assert record.macs == own_counted_macs(module, meta(shape))
    b, h, w, d = shape
    w0, w1 = module.window_size
    windows = b * -(-h // w0) * -(-w // w1)
    tokens = windows * w0 * w1
    bias = tokens * 3 * d * (module.qkv.bias is not None) + tokens * d * (module.proj.bias is not None)
    assert (record.counts.softmax, record.counts.bias) == (windows * module.num_heads * (w0 * w1) ** 2, bias)


def _free_shape(key: str, module: nn.Module) -> tuple[int, ...]:
    if key == vision.LAYER_SCALE:
        return (2, 3, module.gamma.numel())
    if key == vision.CONV2D_NORM_ACTIVATION:
        return (2, module[0].in_channels, 9, 9)
    return (2, 3, 5)


@pytest.mark.parametrize("key", [vision.LAYER_SCALE, vision.STOCHASTIC_DEPTH, vision.CONV2D_NORM_ACTIVATION],
                         ids=["LayerScale", "StochasticDepth", "Conv2dNormActivation"])
@FEW
@given(st.data())
def test_blocks_without_own_work_count_none(key: str, data: st.DataObject) -> None:
    """Oracle: FlopCounterMode on meta, restricted to the module (0: x * gamma and the depth mask are element-wise,
    the conv is a child); by the convention in records.py no column either. The whole audit still equals
    FlopCounterMode's total (Conv2dNormActivation's conv, at the child)."""
    module: Any = data.draw(VISION_STRATEGIES[key])
    module.train(data.draw(st.booleans()))
    x = meta(_free_shape(key, module))
    audit = audit_macs(module, [x], flop_counter=False)
    record = audit.record("")
    assert record.source == "formula"
    assert record.counts == MacCount()
    assert own_counted_macs(module, meta(_free_shape(key, module))) == 0
    counter = FlopCounterMode(display=False)
    with counter:
        module(meta(_free_shape(key, module)))
    assert sum(r.macs for r in audit.records) == counter.get_total_flops() // 2


def test_pinned_window_attention() -> None:
    """Hand arithmetic: dim 32, 4 heads, window 7x7 on 2x10x11: padded to 14x14, 2 x 4 = 8 windows of 49 tokens
    (392 tokens). MACs: qkv 392*32*96 = 1,204,224 + proj 392*32*32 = 401,408 + 2 x 8*4*49*49*8 = 1,229,312:
    2,834,944. Softmax 8*4*49*49 = 76,832. Parameters: 13*13*4 = 676 + 32*96 + 96 + 32*32 + 32 = 4,900."""
    with torch.device("meta"):
        module = vb.ShiftedWindowAttention(32, [7, 7], [3, 3], 4)
    record = audit_macs(module, [meta((2, 10, 11, 32))], flop_counter=False).record("")
    assert (record.macs, record.counts.softmax) == (2_834_944, 76_832)
    assert numel(module) == 4_900 == archaudit.audit_params(module).record("").formula_params
