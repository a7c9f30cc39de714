"""The trace: one pass on meta that charges every op to the module call that ran it.

Oracles: FlopCounterMode on meta / 2 (its total, which never double counts an op) for MACs of models that share
a module between paths; the ops each module's own forward is written to run, for the columns a module without a
MAC rule has counted from its own ops (elements by hand); the CLI's exit code and output for a model that can only be built on the CPU, and for
a peer tool that fails on a model the audit counts.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from archaudit.inputs import InputSpec
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK, main
from archaudit.peers import compare_tools
from archaudit.macs import audit_macs
from archaudit.records import Status


class PosEnc(nn.Module):
    """A custom module (no MAC rule) with a Linear child, shared by every block: timm CoaT's ``cpe``/``crpe``."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(x)


class Block(nn.Module):
    def __init__(self, cpe: PosEnc, d: int) -> None:
        super().__init__()
        self.cpe = cpe
        self.mix = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.cpe(x))


class Shared(nn.Module):
    def __init__(self, d: int = 32, blocks: int = 2, root_calls: bool = False) -> None:
        super().__init__()
        self.cpe = PosEnc(d)  # registered at the root and inside every block
        self.blocks = nn.ModuleList([Block(self.cpe, d) for _ in range(blocks)])
        self.root_calls = root_calls

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.root_calls:
            x = self.cpe(x)
        for block in self.blocks:
            x = block(x)
        return x


def flop_counter_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.to("meta")(torch.empty(shape, device="meta"))
    return counter.get_total_flops() // 2


def test_a_module_shared_between_paths_is_charged_per_call():
    # Before the fix: 0 MACs in total, with -81,920 at the root and at `cpe` (own = inclusive - children).
    model = Shared(d=32, blocks=2)
    audit = audit_macs(model, [InputSpec((1, 40, 32))])
    # 4 Linear calls (cpe.proj twice, each block's mix once) x 40 tokens x 32 x 32
    assert audit.macs == 4 * 40 * 32 * 32 == 163_840 == flop_counter_macs(model, (1, 40, 32))
    assert audit.record("cpe.proj").calls == 2 and audit.record("cpe.proj").macs == 2 * 40 * 32 * 32
    assert all(r.macs >= 0 for r in audit.records)


@given(d=st.integers(1, 24), tokens=st.integers(1, 9), blocks=st.integers(1, 4), root_calls=st.booleans())
def test_shared_modules_agree_with_flop_counter_and_never_go_negative(d, tokens, blocks, root_calls):
    # Oracle: FlopCounterMode on meta / 2, whose total counts each op once whatever module names it.
    model = Shared(d, blocks, root_calls)
    audit = audit_macs(model, [InputSpec((2, tokens, d))])
    assert audit.macs == flop_counter_macs(model, (2, tokens, d))
    assert all(getattr(r.counts, c) >= 0 for r in audit.records for c in r.counts.as_dict())


class NewGELU(nn.Module):
    """HF's tanh approximation of GELU, written out as transformers writes it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * torch.pow(x, 3.0))))


class RMSNorm(nn.Module):
    """Llama's RMSNorm, written out as transformers writes it."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


