"""The walker on the hard cases: ownership by non-leaf modules, sharing, freezing, buffers, plain
containers, lazy modules, subclasses, and billion-parameter models on the meta device.

Oracle throughout: ``numel()`` of the real tensors, summed by hand in each test.
"""

from __future__ import annotations

import resource

import pytest
import torch
from torch import nn

import archaudit
from archaudit import LazyModuleError, Status, audit_params, params_frame
from archaudit.records import MacCount
from archaudit.registry import REGISTRY
from archaudit.formulas.linear import LinearSpec


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class TiedLM(nn.Module):
    """Embedding and output projection share one weight (as GPT-2 and T5 do)."""

    def __init__(self, vocab: int = 100, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_counted_once_and_every_holder_is_named():
    model = TiedLM()
    audit = audit_params(model)
    # 100*16 embedding (shared with head.weight) + 2*16 LayerNorm
    assert audit.total == 100 * 16 + 2 * 16 == numel(model)
    assert [s.names for s in audit.shared] == [("embed.weight", "head.weight")]
    assert audit.shared[0].params == 1600
    assert audit.shared_params == 1600  # one extra reference, not counted
    head = audit.record("head")
    assert (head.own_params, head.params, head.shared) == (1600, 0, ("weight",))
    # The formula of head (Linear 16->100, no bias) still matches its subtree: it holds the tensor.
    assert head.status is Status.FORMULA and head.formula_agrees


def test_a_module_registered_at_two_paths_is_counted_once():
    block = nn.Linear(8, 8)
    model = nn.Sequential(block, nn.ReLU(), block)
    audit = audit_params(model)
    assert [r.name for r in audit.records] == ["", "0", "1", "2"]
    assert audit.total == 8 * 8 + 8 == numel(model)
    assert audit.record("2").params == 0 and audit.record("2").own_params == 72
    assert {s.names for s in audit.shared} == {("0.weight", "2.weight"), ("0.bias", "2.bias")}


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(17, 64)
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)
        self.head = nn.Linear(64, 1)


def test_multihead_attention_in_proj_is_owned_by_a_non_leaf_module():
    audit = audit_params(Encoder())
    attn = audit.record("attn")
    assert not attn.leaf
    # in_proj_weight 3*64*64 + in_proj_bias 3*64, held by the attention module itself
    assert attn.params == 3 * 64 * 64 + 3 * 64 == 12_480
    # formula covers the subtree: 4*64*64 + 4*64 (in_proj + out_proj)
    assert attn.formula_params == attn.subtree_params == 16_640
    assert audit.record("attn.out_proj").note == "counted as Linear"
    # 17*64 + 64 + 16_640 + 64 + 1
    assert audit.total == 1_152 + 16_640 + 65 == numel(Encoder())
    assert audit.total - audit.leaf_only_total == 12_480
    assert audit.component("attn") == 16_640


class WithToken(nn.Sequential):
    """A container that also owns a parameter (a learned class token, as in ViT)."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(4, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, 4))


def test_a_parameter_on_a_container_is_counted_as_a_direct_parameter():
    audit = audit_params(WithToken())
    root = audit.record("")
    assert root.params == 4 and root.status is Status.DIRECT and root.direct == (("cls_token", (1, 1, 4)),)
    assert "subclass of parameter-free Sequential" in root.note and "cls_token (1x1x4)" in root.note
    assert audit.unsupported == ()
    assert audit.total == 4 + 4 * 4 + 4 == numel(WithToken())


class ScaleShift(nn.Module):
    """A custom layer with parameters and no formula."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n))
        self.shift = nn.Parameter(torch.zeros(n))


def test_custom_layer_holding_its_own_parameters_is_direct():
    model = nn.Sequential(nn.Linear(3, 5), ScaleShift(5))
    audit = audit_params(model)
    custom = audit.record("1")
    assert custom.status is Status.DIRECT and custom.params == 10
    assert custom.note == "direct parameters: scale (5), shift (5)"
    assert [r.name for r in audit.direct] == ["1"] and audit.unsupported == ()
    assert audit.total == 3 * 5 + 5 + 10 == numel(model)


class ScaledLinear(nn.Linear):
    """A Linear subclass with an extra parameter: Linear's formula no longer covers it."""

    def __init__(self) -> None:
        super().__init__(4, 2)
        self.gain = nn.Parameter(torch.ones(2))


def test_subclass_with_extra_parameters_is_unsupported_not_a_formula_bug():
    audit = audit_params(ScaledLinear())
    rec = audit.record("")
    assert rec.status is Status.UNSUPPORTED and "subclass of Linear" in rec.note
    assert audit.total == 4 * 2 + 2 + 2
    assert audit.mismatches == ()


