"""archaudit.audit() as a notebook user meets it: one call on a model in memory, its totals, its DataFrame, and
its HTML display parsed back.

Oracles: ``numel()`` of every parameter tensor once; FlopCounterMode on meta / 2 over the same forward pass; the
model's own attributes (which tensors are the same object); Python's html.parser reading the rendered HTML.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from html.parser import HTMLParser

import pytest
import torch
from oracles import flop_counter_macs
from torch import nn

import archaudit
from archaudit.errors import TargetError


class TinyViT(nn.Module):
    """A ViT-like model: conv patch stem, a class token held directly, positions from a buffer, a one-layer
    nn.TransformerEncoder, and a head whose weight is tied to a label embedding."""

    def __init__(self, dim: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, kernel_size=4, stride=4)  # 8x8 image -> 2x2 patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("positions", torch.arange(5))  # class token + 4 patches
        self.pos = nn.Embedding(5, dim)
        layer = nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.labels = nn.Embedding(classes, dim)
        self.head = nn.Linear(dim, classes, bias=False)
        self.head.weight = self.labels.weight  # tied

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = self.stem(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.pos(self.positions)
        return self.head(self.encoder(tokens)[:, 0])


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


class _Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def vit() -> TinyViT:
    torch.manual_seed(0)
    return TinyViT()


@pytest.fixture(scope="module")
def audited(vit: TinyViT) -> archaudit.Audit:
    return archaudit.audit(vit, "2x3x8x8")


def test_one_call_gives_totals_that_equal_the_oracles(vit, audited):
    audit = audited
    totals = audit.totals()
    assert totals["parameters"] == _numel(vit)  # the tied weight once
    assert totals["shared tensors"] == 1 and audit.params.shared[0].names == ("labels.weight", "head.weight")
    assert totals["direct-parameter modules"] == 1  # the root, for cls_token
    assert totals["buffers"] == 5  # positions
    # FlopCounterMode on a meta copy (on the CPU, eval mode takes the fused encoder kernel it has no formula for)
    meta = copy.deepcopy(vit).to("meta")
    assert totals["MACs"] == flop_counter_macs(meta, torch.empty(2, 3, 8, 8, device="meta"))
    assert totals["unsupported modules (MACs)"] == totals["unsupported modules (parameters)"] == 0
    assert len(repr(audit)) < 200 and repr(audit).startswith("<archaudit.Audit of TinyViT:")


def test_the_frame_has_a_row_per_module_and_folds_to_a_depth(vit, audited):
    audit = audited
    frame = audit.to_frame()
    assert list(frame["name"]) == [name for name, _ in vit.named_modules()]
    assert frame["params"].sum() == _numel(vit) and frame["macs"].sum() == audit.totals()["MACs"]
    folded = audit.to_frame(depth=1)
    assert list(folded["name"]) == ["", *(name for name, _ in vit.named_children())]
    # folding moves figures up, never loses them
    assert folded["params"].sum() == _numel(vit) and folded["macs"].sum() == audit.totals()["MACs"]
    encoder = folded.set_index("name").loc["encoder"]
    assert encoder["params"] == _numel(vit.encoder)
    assert encoder["folded"] == len(list(vit.encoder.named_modules())) - 1


def test_the_html_display_parsed_back_shows_the_audits_totals(vit, audited):
    audit = audited
    page = _Tables()
    page.feed(audit._repr_html_())
    totals_table, modules_table, *sections = page.tables
    shown = {row[0]: int(row[1].replace(",", "")) for row in totals_table[1:]}
    assert shown == audit.totals()
    # folded at depth 2: no row deeper than encoder.layers.0's parent
    names = [row[0].split(" (+")[0] for row in modules_table[1:]]
    assert "encoder.layers" in names and not any(name.count(".") >= 2 for name in names)
    assert sum(int(row[2].replace(",", "")) for row in modules_table[1:]) == _numel(vit)
    shared = sections[0]
    assert shared[1] == ["labels.weight", "160", "head.weight"]  # 10 x 16 elements


def test_markdown_names_shared_direct_and_escapes_names():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gamma

    Odd.__name__ = "Odd|<b>"
    model = nn.Sequential(Odd())
    text = archaudit.audit(model, "2x4").to_markdown()
    assert "Odd\\|&lt;b&gt;" in text and "<b>" not in text
    direct = text.split("**Parameters held directly**")[1]
    assert [line.split("|")[1:4] for line in direct.splitlines() if "gamma" in line] == [[" 0        ", " gamma       ", " 4       "]]
    html = archaudit.audit(model, "2x4").to_html()
    assert "Odd|&lt;b&gt;" in html and "<b>" not in html.replace("<b>Parameters held directly</b>", "")


def test_keyword_inputs_and_their_errors():
    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor, *, mask: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * mask

    audit = archaudit.audit(Masked(), "2x3", mask="2x4")
    assert audit.flops.macs == 2 * 3 * 4 and audit.flops.inputs == ("2x3", "mask=2x4")
    same = archaudit.audit(Masked(), torch.zeros(2, 3), keyword_inputs={"mask": torch.zeros(2, 4)})
    assert same.flops.macs == audit.flops.macs
    with pytest.raises(TargetError, match="no example input"):
        archaudit.audit(Masked())
    with pytest.raises(TargetError, match="given twice"):
        archaudit.audit(Masked(), "2x3", keyword_inputs={"mask": "2x4"}, mask="2x4")
    with pytest.raises(TargetError, match="expected a shape string"):
        archaudit.audit(Masked(), 3)


def test_the_example_a_model_carries_is_used():
    class Carries(nn.Linear):
        example_input_array = torch.zeros(5, 3)

    assert archaudit.audit(Carries(3, 4)).flops.inputs == ("5x3",)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is a test dependency")
def test_a_hugging_face_model_is_audited_from_its_dummy_inputs():
    import transformers

    config = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2, n_positions=16)
    with torch.device("meta"):
        model = transformers.GPT2Model(config)
    audit = archaudit.audit(model)
    assert audit.flops.inputs[0].startswith("input_ids=")
    assert audit.totals()["parameters"] == _numel(model)
    assert audit.totals()["unsupported modules (MACs)"] == 0


def test_to_json_carries_the_totals(vit, audited):
    audit = audited
    data = json.loads(audit.to_json())
    assert data["totals"] == audit.totals() and data["params"]["total"] == _numel(vit)