class Conv1D(nn.Module):
    """GPT-2's Conv1D: a transposed Linear applied with addmm, bias included."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        self.nf = nf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return out.view(*x.shape[:-1], self.nf)


class SDPAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x.view(x.shape[0], x.shape[1], 2, -1).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape)


class Uncounted(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.act = NewGELU()
        self.norm = RMSNorm(d)
        self.proj = Conv1D(d, d)
        self.attn = SDPAttention()
        self.relu = nn.ReLU()  # has a rule: its activation column is counted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.attn(self.proj(self.norm(self.act(x)))))


def test_columns_of_a_module_without_a_rule_are_counted_from_its_ops():
    # Before: every column silently 0 for these modules; then "not counted"; now counted op by op from the trace
    # (the "not counted" fields went when nothing could be left uncounted any more).
    audit = audit_macs(Uncounted(8), [InputSpec((1, 4, 8))])
    by_name = {r.name: r for r in audit.records}
    for name in ("act", "norm", "proj", "attn"):
        assert (by_name[name].status, by_name[name].source) == (Status.OPS, "ops")
    assert audit.record("act").counts.activation == 1 * 4 * 8  # one tanh over 4 tokens x 8
    assert audit.record("norm").counts.norm == 1 * 4 * 8  # x * rsqrt(...): the elements rsqrt scales
    assert audit.record("proj").counts.bias == 4 * 8  # addmm's bias, once per output element
    assert audit.record("attn").counts.softmax == 1 * 2 * 4 * 4  # 2 heads, 4 x 4 scores
    assert audit.record("relu").counts.activation == 1 * 4 * 8
    # Conv1D's addmm is still counted as MACs: 4 tokens x 8 x 8
    assert audit.record("proj").macs == 4 * 8 * 8


def test_every_output_says_how_a_module_without_a_rule_was_counted(tmp_path, capsys):
    source = tmp_path / "uncounted.py"
    source.write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from test_trace import Uncounted

        def build():
            return Uncounted(8)
    """ % str(__import__("pathlib").Path(__file__).parent)))
    assert main(["flops", f"{source}:build", "--input", "1x4x8", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in data["modules"]}
    assert (by_name["act"]["status"], by_name["act"]["source"], by_name["act"]["activation"]) == ("ops", "ops", 32)
    assert data["ops"] == ["act", "norm", "proj", "attn"] and data["unsupported_ops"] == {}
    assert main(["flops", f"{source}:build", "--input", "1x4x8"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "| modules counted op by op (no MAC rule) " in text and "| unsupported ops (runs) " in text
    act = next(line for line in text.splitlines() if line.startswith("| act "))
    assert "| ops " in act and "counted op by op" in act
    assert main(["report", f"{source}:build", "--input", "1x4x8", "--no-compare"]) == EXIT_OK
    text = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines() if line.count("|") == 3}
    assert rows["direct parameters / MACs counted op by op (modules)"] == "2 / 4"  # RMSNorm and Conv1D hold their weights directly
    assert rows["unsupported ops (runs)"] == "none"


class TrackerHostile(nn.Module):
    """Stands for the models (timm CaiT, SigLIP ViT) on which FlopCounterMode's module tracker raises from its
    autograd hooks while a plain forward works: it raises as that tool does, and only under it, only while a
    parameter requires grad."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

        under_tool = any(type(m).__name__ == "_FlopCounterMode" for m in _get_current_dispatch_mode_stack())
        if under_tool and any(p.requires_grad for p in self.parameters()):
            raise RuntimeError("Expected gradient function to be set")
        return self.fc(x)


def test_a_peer_tool_failing_falls_back_and_says_so():
    # Before the fix the audit of such a model failed as a whole (exit 2); now the audit never runs
    # FlopCounterMode itself, and the peer row is counted again on a copy with requires_grad_(False).
    model = TrackerHostile().to("meta")
    inputs = [torch.empty(2, 8, device="meta")]
    audit = audit_macs(model, inputs)
    assert audit.macs == 2 * 8 * 8
    comparison = compare_tools(audit, model, inputs)
    assert comparison.totals["flop_counter_meta"] == 2 * 8 * 8
    assert "requires_grad_(False)" in comparison.notes["flop_counter_meta"]
    assert "Expected gradient function to be set" in comparison.notes["flop_counter_meta"]
    assert all(p.requires_grad for p in model.parameters())  # the caller's model is untouched


NEEDS_REAL_VALUES = """
import torch
from torch import nn


def build():
    # widths computed with tensor ops, as torchvision's RegNet does: meta tensors cannot be read back
    widths = (torch.arange(1, 3) * 8.0).round().int().tolist()
    return nn.Sequential(nn.Linear(4, widths[0]), nn.ReLU(), nn.Linear(widths[0], widths[1]))
"""


def test_a_model_that_cannot_be_built_on_meta_is_built_on_the_cpu(tmp_path, capsys):
    # Before the fix: exit 2, "Cannot copy out of meta tensor", although `params` without --meta works.
    source = tmp_path / "regnet_like.py"
    source.write_text(NEEDS_REAL_VALUES)
    assert main(["flops", f"{source}:build", "--input", "1x4", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["macs"] == 4 * 8 + 8 * 16  # Linear(4, 8) then Linear(8, 16), one sample
    assert data["built_on"] == "cpu" and data["build_note"].startswith("built on the CPU: calling it on the meta")
    assert main(["report", f"{source}:build", "--input", "1x4", "--no-compare"]) == EXIT_OK
    assert "Model built on the CPU: calling it on the meta device raised" in capsys.readouterr().out
    assert main(["flops", f"{source}:build", "--input", "1x4", "--device", "meta"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "on the meta device raised" in err[0]
    assert main(["flops", f"{source}:build", "--input", "1x4", "--device", "cpu", "--format", "json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["build_note"] == ""


def test_autocast_on_meta_is_a_null_context_only_while_tracing():
    """Oracle: torch's own autocast, which refuses device_type='meta' outside the trace and is restored after it."""
    from archaudit.trace import meta_autocast

    original = torch.autocast
    with pytest.raises(RuntimeError, match="unsupported"):
        with torch.autocast(device_type="meta", enabled=False):
            pass
    with pytest.raises(ValueError, match="kept"), meta_autocast():
        with torch.autocast(device_type="meta", enabled=False):
            x = torch.empty(2, device="meta") * 2
        assert x.is_meta
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            assert torch.is_autocast_enabled("cpu")  # other devices get torch's own autocast
        raise ValueError("kept")  # an error inside still restores torch.autocast
    assert torch.autocast is original


def test_a_model_that_pins_float32_with_autocast_is_traced_on_meta():
    """Oracle: hand arithmetic. Hugging Face's rotary embeddings do this; without the null context the trace fails."""

    class Pinned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device_type=x.device.type, enabled=False):
                return self.fc(x.float())

    audit = audit_macs(Pinned(), [torch.empty(2, 4, device="meta")])
    assert audit.macs == 2 * 4 * 3  # batch 2 x in 4 x out 3


def test_dict_tuple_and_dataclass_outputs_are_described_by_their_tensors():
    import dataclasses

    @dataclasses.dataclass
    class Out:
        logits: torch.Tensor
        cache: tuple | None = None

    class Many(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor):
            y = self.fc(x)
            return {"y": y, "pair": (y, y)}, Out(y, (y,)), [y.sum(-1)]

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.many = Many()

        def forward(self, x: torch.Tensor):
            mapping, out, listed = self.many(x)
            return mapping, out, listed[0]

    audit = audit_macs(Wrap(), [InputSpec((2, 3))])
    # the tensors directly in the outputs: a dict's values and a dataclass's fields, nested tuples left out
    assert audit.record("many").output_shapes == ()  # a tuple of containers: none of its items is a tensor
    assert audit.record("").output_shapes == ((2,),)
    assert audit.record("many.fc").output_shapes == ((2, 4),)
    from archaudit.trace import _outputs

    y = torch.empty(2, 4, device="meta")
    assert _outputs({"y": y, "pair": (y, y)}) == ((2, 4),)
    assert _outputs(Out(y, (y,))) == ((2, 4),)


def test_the_meta_copy_keeps_tied_weights_tied():
    """A CPU model whose Linear shares the Embedding's weight: the meta copy must share it too, or every count made
    on the copy (a training step's trainable elements, its optimizer work) counts the tied tensor twice. Oracle: the
    CPU model's own parameters(), each tensor once: Embedding 10 x 4 = 40 (shared) + the Linear's bias 10 = 50."""
    from archaudit.trace import on_meta
    from archaudit.training import audit_training

    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    model[1].weight = model[0].weight
    copy = on_meta(model)
    assert copy[0].weight is copy[1].weight and copy[0].weight.is_meta
    assert sum(p.numel() for p in copy.parameters()) == sum(p.numel() for p in model.parameters()) == 50
    assert not model[0].weight.is_meta  # the caller's model is not touched
    assert audit_training(model, [torch.zeros(2, 3, dtype=torch.long)]).trainable_elements == 50
