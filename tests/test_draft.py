"""`archaudit draft`: a claims file drafted from a document, every figure with where it stands and a guessed kind.

The two AMNL documents (``shared/seeds``, read as the text files they are) are drafted against the reference models
their hand-written claims files name, and the draft must hold at least 95% of the figures those files hold, each
hand-written figure matched to a drafted one at most once; the test names the ones it misses. Each draft loads
and runs to verdicts. A Markdown model card (``tests/fixtures/draft``) shows the heading path, table, row and
column in ``where``, components matched by name, and a ``file.py`` model written relative to the draft.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_run import refused, run

from archaudit import draft as drafting
from archaudit.claims import check_document, load_claims, parse_figure
from archaudit.claims.figures import Figure, FigureError
from archaudit.claims.records import Claim

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "draft"
CARD = FIXTURES / "model_card.md"
TINY = f"{FIXTURES / 'tiny_model.py'}:build"
CLAIMS = ROOT / "reference_models" / "claims"
SEED_DIRS = (ROOT / "shared" / "seeds", ROOT.parent / "shared" / "seeds")
DOCUMENTS = {
    # document, its hand-written claims file, the model that file names
    "000": ("000_c47ed4c1c12cbe1e.txt", "amnl_000.toml", "amnl"),
    "001": ("001_c03e6947d3dbf9eb.txt", "amnl_001.toml", "amnl-compact"),
}
CAPTURE = 0.95


def _seed(name: str) -> Path:
    for folder in SEED_DIRS:
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"the AMNL document {name} is not in {' or '.join(str(f) for f in SEED_DIRS)}")


def _figure(claim: Claim) -> Figure | None:
    """A claim's figure as printed (its ``value`` where the printed text is no figure, such as "halve")."""
    try:
        return parse_figure(claim.printed)
    except FigureError:
        return claim.figure


def _key(figure: Figure) -> tuple[float, str, bool, bool, float | None]:
    return (round(figure.value, 9), figure.unit, figure.at_least, figure.at_most, figure.range_low)


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each AMNL document drafted once (through the CLI) against its claims file's model."""
    folder = tmp_path_factory.mktemp("drafts")
    out: dict[str, Path] = {}
    for name, (document, _, target) in DOCUMENTS.items():
        source = _seed(document)
        path = folder / f"draft_{name}.toml"
        from archaudit.cli import main

        assert main(["draft", str(source), "--target", target, "--output", str(path)]) == 0
        out[name] = path
    return out