class ListBug(nn.Module):
    """Layers kept in plain Python containers: PyTorch registers none of them."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 8)
        self.layers = [nn.Linear(8, 8), nn.Linear(8, 8)]
        self.by_name = {"a": nn.LayerNorm(8)}
        self.pairs = ([nn.Linear(8, 2)],)
        self.alias = [self.inp]  # a list of registered modules hides nothing


def test_modules_in_plain_containers_are_found_with_what_they_would_add():
    model = ListBug()
    audit = audit_params(model)
    assert audit.total == 72 == numel(model)  # only self.inp is registered
    found = {(u.name, u.type, u.params) for u in audit.unregistered}
    assert found == {
        ("layers[0]", "Linear", 72),  # 8*8 + 8
        ("layers[1]", "Linear", 72),
        ("by_name['a']", "LayerNorm", 16),  # 2*8
        ("pairs[0][0]", "Linear", 18),  # 8*2 + 2
    }
    assert audit.unregistered_params == 72 + 72 + 16 + 18


def test_frozen_submodules_are_split_from_trainable():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    model[0].requires_grad_(False)
    audit = audit_params(model)
    assert audit.frozen == 110 and audit.trainable == 22  # 10*10+10 frozen, 10*2+2 trainable
    assert audit.total == audit.frozen + audit.trainable


def test_buffers_are_reported_apart_with_bytes():
    model = nn.Sequential(nn.Conv1d(3, 8, 3), nn.BatchNorm1d(8))
    audit = audit_params(model)
    bn = audit.record("1")
    # running_mean 8 + running_var 8 (float32) + num_batches_tracked 1 (int64)
    assert bn.buffers == 17 and bn.buffer_bytes == 16 * 4 + 8
    assert audit.total == 3 * 8 * 3 + 8 + 2 * 8


def test_lazy_module_gets_an_error_naming_it():
    model = nn.Sequential(nn.Linear(4, 4), nn.LazyLinear(3))
    with pytest.raises(LazyModuleError, match=r"module '1' \(LazyLinear\) has an uninitialised parameter 'weight'"):
        audit_params(model)
    model(torch.zeros(2, 4))  # materialise: LazyLinear becomes a Linear
    assert audit_params(model).total == 20 + 15


def test_meta_device_billion_parameter_model_is_counted_without_allocating():
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with torch.device("meta"):
        model = nn.Sequential(*[nn.TransformerEncoderLayer(4096, 32, dim_feedforward=16384) for _ in range(8)])
    audit = audit_params(model)
    # per layer: attention 4*4096^2 + 4*4096, feed-forward 2*4096*16384 + 16384 + 4096, 2 LayerNorms 4*4096
    per_layer = 4 * 4096**2 + 4 * 4096 + 2 * 4096 * 16384 + 16384 + 4096 + 4 * 4096
    assert audit.total == 8 * per_layer == 1_611_038_720
    assert audit.device == "meta"
    assert all(p.is_meta for p in model.parameters())
    # Allocated, the weights would take 1.6e9 * 4 B = 6.4 GB; the walk must not come near that.
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 512 * 1024
    assert audit.record("0").status is Status.FORMULA and audit.record("0").formula_agrees


def test_audit_is_immutable_and_frames_have_one_row_per_path():
    audit = audit_params(Encoder())
    with pytest.raises(AttributeError):
        audit.records = ()  # type: ignore[misc]
    frame = params_frame(audit)
    assert list(frame["name"]) == [r.name for r in audit.records]
    assert frame["params"].sum() == audit.total
    assert set(frame["status"]) <= {"formula", "direct", "zero", "unsupported"}


def test_a_formula_that_disagrees_with_numel_is_surfaced():
    registry = REGISTRY.copy()
    registry.rule(nn.Linear, family="broken", spec=lambda m: LinearSpec(m.in_features, m.out_features, True),
                  params=lambda s: s.in_features * s.out_features, expression=lambda s: "in*out",
                  macs=lambda m, call: MacCount(), override=True)
    audit = audit_params(nn.Linear(3, 2), registry=registry)
    assert [r.name for r in audit.mismatches] == [""]
    assert "DISAGREES" in audit.record("").note
    with pytest.raises(archaudit.FormulaMismatchError, match=r"formula in\*out = 6 but numel\(\) = 8"):
        audit_params(nn.Linear(3, 2), registry=registry, strict=True)


def test_non_module_is_refused():
    with pytest.raises(TypeError, match="expects an nn.Module, got int"):
        audit_params(3)  # type: ignore[arg-type]
