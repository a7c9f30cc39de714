"""The claims-file reference (docs/claims.md), the claims file's JSON Schema (archaudit/schemas/claims.schema.json)
and the nearest known key named for an unknown one, each held to the loader so that none can drift from it.

Oracles: the loader's declarations (``CLAIM_KEYS``, ``KEY_TYPES``, ``DOCUMENT_TYPES``, ``FAMILY_KINDS``,
``DTYPE_BYTES``, ``LAYER_FAMILIES``) and what ``load_claims`` accepts; the schema is read from its file and judged
by ``jsonschema``; the page is read with markdown-it (its fenced blocks, headings and table rows), and each of its
examples is checked by ``check_document`` against the verdict its ``# verdict:`` comment names.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import tomllib
from pathlib import Path

import jsonschema
import pytest
from archaudit.claims import ClaimsFileError, check_document, load_claims
from archaudit.claims.layer_formulas import LAYER_FAMILIES
from archaudit.claims.loader import (
    CLAIM_KEYS,
    COMMON_KEYS,
    COMPONENT_PATHS,
    DOCUMENT_REQUIRED,
    DOCUMENT_TYPES,
    FAMILY,
    FAMILY_KINDS,
    KEY_TYPES,
    MAX_CLAIMS,
    ROW_KEYS,
    ROW_TYPES,
    TOP_KEYS,
)
from archaudit.claims.records import DTYPE_BYTES, KINDS, Verdict
from archaudit.tomlfile import unknown_message
from cli_run import budgets_file, refused
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "claims.md"
SCHEMA_PATH = ROOT / "archaudit" / "schemas" / "claims.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
DEFS = SCHEMA["$defs"]
CLAIMS_FILES = sorted((ROOT / "reference_models" / "claims").glob("*.toml")) + sorted(
    (ROOT / "tests" / "fixtures" / "claims").glob("*.toml")
)
"""Every claims file the repository ships or tests with, but tests/fixtures/claims/bad/ (malformed on purpose)."""
BAD = ROOT / "tests" / "fixtures" / "claims" / "bad"
REQUIRED_BY_EVERY_KIND = ("id", "kind", "where")
"""What the loader requires of every claim, whatever its kind (``note``, the fourth common key, is optional)."""


def validator(schema: dict | None = None) -> jsonschema.Draft202012Validator:
    """A validator of ``schema`` (a part of the claims schema, resolved within it), or of the whole schema."""
    if schema is None:
        return jsonschema.Draft202012Validator(SCHEMA)
    return jsonschema.Draft202012Validator({**schema, "$defs": DEFS})


VALIDATOR = validator()


def schema_errors(data: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def meets_schema(schema: dict, value: object) -> bool:
    return validator(schema).is_valid(value)


def write(tmp_path: Path, text: str, name: str = "claims.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ============================================================================================== the page, read


@pytest.fixture(scope="module")
def page() -> dict:
    """The page's toml blocks (line, text), its level-3 sections (title -> (first line, last line)) and lines."""
    text = DOC.read_text(encoding="utf-8")
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks = [(t.map[0] + 1, t.content) for t in tokens if t.type == "fence" and t.info.strip() == "toml"]
    headings = [(t.map[0], tokens[i + 1].content, t.tag) for i, t in enumerate(tokens) if t.type == "heading_open"]
    sections = {}
    for n, (start, title, tag) in enumerate(headings):
        end = next((s for s, _, tg in headings[n + 1 :] if tg <= tag), len(lines))
        sections[title] = (start, end)
    return {"text": text, "lines": lines, "blocks": blocks, "sections": sections}


def section_lines(page: dict, title: str) -> list[str]:
    start, end = page["sections"][title]
    return page["lines"][start:end]


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every table row among ``lines`` (header and separator rows included)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]


def key_rows(lines: list[str]) -> dict[str, list[str]]:
    """The rows of the tables whose heading's first cell is "key": key -> the row's other cells."""
    rows, in_keys = {}, False
    for line in lines:
        if not line.startswith("|"):
            in_keys = False
            continue
        cells = table_rows([line])[0]
        if cells[0] == "key":
            in_keys = True
        match = re.fullmatch(r"`(\w+)`", cells[0])
        if in_keys and match:
            rows[match.group(1)] = cells[1:]
    return rows


def preamble(page: dict) -> str:
    """The [document] and [components] tables of the page's first file, which its claim examples are part of."""
    first = next(text for _, text in page["blocks"] if "[document]" in text)
    return first[: first.index("[[claims]]")]


