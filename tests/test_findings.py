"""A report leads with what it found: each failing claim that follows from no other failing claim is one finding,
and the failing claims that read its figure (directly or through others) or print the same wrong figure again are
its consequences, not findings of their own.

Oracle: the claims file's own references (which claim's figure each claim reads), written out below, and the
model's structure (modules kept in a plain list).
"""

from __future__ import annotations

import textwrap

import torch
from torch import nn

from archaudit.claims import check_document
from archaudit.macs import audit_macs
from archaudit.report_data import findings
from archaudit.walker import audit_params

MODEL = textwrap.dedent(
    """
    from torch import nn

    def build():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))  # 4*8 + 8 + 8*2 + 2 = 58
    """
)

CARD = textwrap.dedent(
    """
    [document]
    id = "card"
    title = "A model card"
    source = "card.md"
    model = "tiny.py:build"

    [[claims]]
    id = "total"            # wrong: the root cause
    where = "Overview"
    printed = "60"
    kind = "total"

    [[claims]]
    id = "total_again"      # the same wrong figure, printed again
    where = "Summary"
    printed = "60"
    kind = "total"

    [[claims]]
    id = "per_layer"        # reads total's figure: wrong because total is
    where = "Overview"
    printed = "30"
    kind = "derived"
    expression = "total / 2"

    [[claims]]
    id = "per_layer_wrong"  # reads total's figure and fails: a consequence of total
    where = "Details"
    printed = "25"
    kind = "derived"
    expression = "total / 2"

    [[claims]]
    id = "half_of_that"     # reads per_layer's, which holds: its own failure (15 from the document, not 14)
    where = "Overview"
    printed = "14"
    kind = "derived"
    expression = "per_layer / 2"

    [[claims]]
    id = "layers"           # wrong on its own
    where = "Overview"
    printed = "3 layers"
    kind = "count"
    count_type = "Linear"

    [[claims]]
    id = "trainable"        # holds: no finding
    where = "Overview"
    printed = "58"
    kind = "trainable"
    """
)


def test_failures_that_follow_from_one_figure_are_one_finding(tmp_path):
    (tmp_path / "tiny.py").write_text(MODEL)
    (tmp_path / "card.toml").write_text(CARD)
    audit = check_document(tmp_path / "card.toml")
    assert {r.claim.id for r in audit.failed} == {"total", "total_again", "per_layer_wrong", "half_of_that", "layers"}
    # per_layer: 30 = 60 / 2 holds against the document's own figure, so what reads it does not follow from total
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    found = findings(audit_params(model), audit_macs(model, [torch.empty(1, 4)]), [audit])
    roots = {f.root: f.consequences for f in found}
    assert roots == {
        "card:total": ("total_again (mismatch)", "per_layer_wrong (contradicts the document)"),
        "card:half_of_that": (),
        "card:layers": (),
    }
    headline = next(f.headline for f in found if f.root == "card:total")
    assert headline == "Overview: the document says '60' (total); the model gives 58."


def test_modules_in_plain_containers_are_a_finding_of_their_own():
    class Hidden(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = [nn.Linear(4, 4), nn.Linear(4, 4)]  # a plain list: invisible to .parameters()
            self.out = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                x = block(x)
            return self.out(x)

    # (no MAC audit: a module in a plain list is not moved to meta with its owner, so no meta pass can run it)
    found = findings(audit_params(Hidden()), None, [])
    assert [f.root for f in found] == [""]
    # two Linear(4, 4): 2 x (4*4 + 4) = 40 parameters never seen
    assert "2 module(s) sit in plain Python containers" in found[0].headline and "40 parameters" in found[0].headline
