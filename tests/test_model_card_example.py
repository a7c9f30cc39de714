"""examples/model_card: a model card drafted, edited and gated in CI, as its README says.

Oracles: the committed files (the draft must be what `archaudit draft` writes today, byte for byte), numel() and
FlopCounterMode-equal MACs of examples/vit.py (81,088 parameters; 1,385,344 MACs at 1x3x32x32: test_readme), and
the card's own text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli_run import run

from archaudit.cli import EXIT_CHECK_FAILED, EXIT_OK

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "examples" / "model_card"


def test_the_committed_draft_is_what_archaudit_draft_writes(capsys, monkeypatch):
    """The README's command, from the repository root, written beside the committed draft (so every path in it is
    relative to the same place) under a name of this process's own, then removed."""
    monkeypatch.chdir(ROOT)
    fresh = HERE / f".card.draft.{os.getpid()}.toml"
    try:
        code, _, err = run(capsys, "draft", "examples/model_card/card.md", "--target", "examples/vit.py:build",
                           "--input", "1x3x32x32", "--output", str(fresh.relative_to(ROOT)))
        assert code == EXIT_OK, err
        assert fresh.read_text() == (HERE / "card.draft.toml").read_text()
    finally:
        fresh.unlink(missing_ok=True)


def test_the_draft_runs_as_written_and_finds_both_wrong_figures(capsys):
    code, out, err = run(capsys, "claims", str(HERE / "card.draft.toml"), "--format", "json")
    assert code == EXIT_CHECK_FAILED, err
    verdicts = {c["claimed"]: c["verdict"] for c in json.loads(out)["claims"]}
    assert verdicts["81.7K"] == "mismatch"  # 81,088 + 640: the tied weight counted twice
    assert verdicts["1.39M"] == "mismatch"  # 1,385,344 MACs; FLOPs are 2,770,688


def test_the_edited_card_and_the_model_are_gated_together(capsys):
    code, out, err = run(capsys, "claims", str(HERE / "card.toml"), "--format", "json")
    claims = {c["id"]: c for c in json.loads(out)["claims"]}
    assert claims["flops"]["evidence"].startswith("the printed figure is MACs at input 1x3x32x32, not FLOPs")
    assert claims["tied_head"]["verdict"] == "holds" and "labels.weight = head.weight" in claims["tied_head"]["evidence"]
    assert claims["encoder_layers"]["actual"] == 2
    code, out, err = run(capsys, "check", str(HERE / "budgets.toml"))
    assert code == EXIT_OK, out + err
    assert "claims card.toml: ok" in out and "within budget" in out