def example_file(page: dict, block: str) -> str:
    """A block as a whole file: as it stands when it has its own [document], else after the page's preamble."""
    return block if "[document]" in block else preamble(page) + block


VERDICT = re.compile(r'^# verdict: (.+)\n\[\[claims\]\]\nid = "(\w+)"$', re.MULTILINE)


def verdicts(block: str) -> dict[str, str]:
    """Each claim id of a block and the verdict its comment names; every claim must have one."""
    named = {claim_id: verdict for verdict, claim_id in VERDICT.findall(block)}
    assert len(named) == block.count("[[claims]]"), f"a claim without '# verdict:' just above it:\n{block}"
    return named


def kind_example(page: dict, kind: str) -> tuple[str, dict]:
    """The first example block of ``kind``'s section, and its claim of that kind (as tomllib reads it)."""
    start, end = page["sections"][f"`{kind}`"]
    block = next(text for line, text in page["blocks"] if start < line <= end)
    claims = tomllib.loads(block)["claims"]
    return block, next(c for c in claims if c["kind"] == kind)


# ============================================================================================== (a) shipped files


@pytest.mark.parametrize("path", CLAIMS_FILES, ids=lambda p: p.name)
def test_every_shipped_claims_file_meets_the_schema(path):
    with path.open("rb") as handle:
        assert schema_errors(tomllib.load(handle)) == []


SCHEMA_REFUSES = {"missing_field", "no_document", "single_quoted_id", "unknown_dtype", "unknown_kind", "unknown_layer"}
"""Bad fixtures whose mistake is one of structure, which the schema refuses as the loader does."""
LOADER_ONLY = {"bad_figure", "duplicate_id", "implied_unknown_name", "ranking_unknown_id", "unknown_component",
               "unknown_hyperparameter"}
"""Bad fixtures whose mistake no schema can see (docs/claims.md, The JSON Schema): a figure that cannot be read,
a duplicate id, an id or [components] name that names nothing, a hyperparameter the builder does not take."""
NOT_TOML = {"malformed"}


def test_every_bad_fixture_is_refused_by_the_schema_or_is_one_it_cannot_see():
    """A new bad fixture must be placed in one of the three sets: the page's list of what the schema cannot check
    stays true."""
    names = {p.stem for p in BAD.glob("*.toml")}
    assert names == SCHEMA_REFUSES | LOADER_ONLY | NOT_TOML
    for name in sorted(names - NOT_TOML):
        with (BAD / f"{name}.toml").open("rb") as handle:
            errors = schema_errors(tomllib.load(handle))
        assert bool(errors) == (name in SCHEMA_REFUSES), (name, errors)


# ============================================================================================== (b) schema = loader


def test_the_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_schemas_tables_are_the_loaders():
    assert list(SCHEMA["properties"]) == list(TOP_KEYS)
    assert SCHEMA["additionalProperties"] is False and SCHEMA["required"] == ["document", "claims"]
    assert SCHEMA["properties"]["claims"]["maxItems"] == MAX_CLAIMS
    document = DEFS["document"]
    assert list(document["properties"]) == list(DOCUMENT_TYPES) and document["additionalProperties"] is False
    assert document["required"] == list(DOCUMENT_REQUIRED)
    assert list(document["properties"]["families"]["properties"]) == list(FAMILY_KINDS)


def test_the_schemas_kinds_and_their_keys_are_claim_keys():
    """Per kind: exactly the keys CLAIM_KEYS allows, its required keys, nothing else; each key's schema is the one
    of $defs/keys (so a key means the same in every kind), refined only by the loader's own lists."""
    kinds = DEFS["kinds"]
    assert list(kinds) == list(KINDS)
    assert DEFS["keys"]["kind"]["enum"] == list(KINDS)
    claim = DEFS["claim"]
    assert claim["required"] == list(REQUIRED_BY_EVERY_KIND)
    dispatch = {rule["if"]["properties"]["kind"]["const"]: rule["then"]["$ref"] for rule in claim["allOf"]}
    assert dispatch == {kind: f"#/$defs/kinds/{kind}" for kind in KINDS}
    assert all(rule["if"]["required"] == ["kind"] for rule in claim["allOf"])
    refinements = {("size", "dtype"): list(DTYPE_BYTES), ("formula", "layer"): list(LAYER_FAMILIES)}
    for kind, spec in CLAIM_KEYS.items():
        body = kinds[kind]
        assert list(body["properties"]) == list(spec.allowed), kind
        assert body["required"] == list(spec.required), kind
        assert body["additionalProperties"] is False, kind
        for key, schema in body["properties"].items():
            if key == "kind":
                assert schema == {"const": kind}
                continue
            assert schema["$ref"] == f"#/$defs/keys/{key}", (kind, key)
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            assert extra == ({"enum": refinements[kind, key]} if (kind, key) in refinements else {}), (kind, key)
    assert kinds["attribute"]["oneOf"] == [{"required": ["count_type"]}, {"required": ["attribute"]}]
    assert kinds["arithmetic"]["dependentRequired"] == {"components": ["component"]}


