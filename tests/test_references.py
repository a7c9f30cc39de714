"""Reference models as plugins (archaudit.references): found through the ``archaudit.references`` entry-point
group, never imported by name; a user's package registers its own the same way.

The oracle for "never imported" is ``sys.modules`` after importing every archaudit module in a fresh process, and
the source itself (no import statement names the package).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from archaudit.cli import EXIT_OK
from archaudit.references import (
    ENTRY_POINT_GROUP,
    PluginError,
    ReferenceModel,
    baseline_total,
    discover,
    get_reference,
    references,
)
from cli_run import run
from fresh_process import top_level_modules_after_importing_archaudit
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = '''
from torch import nn
from archaudit.references import ReferenceModel

class Tiny(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)

def entries():
    return [
        ReferenceModel(
            name="tiny-user-model",
            description="a user's own reference model",
            citation="tests/test_references.py",
            input_shape=(1, 4),
            builder=Tiny,
            variants=(("narrow", {"width": 2}), ("wide", {"width": 16})),
        )
    ]

def broken():
    raise RuntimeError("the plugin's own bug")

def not_entries():
    return ["amnl"]

def clash():
    return [ReferenceModel("amnl", "another amnl", "nowhere", (1, 4), Tiny)]
'''


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user package ``userplug`` with an installed distribution's metadata declaring its entry point."""
    (tmp_path / "userplug.py").write_text(PLUGIN)
    info = tmp_path / "userplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: userplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nuserplug = userplug:entries\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_archaudit_never_imports_reference_models():
    source_imports = []
    for path in sorted((ROOT / "archaudit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            source_imports += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "reference_models"]
    assert source_imports == []
    assert "reference_models" not in top_level_modules_after_importing_archaudit()


def test_this_projects_models_come_through_the_entry_point():
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert [(p.name, p.value) for p in points if p.name == "reference_models"] == [
        ("reference_models", "reference_models:references")
    ]
    import reference_models

    assert references() == reference_models.references()
    assert get_reference("amnl").claims[0].name == "amnl_000.toml"
    assert get_reference("amnl").claims[0].is_file()  # package data, next to the plugin's code


def test_a_users_plugin_is_found_and_its_model_audited(plugin_dir: Path):
    found = discover()
    names = [e.name for e in found]
    assert "tiny-user-model" in names and "amnl" in names
    # plugins in the order of their entry-point names: reference_models < userplug
    assert names.index("amnl") < names.index("tiny-user-model")
    entry = next(e for e in found if e.name == "tiny-user-model")
    with torch.device("meta"):
        assert sum(p.numel() for p in entry.build().parameters()) == 4 * 8 + 8


def test_the_cli_lists_and_audits_a_users_reference_model(plugin_dir: Path, monkeypatch, capsys):
    """The CLI finds the plugin through its installed entry point (plugin_dir is on sys.path), as a user's would be."""
    import archaudit.references as refs

    monkeypatch.setattr(refs, "_FOUND", [])  # discovery runs again, now with plugin_dir on sys.path
    code, out, err = run(capsys, "list", "--format", "json")
    assert code == EXIT_OK, err
    assert "tiny-user-model" in [e["name"] for e in json.loads(out)]
    code, out, err = run(capsys, "params", "tiny-user-model", "--format", "json")
    assert code == EXIT_OK, err
    assert json.loads(out)["total"] == 4 * 8 + 8  # Linear(4, 8): weight 4*8, bias 8


def test_a_variant_entry_is_quoted_at_its_largest_published_variant(plugin_dir: Path, monkeypatch):
    import archaudit.references as refs

    monkeypatch.setattr(refs, "_FOUND", [discover()])
    total, evidence = baseline_total("tiny-user-model")
    assert total == 4 * 16 + 16  # the wide variant, Linear(4, 16)
    assert evidence == "reference model tiny-user-model as published (narrow 10, wide 80)"  # 4*2+2, 4*16+16


def test_the_published_dcnn_variants_give_its_baseline_figure():
    total, evidence = baseline_total("dcnn")
    # FD001: 4 conv 10x1 (10*1*10+10, then 3 x (10*10*10+10)) + conv 3x1 (3*10+1) + Dense(30*14, 100) + Dense(100, 1)
    assert total == 45_372
    assert evidence.startswith("reference model dcnn as published (FD001 45,372, FD002 31,372")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("userplug:broken", "reference-model plugin 'bad' (userplug:broken) failed to load: RuntimeError: the plugin's own bug"),
        ("userplug:not_entries", "reference-model plugin 'bad' (userplug:not_entries) returned a str, not an archaudit.references.ReferenceModel"),
        ("userplug:missing", "reference-model plugin 'bad' (userplug:missing) failed to load: AttributeError"),
        ("no_such_plugin_module:entries", "reference-model plugin 'bad' (no_such_plugin_module:entries) failed to load: ModuleNotFoundError"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_it(plugin_dir: Path, value: str, message: str):
    with pytest.raises(PluginError) as raised:
        discover([_point("bad", value)])
    text = str(raised.value)
    assert text.startswith(message) and "\n" not in text


def test_two_plugins_naming_one_model_are_refused(plugin_dir: Path):
    with pytest.raises(PluginError, match="'amnl' is named by two plugins: 'reference_models' and 'userplug'"):
        discover([_point("userplug", "userplug:clash"), _point("reference_models", "reference_models:references")])


def test_no_plugin_installed_is_said_plainly(monkeypatch):
    import archaudit.references as refs

    monkeypatch.setattr(refs, "_FOUND", [discover([])])
    with pytest.raises(LookupError, match="no package declares the 'archaudit.references' group"):
        get_reference("amnl")


def test_an_entry_built_from_a_plain_module_is_usable_without_the_plugin_package():
    entry = ReferenceModel("x", "x", "x", (1, 3), lambda: nn.Linear(3, 2))
    assert entry.example_input()[0].shape == (1, 3)
    assert sum(p.numel() for p in entry.build().parameters()) == 3 * 2 + 2


def test_a_plugins_text_is_escaped_wherever_it_is_rendered(monkeypatch):
    """Oracle: the Markdown a report would gain. A plugin's name, description, citation, provenance and notes are
    text from outside archaudit: a pipe must not add a table cell, nor a newline a heading, nor HTML reach a page."""
    import archaudit.references as refs
    from archaudit.references import Assumption
    from archaudit.render.model import report_markdown
    from archaudit.render.references import references_markdown
    from archaudit.report_data import build_report

    markup = "a | b\n# heading <b>x</b> `tick` *stars*"
    entry = ReferenceModel(
        "markup", markup, markup, (1, 4), lambda: nn.Linear(4, 2), provenance=(Assumption(markup, 1, markup),),
        notes=markup, related=(("amnl", markup),),
    )
    monkeypatch.setattr(refs, "_FOUND", [(entry,)])
    for text in (references_markdown([entry]), report_markdown(build_report("markup", compare=False))):
        assert "\n# heading" not in text and "<b>" not in text and " | b" not in text and "*stars*" not in text
        assert r"a \| b # heading &lt;b&gt;x&lt;/b&gt; \`tick\` \*stars\*" in text
