"""A claims file about any model: ``[document] model`` as any TARGET (a file.py TARGET read relative to the claims
file), ``archaudit claims FILE --target T --input ...`` overriding it, and ``report TARGET --claims FILE`` refusing
a file about another model unless told to check it against TARGET.

Oracles: numel() of the model's parameters, hand arithmetic for its MACs (each pinned figure's arithmetic is in a
comment), and the files' own texts.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from cli_run import run

from archaudit.claims import check_document
from archaudit.cli import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK

MODEL = textwrap.dedent(
    """
    from torch import nn

    def build(width=8):
        return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))
    """
)
# Linear(4, 8) + Linear(8, 2): 4*8 + 8 + 8*2 + 2 = 58 parameters; at 3x4: 3*4*8 + 3*8*2 = 144 MACs, 288 FLOPs

CARD = textwrap.dedent(
    """
    [document]
    id = "card"
    title = "A model card"
    source = "card.md"
    model = "{model}"
    input = "3x4"

    [[claims]]
    id = "params"
    where = "Overview"
    printed = "58"
    kind = "total"

    [[claims]]
    id = "flops"
    where = "Overview"
    printed = "144 FLOPs"
    kind = "flops"

    [[claims]]
    id = "layers"
    where = "Overview"
    printed = "2 linear layers"
    kind = "count"
    count_type = "Linear"
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.py").write_text(MODEL)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "card.toml").write_text(CARD.format(model="../models/tiny.py:build"))
    return tmp_path


def test_a_file_target_is_read_relative_to_the_claims_file(project, monkeypatch):
    monkeypatch.chdir(project.parent)  # anywhere but the claims file's directory
    audit = check_document(project / "docs" / "card.toml")
    verdicts = {r.claim.id: (r.verdict.value, r.actual) for r in audit.results}
    assert verdicts["params"] == ("holds", 58)
    # "144 FLOPs" is the MACs: FLOPs are 2 x 144 = 288, and the verdict says which convention the figure is
    assert verdicts["flops"] == ("mismatch", 288)
    assert "the printed figure is MACs at input 3x4, not FLOPs" in audit.result("flops").evidence
    assert verdicts["layers"] == ("holds", 2)
    assert audit.checked_against.endswith("models/tiny.py:build")


def test_target_and_input_override_the_file(project, capsys):
    wide = project / "models" / "wide.py"
    wide.write_text(MODEL.replace("width=8", "width=16"))
    code, out, err = run(capsys, "claims", str(project / "docs" / "card.toml"), "--target", f"{wide}:build",
                         "--input", "6x4", "--format", "json")
    assert code == EXIT_CHECK_FAILED, err
    data = json.loads(out)
    assert data["checked_against"] == f"{wide}:build"
    results = {r["id"]: r for r in data["claims"]}
    assert results["params"]["actual"] == 4 * 16 + 16 + 16 * 2 + 2  # 114
    assert results["flops"]["actual"] == 2 * (6 * 4 * 16 + 6 * 16 * 2)  # 2 x 576 = 1,152


def test_report_refuses_a_claims_file_about_another_model(project, capsys):
    other = project / "models" / "other.py"
    other.write_text(MODEL)
    card = str(project / "docs" / "card.toml")
    code, _, err = run(capsys, "report", f"{other}:build", "--input", "3x4", "--claims", card, "--no-compare")
    assert code == EXIT_BAD_INPUT and "its claims are about" in err and "--against-target" in err
    assert err.count("\n") == 1
    code, out, err = run(capsys, "report", f"{other}:build", "--input", "3x4", "--claims", card, "--no-compare",
                         "--against-target")
    assert code == EXIT_OK, err
    assert "| params " in out or "params" in out.split("## 7. Documentation claims")[1]
    # the same model named two ways (relative in the file, absolute here) is the same model: no refusal
    code, out, err = run(capsys, "report", f"{project / 'models' / 'tiny.py'}:build", "--input", "3x4",
                         "--claims", card, "--no-compare")
    assert code == EXIT_OK, err


def test_a_mac_claim_without_an_input_is_refused_at_its_line(project, capsys):
    card = project / "docs" / "card.toml"
    card.write_text(CARD.format(model="../models/tiny.py:build").replace('input = "3x4"\n', ""))
    code, _, err = run(capsys, "claims", str(card))
    assert code == EXIT_BAD_INPUT and f"{card}:" in err and "'flops'" in err and "give input" in err
    card.write_text(CARD.format(model="../models/tiny.py:build").replace('input = "3x4"', 'input = "3xx4"'))
    code, _, err = run(capsys, "claims", str(card))
    assert code == EXIT_BAD_INPUT and f"{card}:" in err and "3xx4" in err