SAMPLES = [
    "", " ", "\t", "x", "a1_b", "A", "1a", "_a", "a-b", "a\n", "é", "max", "min", "total", "amnl", "1x3x224x224",
    "768 × 768", 0, 1, 2, 16, -1, 10**400, 0.5, 1.5, -0.5, 1e-300, float("inf"), float("-inf"), True, False,
    datetime.date(2024, 1, 1), [], ["a"], ["a", "b"], [""], [" "], ["a", ""], [1], ["a", 1], [["a"]], [{}],
    [{"params": "a", "rmse": "b", "score": "c"}], [{"params": "a", "rmse": "b"}],
    [{"params": "a", "rmse": "b", "score": "c", "extra": "d"}], [{"params": 1, "rmse": "b", "score": "c"}],
    {}, {"total": "amnl"}, {"totl": "amnl"}, {"total": ["amnl", "amnl-wide"]}, {"total": ""}, {"trainable": []},
    {"cnn": ["cnn"]}, "other.toml:total", "a/b.toml:x_1", ".toml:x", "a.toml:1x", "a.toml:",
]
"""Values of every TOML type, at the edges of each declared type. Not here: NaN, and floats that are whole
numbers (1.0), which JSON cannot tell apart (see test_the_schemas_documented_gaps_are_real)."""


def _rows(value: object) -> bool:
    """What the loader accepts as rows: KEY_TYPES, then each row's keys (loader._check_rows)."""
    return KEY_TYPES["rows"].accepts(value) and all(
        set(row) == set(ROW_KEYS) and all(ROW_TYPES[k].accepts(v) for k, v in row.items()) for row in value
    )


def _families(value: object) -> bool:
    return DOCUMENT_TYPES["families"].accepts(value) and all(
        key in FAMILY_KINDS and FAMILY.accepts(item) for key, item in value.items()
    )


@pytest.mark.parametrize("key", list(KEY_TYPES))
def test_each_keys_schema_accepts_what_its_declared_type_accepts(key):
    """Behaviour, not names: the schema of each key and KEY_TYPES give the same answer on every sample."""
    accepts = _rows if key == "rows" else KEY_TYPES[key].accepts
    differ = [v for v in SAMPLES if accepts(v) != meets_schema(DEFS["keys"][key], v)]
    assert differ == [], f"{key}: the schema and KEY_TYPES ({KEY_TYPES[key].expected}) disagree on {differ}"


@pytest.mark.parametrize("key", list(DOCUMENT_TYPES))
def test_each_document_keys_schema_accepts_what_its_declared_type_accepts(key):
    accepts = _families if key == "families" else DOCUMENT_TYPES[key].accepts
    schema = DEFS["document"]["properties"][key]
    assert [v for v in SAMPLES if accepts(v) != meets_schema(schema, v)] == []


def test_components_schema_accepts_what_the_loader_accepts():
    tables = [{}, {"cnn": ["cnn"]}, {"cnn": []}, {"cnn": "cnn"}, {"cnn": ["cnn", 1]}, {"a": ["x"], "b": ["y", "z"]}]
    for table in tables:
        assert meets_schema(DEFS["components"], table) == all(COMPONENT_PATHS.accepts(v) for v in table.values())


def test_the_schemas_documented_gaps_are_real():
    """What docs/claims.md says the schema lets through and the loader refuses: NaN, and 1.0 for an integer."""
    assert meets_schema(DEFS["keys"]["tolerance"], float("nan")) and not KEY_TYPES["tolerance"].accepts(float("nan"))
    assert meets_schema(DEFS["keys"]["from"], 1.0) and not KEY_TYPES["from"].accepts(1.0)


# ============================================================================================== (c) the page