# --- the AMNL documents ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCUMENTS)
def test_draft_captures_the_hand_written_figures(name: str, drafted: dict[str, Path]) -> None:
    """Every figure of the hand-written claims file is looked for among the draft's (same value, unit and bounds),
    each drafted figure used once; at least 95% must be there, and the message names every one that is not."""
    hand = load_claims(CLAIMS / DOCUMENTS[name][1])
    draft = load_claims(drafted[name])
    pool = [_key(f) for f in map(_figure, draft.claims) if f is not None]
    wanted = [c for c in hand.claims if c.printed]
    missed = []
    for claim in wanted:
        figure = _figure(claim)
        assert figure is not None, claim.id
        if _key(figure) in pool:
            pool.remove(_key(figure))
        else:
            missed.append(f"{claim.id} ({claim.printed!r})")
    captured = len(wanted) - len(missed)
    rate = captured / len(wanted)
    print(f"{DOCUMENTS[name][0]}: {captured}/{len(wanted)} figures captured ({rate:.1%}); missed: {missed}")
    assert rate >= CAPTURE, f"{captured}/{len(wanted)} = {rate:.1%} captured; missed: {', '.join(missed)}"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_draft_loads_and_runs_to_verdicts(name: str, drafted: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The draft loads as written and `archaudit claims` gives every claim a verdict (exit 0 or 1, never 2);
    every claim says in a REVIEW comment what was guessed, and its where names a line of the document."""
    code, out, err = run(capsys, "claims", str(drafted[name]))
    assert code in (0, 1), err
    audit = check_document(drafted[name])
    assert len(audit.results) == len(load_claims(drafted[name]).claims)
    text = drafted[name].read_text(encoding="utf-8")
    lines = text.splitlines()
    claim_lines = [n for n, line in enumerate(lines) if line == "[[claims]]"]
    assert claim_lines and all(lines[n - 1].startswith("# REVIEW: ") for n in claim_lines)
    assert all(", line " in c.where for c in load_claims(drafted[name]).claims)
    assert 'model = "' + DOCUMENTS[name][2] + '"' in text


def test_amnl_tables_read_as_tables(drafted: dict[str, Path]) -> None:
    """The 000 document's pipe tables and the 001 document's tables pasted without separators both give table,
    row and column; a calculation glued to its result is split where it evaluates."""
    by_id = {c.id: c for c in load_claims(drafted["000"]).claims}
    where = by_id["bilstm_encoder_percentage"].where
    assert "table 'Component | Parameters | Percentage', row 'BiLSTM Encoder', column 'Percentage', line 45" in where
    assert by_id["bilstm_encoder_percentage"].kind == "percentage"
    compact = load_claims(drafted["001"])
    glued = {c.printed: c for c in compact.claims if "table 'Layer | Calculation | Parameters'" in c.where}
    assert glued["32,896"].kind == "arithmetic" and glued["32,896"].get("expression") == "256 × 128 + 128"
    assert glued["195"].get("expression") == "64 × 3 + 3"
    breakdown = [c for c in compact.claims if "table 'Component | Parameters | Percentage'" in c.where]
    assert [c.printed for c in breakdown][:4] == ["53,184", "1.5%", "594,432", "17.0%"]
    assert compact.components["lstm"] == ("lstm",)


# --- a Markdown document -------------------------------------------------------------------------------------------


def test_markdown_where_names_heading_path_table_row_and_column(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the target is given relative to here, and written relative to the draft
    output = tmp_path / "sub" / "card.toml"
    target = "tests/fixtures/draft/tiny_model.py:build"
    code, _, err = run(capsys, "draft", str(CARD), "--target", target, "--input", "1x16", "--output", str(output))
    assert code == 0, err
    document = load_claims(output)
    by_printed: dict[str, list[Claim]] = {}
    for claim in document.claims:
        by_printed.setdefault(claim.printed, []).append(claim)
    encoder = next(c for c in by_printed["1,072"])
    assert encoder.where == (
        "TinyNet model card > Parameter Analysis > Component breakdown: table 'Component | Parameters | Share', "
        "row 'Encoder', column 'Parameters', line 13"
    )
    assert encoder.kind == "component" and document.components[encoder.get("component")] == ("encoder",)
    assert by_printed["4.6 KB"][0].kind == "size" and by_printed["4.6 KB"][0].get("dtype") == "float32"
    assert by_printed["about 2.2K FLOPs"][0].kind == "flops" and document.input == ("1x16",)
    assert by_printed["2"][0].where == "TinyNet model card > Parameter Analysis, line 7"
    assert by_printed["2"][0].get("module") == "encoder" and by_printed["2"][0].get("count_type") == "Linear"
    assert by_printed["100%"][0].kind == "sum"
    assert by_printed["91.2%"][0].kind == "reported"
    assert sorted(c.kind for c in by_printed["1,140"]) == ["total", "total", "total", "trainable"]
    # the model's file is written relative to the draft, as archaudit reads it
    model_file = document.model.rpartition(":")[0]
    assert not os.path.isabs(model_file) and (output.parent / model_file).resolve() == FIXTURES / "tiny_model.py"
    code, out, err = run(capsys, "claims", str(output))
    assert code == 0, out + err  # the card's figures are the tiny model's
    assert "| holds" in out


def test_without_a_target_the_draft_loads_and_checks_with_one(tmp_path: Path, capsys) -> None:
    output = tmp_path / "card.toml"
    code, _, err = run(capsys, "draft", str(CARD), "--output", str(output))
    assert code == 0, err
    document = load_claims(output)
    assert document.model == drafting.PLACEHOLDER_MODEL
    text = output.read_text(encoding="utf-8")
    assert "--target TARGET" in text and "\n[components]\n" not in text
    assert {c.kind for c in document.claims} <= {"total", "trainable", "size", "sum", "reported"}
    assert "no such file" in refused(capsys, "claims", str(output))  # the placeholder names a file to set
    code, out, err = run(capsys, "claims", str(output), "--target", TINY)
    assert code in (0, 1), err


def test_plain_text_headings_and_glued_tables() -> None:
    text = (
        "Component Breakdown\n\nComponentParametersPercentage\nCNN Feature Extractor53,1841.5%\n"
        "Subtotal (explicit)960,96427.4%\n\nSummary\n\nTotal parameters: ~3.5M (compact)\n"
        "Inference speed>30K samples/sec\nModel size (float16)~7 MB\nReducing it would halve BiLSTM parameters.\n"
        "It has 12 attention heads and a 5-layer MLP with Hidden size: 384.\n"
    )
    found = drafting.scan(text, plain=True)
    got = [(f.printed, f.category) for f in found]
    assert got == [
        ("53,184", "params"),
        ("1.5%", "percent"),
        ("960,964", "params"),
        ("27.4%", "percent"),
        ("~3.5M", "params"),
        (">30K", "throughput"),
        ("~7 MB", "size"),
        ("halve", "scaling"),
        ("12", "count"),
        ("5", "count"),
        ("384", "hyper"),
    ]
    assert found[0].where == (
        "Component Breakdown: table 'Component | Parameters | Percentage', row 'CNN Feature Extractor', "
        "column 'Parameters', line 4"
    )
    assert found[3].total_like and found[4].where == "Summary, line 9"


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("3,502,849 parameters", "3,502,849"),
        ("about ~2.36M weights", "~2.36M"),
        ("402K params", "402K"),
        ("a 67.4% share", "67.4%"),
        ("a 14 MB file", "14 MB"),
        ("0.73 GFLOPs per sample", "0.73 GFLOPs"),
        ("12 layers", "12"),
        ("Less than 1% of it", "less than 1%"),
        ("~12-15M params", "~12-15M"),
        ("3.3× faster", "3.3×"),
    ],
)
def test_figures_as_printed(text: str, printed: str) -> None:
    found = drafting.scan(text, plain=True)
    assert [f.printed for f in found] == [printed]
    parse_figure(found[0].printed)


def test_strings_are_escaped_and_ids_unique(tmp_path: Path) -> None:
    """Text of the document lands in TOML strings escaped (quotes, backslashes, control characters) and
    comments stay one line; ids repeat no name."""
    doc = tmp_path / "odd.md"
    doc.write_text(
        '# He said "3\\4" \x7f\n\n| Part "A" \\ B | Params |\n|---|---|\n| x\\"y | 1.2M |\n| x\\"y | 1.2M |\n'
        "| Total | 2.4M |\n\nTotal: 2.4M params.\n",
        encoding="utf-8",
    )
    drafted = drafting.draft(doc, output=tmp_path / "odd.toml")
    (tmp_path / "odd.toml").write_text(drafted.text, encoding="utf-8")
    document = load_claims(tmp_path / "odd.toml")
    assert len({c.id for c in document.claims}) == len(document.claims) == 4
    # Markdown's own escape: the row label is x"y
    assert document.claims[0].where.startswith('He said "3\\4" \x7f: table \'Part "A" \\ B | Params\', row \'x"y\'')
    assert all(line.startswith("#") or "\x7f" not in line for line in drafted.text.splitlines())
    assert drafting.toml_string('a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\u0001"'


# --- refusals and the output ---------------------------------------------------------------------------------------


def test_huge_binary_and_non_files_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    huge = tmp_path / "huge.md"
    with huge.open("wb") as handle:
        handle.truncate(drafting.MAX_DOCUMENT_BYTES + 1)  # sparse: refused on its size, never read
    limit = f"is {drafting.MAX_DOCUMENT_BYTES + 1:,} bytes; a document is a UTF-8 text file of at most"
    assert limit in refused(capsys, "draft", str(huge))
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"PK\x03\x04\x00\x00weights")
    assert "NUL byte at offset 4" in refused(capsys, "draft", str(binary))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("3,5 Millionen Parameter, \xe9t\xe9".encode("latin-1"))
    assert "not UTF-8 text" in refused(capsys, "draft", str(latin))
    assert "is not a regular file" in refused(capsys, "draft", str(tmp_path))
    assert "no such document" in refused(capsys, "draft", str(tmp_path / "missing.md"))
    assert "not an nn.Module" in refused(capsys, "draft", str(CARD), "--target", "os:getcwd")
    assert "1xq" in refused(capsys, "draft", str(CARD), "--input", "1xq")


def test_output_is_written_atomically(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "draft.toml"
    output.write_text("old draft\n", encoding="utf-8")
    assert "is a directory" in refused(capsys, "draft", str(CARD), "--output", str(tmp_path))
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\x00" * 16)
    refused(capsys, "draft", str(binary), "--output", str(output))
    assert output.read_text(encoding="utf-8") == "old draft\n"  # a refused document leaves the old draft whole

    import archaudit.output

    def failing_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archaudit.output.os, "replace", failing_replace)
    assert "No space left on device" in refused(capsys, "draft", str(CARD), "--output", str(output))
    assert output.read_text(encoding="utf-8") == "old draft\n"
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["draft.toml", "model.bin"]  # no temporary file left
    code, out, err = run(capsys, "draft", str(CARD), "--output", str(output))
    assert code == 0 and out == "" and "claims to review" in err
    assert output.read_text(encoding="utf-8").startswith("# Claims drafted by `archaudit draft`")
    code, out, _ = run(capsys, "draft", str(CARD))  # without --output: standard output
    assert code == 0 and out.startswith("# Claims drafted by `archaudit draft`")