def test_the_page_has_a_section_for_every_kind_in_order(page):
    sections = [title[1:-1] for title in page["sections"] if re.fullmatch(r"`\w+`", title) and title != "`[document]`"]
    assert sections == list(KINDS)
    listed = [cells[0] for cells in table_rows(section_lines(page, "Claim kinds")) if cells[0].startswith("[`")]
    assert listed == [f"[`{kind}`](#{kind})" for kind in KINDS]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kinds_section_lists_exactly_its_keys_and_their_types(page, kind):
    rows = key_rows(section_lines(page, f"`{kind}`"))
    spec = CLAIM_KEYS[kind]
    assert [k for k, cells in rows.items() if cells[0] == "required"] == list(spec.required)
    assert [k for k, cells in rows.items() if cells[0] == "optional"] == list(spec.optional)
    assert set(rows) == set(spec.required) | set(spec.optional)  # the common keys are listed once, above
    for key, cells in rows.items():
        assert cells[1] == KEY_TYPES[key].expected, (kind, key)


def test_the_common_keys_the_figure_keys_and_document_keys_are_listed_with_their_types(page):
    common = key_rows(section_lines(page, "`[[claims]]`: the keys every claim shares"))
    assert list(common)[: len(COMMON_KEYS)] == list(COMMON_KEYS)
    for key in COMMON_KEYS:
        assert common[key][:2] == ["required" if key in REQUIRED_BY_EVERY_KIND else "optional",
                                   KEY_TYPES[key].expected], key
    figure_keys = list(common)[len(COMMON_KEYS) :]
    assert figure_keys == ["printed", "value", "tolerance", "implied"]
    for key in figure_keys:
        assert common[key][0] == KEY_TYPES[key].expected, key
    document = key_rows(section_lines(page, "`[document]`"))
    assert list(document) == list(DOCUMENT_TYPES)
    assert all(document[key][0] == DOCUMENT_TYPES[key].expected for key in DOCUMENT_TYPES)
    assert COMPONENT_PATHS.expected in " ".join(section_lines(page, "`[components]`"))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kinds_section_has_an_example_claim_of_its_kind(page, kind):
    _, claim = kind_example(page, kind)
    assert claim["kind"] == kind
    assert set(CLAIM_KEYS[kind].required) <= set(claim), f"{kind}'s example lacks a required key"


def test_every_toml_block_of_the_page_loads_and_meets_the_schema(page, tmp_path):
    assert len(page["blocks"]) >= len(KINDS)
    for line, block in page["blocks"]:
        text = example_file(page, block)
        path = write(tmp_path, text, f"line_{line}.toml")
        try:
            document = load_claims(path)
        except ClaimsFileError as exc:
            pytest.fail(f"docs/claims.md:{line}: the example does not load: {exc}")
        assert len(document.claims) == text.count("[[claims]]")
        assert schema_errors(tomllib.loads(text)) == [], f"docs/claims.md:{line}"


def test_every_example_claim_gets_the_verdict_its_comment_names(page, tmp_path):
    """The fragments are checked together, as one file after the page's preamble; the whole files on their own
    (a file.py model beside its claims file, as the page says)."""
    fragments = [block for _, block in page["blocks"] if "[document]" not in block]
    files = [preamble(page) + "\n".join(fragments)] + [block for _, block in page["blocks"] if "[document]" in block]
    seen: set[str] = set()
    for number, text in enumerate(files):
        folder = tmp_path / str(number)
        folder.mkdir()
        model = tomllib.loads(text)["document"]["model"]
        script = re.fullmatch(r"(\w+\.py):\w+", model)
        if script:
            shutil.copy(ROOT / "examples" / script.group(1), folder)
        # the other document a cross example names: a claims file beside it (960,964 on amnl-compact)
        shutil.copy(ROOT / "tests" / "fixtures" / "claims" / "all_hold.toml", folder / "other.toml")
        expected = verdicts(text)
        assert not seen & set(expected), "an id used in two examples"
        seen |= set(expected)
        audit = check_document(write(folder, text))
        got = {r.claim.id: r.verdict.value for r in audit.results}
        assert got == expected, "\n".join(
            f"{cid}: the page says {expected[cid]}, the check gives {got[cid]} ({audit.result(cid).evidence})"
            for cid in expected if got[cid] != expected[cid]
        )
    shown = {v for text in files for v in verdicts(text).values()}  # the page shows every verdict but these two
    assert {v.value for v in Verdict} - {Verdict.MISSING.value, Verdict.CONTRADICTS.value} <= shown


def test_the_pages_python_example_runs(page, monkeypatch):
    tokens = MarkdownIt("commonmark").parse(page["text"])
    snippets = [t.content for t in tokens if t.type == "fence" and t.info.strip() == "python"]
    assert snippets
    monkeypatch.chdir(ROOT)
    for snippet in snippets:
        exec(compile(snippet, str(DOC), "exec"), {})  # the page's own example, run as a user would


# ============================================================================================== (d) refusals


@pytest.mark.parametrize(("kind"), KINDS)
def test_dropping_a_required_key_of_each_kinds_example_is_refused_by_both(page, tmp_path, kind):
    block, claim = kind_example(page, kind)
    base = tomllib.loads(example_file(page, block))
    index = next(n for n, c in enumerate(base["claims"]) if c["id"] == claim["id"])
    musts = [*REQUIRED_BY_EVERY_KIND, *CLAIM_KEYS[kind].required] + (["count_type"] if "count_type" in claim
                                                                       and kind == "attribute" else [])
    for key in musts:
        data = json.loads(json.dumps(base))
        del data["claims"][index][key]
        assert schema_errors(data), (kind, key)
        with pytest.raises(ClaimsFileError):
            load_claims(write(tmp_path, _toml(data)))


@pytest.mark.parametrize(("kind"), KINDS)
def test_a_key_another_kind_takes_is_refused_by_both(page, tmp_path, kind):
    block, claim = kind_example(page, kind)
    base = tomllib.loads(example_file(page, block))
    index = next(n for n, c in enumerate(base["claims"]) if c["id"] == claim["id"])
    valid = {key: next(v for v in SAMPLES if KEY_TYPES[key].accepts(v) and (key != "rows" or _rows(v)))
             for key in KEY_TYPES}
    for key in sorted(set(KEY_TYPES) - set(CLAIM_KEYS[kind].allowed)):
        data = json.loads(json.dumps(base))
        data["claims"][index][key] = valid[key]
        assert any("Additional properties" in e for e in schema_errors(data)), (kind, key)
        with pytest.raises(ClaimsFileError, match=rf"unknown key\(s\) {key}\b"):
            load_claims(write(tmp_path, _toml(data)))


def _toml(data: dict) -> str:
    """A claims file's data written back as TOML (strings, numbers, lists, tables: what a claims file holds)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v) if not isinstance(v, float) or v == v else "nan"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(item)}" for k, item in v.items()) + " }"
        raise TypeError(v)

    out = []
    for table in ("document", "components"):
        if table in data:
            out.append(f"[{table}]")
            out += [f"{json.dumps(k)} = {value(v)}" for k, v in data[table].items()]
    for claim in data.get("claims", []):
        out.append("[[claims]]")
        out += [f"{json.dumps(k)} = {value(v)}" for k, v in claim.items()]
    return "\n".join(out) + "\n"


BASE = """\
[document]
id = "refusals"
title = "Fixture: refusals"
source = "tests/test_claims_reference.py"
model = "amnl-compact"

[components]
cnn = ["cnn"]

[[claims]]
id = "total"
where = "fixture"
printed = "960,964"
kind = "total"
"""


@pytest.mark.parametrize(("claim", "message"), [
    ('id = "a"\nwhere = "w"\nprited = "1"\nkind = "total"\n', "unknown key(s) prited (did you mean printed?)"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "total"\ncomponent = "cnn"\n', "unknown key(s) component"),
    ('id = "a"\nwhere = "w"\nprinted = "0.5"\nkind = "scaling"\ncomponent = "cnn"\nhyperparameter = "h"\n'
     'from = "128"\nto = 64\n', "from = '128' must be a positive integer"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "total"\ntolerance = -1\n', "tolerance = -1 must be a finite"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "total"\nimplied = " "\n', "implied = ' ' must be a non-empty"),
    ('id = "a"\nwhere = "w"\nkind = "ranking"\nlabel = "total"\namong = ["total"]\norder = "best"\n',
     "order = 'best' must be 'max' or 'min'"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "component"\n', "needs 'component'"),
    ('id = "a"\nprinted = "1"\nkind = "total"\n', "needs a string 'where'"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "size"\ndtype = "float7"\n', "unknown dtype 'float7'"),
    ('id = "a"\nwhere = "w"\nkind = "formula"\nlayer = "GRU"\nexpression = "3h"\n', "no layer family 'GRU'"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "attribute"\nmodule = "lstm"\n', "needs count_type or attribute"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "attribute"\nmodule = "lstm"\ncount_type = "LSTM"\n'
     'attribute = "num_layers"\n', "gives both count_type and attribute"),
    ('id = "a"\nwhere = "w"\nprinted = "6"\nkind = "arithmetic"\nexpression = "2 x 3"\ncomponents = ["cnn"]\n',
     "components is read only with component"),
    ('id = "a"\nwhere = "w"\nprinted = "1"\nkind = "totl"\n', "unknown kind 'totl'"),
    ('id = "1a"\nwhere = "w"\nprinted = "1"\nkind = "total"\n', "'id' must be an identifier"),
])
def test_invalid_claims_are_refused_by_the_schema_and_the_loader(tmp_path, claim, message):
    text = BASE + "\n[[claims]]\n" + claim
    assert schema_errors(tomllib.loads(text)), claim
    with pytest.raises(ClaimsFileError) as refusal:
        load_claims(write(tmp_path, text))
    assert message in str(refusal.value)


@pytest.mark.parametrize("text", [
    BASE.replace("[document]", "[documnt]"),
    BASE.replace('model = "amnl-compact"\n', ""),
    BASE.replace('model = "amnl-compact"\n', 'model = "amnl-compact"\nfamilies = { totl = "amnl" }\n'),
    BASE.replace('cnn = ["cnn"]', "cnn = []"),
    BASE.split("[[claims]]")[0],
])
def test_invalid_tables_are_refused_by_the_schema_and_the_loader(tmp_path, text):
    assert schema_errors(tomllib.loads(text))
    with pytest.raises(ClaimsFileError):
        load_claims(write(tmp_path, text))


# ============================================================================================== nearest key


def test_a_misspelt_claim_key_is_named_with_the_nearest_known_key(tmp_path, capsys):
    path = write(tmp_path, BASE + '\n[[claims]]\nid = "typo"\nwhere = "w"\nprited = "1"\nkind = "total"\n')
    line = path.read_text(encoding="utf-8").splitlines().index('prited = "1"') + 1
    assert refused(capsys, "claims", str(path)) == (
        f"archaudit: {path}:{line}: claim 'typo' (total): unknown key(s) prited (did you mean printed?)"
    )


def test_a_far_off_claim_key_gets_no_suggestion_but_the_known_keys(tmp_path, capsys):
    path = write(tmp_path, BASE + '\n[[claims]]\nid = "far"\nwhere = "w"\nprinted = "1"\nkind = "total"\nzzz = 1\n')
    line = path.read_text(encoding="utf-8").splitlines().index("zzz = 1") + 1
    assert refused(capsys, "claims", str(path)) == (
        f"archaudit: {path}:{line}: claim 'far' (total): unknown key(s) zzz; known: "
        + ", ".join(CLAIM_KEYS["total"].allowed)
    )


def test_a_budgets_file_names_the_nearest_key_too_and_none_for_a_far_one(tmp_path, capsys):
    path = budgets_file(tmp_path, '[[model]]\ntarget = "dcnn"\nparms = 45_372\n')
    assert refused(capsys, "check", str(path)) == (
        f"archaudit: {path}:3: [[model]] #1 (dcnn): unknown key(s) parms (did you mean params?)"
    )
    path = budgets_file(tmp_path, '[[model]]\ntarget = "dcnn"\nqqqq = 1\n')
    err = refused(capsys, "check", str(path))
    assert err.startswith(f"archaudit: {path}:3: [[model]] #1 (dcnn): unknown key(s) qqqq; known: target, ")
    assert "did you mean" not in err


@pytest.mark.parametrize(("unknown", "expected"), [
    (["prited"], "unknown key(s) prited (did you mean printed?)"),
    (["tolerence"], "unknown key(s) tolerence (did you mean tolerance?)"),
    (["Printed"], "unknown key(s) Printed (did you mean printed?)"),
    (["zzz"], "unknown key(s) zzz; known: id, kind, where, note, printed, value, tolerance"),
    (["p"], "unknown key(s) p; known: id, kind, where, note, printed, value, tolerance"),
    (["prited", "zzz"], "unknown key(s) prited (did you mean printed?), zzz; known: id, kind, where, note, printed, "
                        "value, tolerance"),
    (["a b"], 'unknown key(s) "a b"; known: id, kind, where, note, printed, value, tolerance'),
])
def test_the_message_names_the_nearest_key_only_when_one_is_close(unknown, expected):
    message = unknown_message(unknown, ("id", "kind", "where", "note", "printed", "value", "tolerance"))
    assert message == expected
    assert "\n" not in message
