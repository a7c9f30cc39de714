"""Unknown keys in claims files and budgets files, the budgets file's ``expect`` table, and the index that finds
the line of every key in one pass over the text.

Every refusal goes through the command line (``main(argv) -> int``): exit 2 and exactly one stderr line that
names the file, the line where the key stands, the claim or entry, the key and the nearest known key.
Oracles: the line numbers are those of the text the test wrote (found with :func:`line_of`, a plain search);
the index's lines in the property test are the lines its generator wrote each key on, and ``tomllib`` says
that what it wrote is TOML.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from archaudit.claims import ClaimsFileError, load_claims
from archaudit.claims.records import KINDS, Verdict
from archaudit.cli import EXIT_CHECK_FAILED, EXIT_OK, main
from cli_run import budgets_file, refused
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "reference_models" / "claims"
FIXTURES = ROOT / "tests" / "fixtures" / "claims"

HEAD = """\
[document]
id = "keys"
title = "Fixture: unknown keys"
source = "tests/test_file_keys.py"
model = "amnl-compact"
{document}
[components]
cnn = ["cnn"]

[[claims]]
id = "total"
where = "fixture"
printed = "960,964"
kind = "total"
{total}
[[claims]]
id = "cnn"
where = "fixture"
printed = "53,184"
kind = "component"
component = "cnn"
{cnn}"""
"""A claims file whose two claims hold on amnl-compact (960,964 parameters, cnn 53,184: see test_claims.py)."""


def claims_file(tmp_path: Path, *, document: str = "", total: str = "", cnn: str = "", tail: str = "") -> Path:
    path = tmp_path / "claims.toml"
    path.write_text(HEAD.format(document=document, total=total, cnn=cnn) + tail, encoding="utf-8")
    return path




def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` that reads exactly ``text`` (stripped)."""
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip() == text)




# ============================================================================================== claims files


def test_the_untouched_fixture_holds(tmp_path, capsys):
    """The base of every case below is a good file: whatever is refused below is refused for the one key."""
    assert main(["claims", str(claims_file(tmp_path))]) == EXIT_OK, capsys.readouterr()


def test_misspelt_tolerance_is_refused_not_left_at_its_default(tmp_path, capsys):
    path = claims_file(tmp_path, total="tolerence = 0.5\n")
    err = refused(capsys, "claims", str(path))
    line = line_of(path, "tolerence = 0.5")
    assert err == (f"archaudit: {path}:{line}: claim 'total' (total): unknown key(s) tolerence "
                   "(did you mean tolerance?)")


@pytest.mark.parametrize(("where", "text", "marker", "fragment"), [
    # top level: a misspelt array of tables beside the real one
    ("tail", '\n[[claim]]\nid = "stray"\n', "[[claim]]", "unknown table(s) claim (did you mean claims?)"),
    ("tail", '\n[notes]\ntext = "x"\n', "[notes]", "unknown table(s) notes; known: document, components, claims"),
    # [document]
    ("document", 'famlies = { total = "amnl" }\n', 'famlies = { total = "amnl" }',
     "[document]: unknown key(s) famlies (did you mean families?)"),
    # [document] families: its keys are the claim kinds that search a family
    ("document", 'families = { totl = "amnl" }\n', 'families = { totl = "amnl" }',
     "[document] families: unknown key(s) totl (did you mean total?)"),
    # a key of the component kind: component claims read it, total claims do not
    ("total", 'component = "cnn"\n', 'component = "cnn"', "claim 'total' (total): unknown key(s) component; known: "),
    ("cnn", 'implyed = "total"\n', 'implyed = "total"', "claim 'cnn' (component): unknown key(s) implyed "
                                                        "(did you mean implied?)"),
])
def test_unknown_keys_are_refused_at_every_level(tmp_path, capsys, where, text, marker, fragment):
    path = claims_file(tmp_path, **{where: text})
    err = refused(capsys, "claims", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, marker)}: "), err
    assert fragment in err


def test_score_formula_rows_take_params_rmse_and_score_only(tmp_path, capsys):
    rows = """
[[claims]]
id = "p"
where = "fixture"
printed = "1.0"
kind = "reported"

[[claims]]
id = "eff"
where = "fixture"
kind = "score_formula"
formulas = ["c / params"]
rows = [
    { params = "p", rmse = "p", score = "p" },
    { params = "p", rmse = "p", scor = "p" },
]
"""
    path = claims_file(tmp_path, tail=rows)
    err = refused(capsys, "claims", str(path))
    line = line_of(path, '{ params = "p", rmse = "p", scor = "p" },')
    assert err.startswith(f"archaudit: {path}:{line}: claim 'eff' (score_formula): rows #2: "), err
    assert "unknown key(s) scor (did you mean score?)" in err


def test_the_known_list_is_the_kinds_declared_keys(tmp_path, capsys):
    """Nothing close: the message lists the kind's keys, from the same table that refused the key."""
    from archaudit.claims.loader import CLAIM_KEYS

    path = claims_file(tmp_path, cnn='colour = "red"\n')
    err = refused(capsys, "claims", str(path))
    assert err.endswith("claim 'cnn' (component): unknown key(s) colour; known: "
                        + ", ".join(CLAIM_KEYS["component"].allowed))


def test_the_table_is_what_refuses(tmp_path, monkeypatch):
    """Declare a key in the table and the same file loads: refusing reads the table, nothing else."""
    import dataclasses

    from archaudit.claims import loader

    path = claims_file(tmp_path, cnn='colour = "red"\n')
    with pytest.raises(ClaimsFileError, match="unknown key"):
        load_claims(path)
    spec = loader.CLAIM_KEYS["component"]
    monkeypatch.setitem(loader.CLAIM_KEYS, "component", dataclasses.replace(spec, optional=spec.optional + ("colour",)))
    monkeypatch.setitem(loader.KEY_TYPES, "colour", loader.STRING)  # a key is declared with its type
    assert load_claims(path).claims[1].get("colour") == "red"


def test_every_kind_declares_its_keys_once():
    from archaudit.claims.loader import CLAIM_KEYS, COMMON_KEYS

    assert list(CLAIM_KEYS) == list(KINDS)
    for kind, spec in CLAIM_KEYS.items():
        assert len(set(spec.allowed)) == len(spec.allowed), kind  # no key declared twice for a kind
        assert set(COMMON_KEYS) <= set(spec.allowed), kind


@pytest.mark.parametrize("path", sorted(DOCUMENTS.glob("*.toml")) + sorted(FIXTURES.glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_claims_file_uses_only_known_keys(path):
    assert load_claims(path).claims


# ============================================================================================== budgets files

V2 = DOCUMENTS / "amnl_v2.toml"  # verdicts: holds 3, mismatch 8, not reproducible 1 (budgets.toml)


def test_unknown_key_under_claims_is_refused_like_one_under_model(tmp_path, capsys):
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{V2}"\nexpct = "all hold"\n')
    err = refused(capsys, "check", str(path))
    assert err == f"archaudit: {path}:3: [[claims]] #1 ({V2}): unknown key(s) expct (did you mean expect?)"


def test_unknown_key_under_model_names_line_and_nearest(tmp_path, capsys):
    path = budgets_file(tmp_path, '[[model]]\ntarget = "amnl"\n\n[[model]]\ntarget = "dcnn"\nparms = 45_372\n')
    err = refused(capsys, "check", str(path))
    assert err == f"archaudit: {path}:6: [[model]] #2 (dcnn): unknown key(s) parms (did you mean params?)"


def test_unknown_top_level_table_names_line_and_nearest(tmp_path, capsys):
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{V2}"\n\n[[modle]]\ntarget = "amnl"\n')
    err = refused(capsys, "check", str(path))
    assert err == f"archaudit: {path}:4: unknown table(s) modle (did you mean model?)"


def test_the_file_is_refused_before_anything_is_built(tmp_path, capsys):
    """A key mistake in the last entry is found before the first entry's (unresolvable) target is built."""
    path = budgets_file(tmp_path, f'[[model]]\ntarget = "no-such-model"\n\n[[claims]]\nfile = "{V2}"\nexpct = 1\n')
    assert "unknown key(s) expct" in refused(capsys, "check", str(path))


@pytest.mark.parametrize(("expect", "fragment"), [
    ("{}", "expect = {} checks nothing"),
    ("{ holdz = 0 }", "unknown verdict(s) holdz (did you mean holds?)"),
    ('{ "contradicts the documnt" = 0 }',
     'unknown verdict(s) "contradicts the documnt" (did you mean "contradicts the document"?)'),
    ("{ passes = 0 }", 'unknown verdict(s) passes; known: holds, mismatch, "contradicts the document", '
                       '"not reproducible", "not checkable here", "no such module"'),
    ("{ holds = 3, mismatch = -1 }", "expect.mismatch must be a count (an integer >= 0), got -1"),
    ("{ holds = 3.0 }", "expect.holds must be a count (an integer >= 0), got 3.0"),
    ('{ holds = "3" }', "expect.holds must be a count (an integer >= 0), got '3'"),
    ("{ holds = true }", "expect.holds must be a count (an integer >= 0), got True"),
    ('"all holds"', "expect is \"all hold\" or a table of verdict counts, got 'all holds'"),
])
def test_an_expect_that_checks_nothing_or_names_no_verdict_is_refused(tmp_path, capsys, expect, fragment):
    path = budgets_file(tmp_path, f'# the gate\n[[claims]]\nfile = "{V2}"\nexpect = {expect}\n')
    err = refused(capsys, "check", str(path))
    assert err.startswith(f"archaudit: {path}:4: [[claims]] #1 ({V2}): "), err
    assert fragment in err


def test_known_verdict_names_are_the_verdicts():
    from archaudit.budgets.file import VERDICTS

    assert tuple(v.value for v in Verdict) == VERDICTS


def test_all_hold_and_pinned_counts_still_gate(tmp_path, capsys):
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{V2}"\nexpect = "all hold"\n')
    assert main(["check", str(path)]) == EXIT_CHECK_FAILED  # 9 of its claims fail
    capsys.readouterr()
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{FIXTURES / "all_hold.toml"}"\nexpect = "all hold"\n')
    assert main(["check", str(path)]) == EXIT_OK
    capsys.readouterr()
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{V2}"\nexpect = {{ holds = 3, mismatch = 8, '
                                  '"not reproducible" = 1, "no such module" = 0 }\n')
    assert main(["check", str(path)]) == EXIT_OK
    capsys.readouterr()
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{V2}"\nexpect = {{ holds = 4 }}\n')
    assert main(["check", str(path)]) == EXIT_CHECK_FAILED
    assert "FAILED" in capsys.readouterr().out


# ============================================================================================== the line index


def test_lines_are_found_in_a_file_of_thousands_of_claims(tmp_path):
    n = 3200
    body = "".join(f'\n[[claims]]\nid = "c{i}"\nwhere = "row {i}"\nprinted = "{i + 1}"\nkind = "total"\n'
                   for i in range(n))
    path = tmp_path / "many.toml"
    path.write_text('[document]\nid = "d"\ntitle = "t"\nsource = "s"\nmodel = "amnl"\n' + body)
    document = load_claims(path)
    # 5 lines of [document], then 6 per claim (a blank line, [[claims]], then id): claim i's id on line 6i + 8
    assert [c.line for c in document.claims[:2]] == [8, 14] and document.claims[-1].line == 6 * n + 2


def test_each_file_is_scanned_once(tmp_path, capsys, monkeypatch):
    """One pass over each file's text, whatever the number of keys looked up: the budgets file and the
    claims file it names, once each. (This is what keeps finding lines linear in the file; an earlier loader that
    searched the whole text for each claim's line took 210 times as long on 16 times the claims.)"""
    from archaudit.tomlfile import KeyLines

    scanned: list[int] = []
    scan = KeyLines._document
    monkeypatch.setattr(KeyLines, "_document", lambda self: (scanned.append(len(self._text)), scan(self))[1])
    claims = claims_file(tmp_path, total="tolerance = 0\n")
    path = budgets_file(tmp_path, f'[[claims]]\nfile = "{claims}"\nexpect = {{ holds = 2 }}\n')
    assert main(["check", str(path)]) == EXIT_OK, capsys.readouterr()
    assert scanned == [len(path.read_text()), len(claims.read_text())]
    scanned.clear()
    with pytest.raises(ClaimsFileError, match="colour"):
        load_claims(claims_file(tmp_path, total="tolerance = 0\n", cnn='colour = "red"\n'))
    assert len(scanned) == 1


# A generated TOML text: (lines, {key path: line}). Names in tables and arrays are drawn from separate pools
# (TOML forbids a table name twice; an array of tables repeats).
BARE = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
QUOTED = st.sampled_from(['"a b"', '"x.y"', "'lit eral'", '"q\\"uote"'])
QUOTED_NAME = {'"a b"': "a b", '"x.y"': "x.y", "'lit eral'": "lit eral", '"q\\"uote"': 'q"uote'}
TRAPS = [
    '"k = 1"', "'[[claims]]'", '"# not a comment"', '"brace { and [ bracket"',
    '"""\nfake = 1\n[[claims]]\n"""', '"""a\\""""', '"""a\\"""b"""', "'''\nfake = 2\n[t]\n'''", '"""ends with quotes"""""',
    '[\n  1, # tail = 3\n  2,\n]', '[ "a]", \'b[\' ]', '1979-05-27 07:32:00', '-0.5e3', "true",
]


@st.composite
def toml_texts(draw) -> tuple[str, dict[tuple, int]]:
    lines: list[str] = []
    where: dict[tuple, int] = {}

    def key(pool_used: set[str]) -> tuple[str, str]:
        text = draw(st.one_of(BARE, QUOTED).filter(lambda k: QUOTED_NAME.get(k, k) not in pool_used))
        pool_used.add(QUOTED_NAME.get(text, text))
        return text, QUOTED_NAME.get(text, text)

    def body(path: tuple, used: set[str]) -> None:
        for _ in range(draw(st.integers(0, 4))):
            if draw(st.booleans()):
                lines.append(draw(st.sampled_from(["# x = 1", "# [[claims]]", "", "   # [t] 'q'"])))
            text, name = key(used)
            shape = draw(st.sampled_from(["trap", "inline", "rows"]))
            if shape == "trap":
                value = draw(st.sampled_from(TRAPS))
                where[path + (name,)] = len(lines) + 1
                first, *rest = value.split("\n")
                lines.append(f"{text} = {first}  # c = 1" if not rest else f"{text} = {first}")
                lines.extend(rest)
            elif shape == "inline":
                where[path + (name,)] = where[path + (name, "in")] = len(lines) + 1
                lines.append(f'{text} = {{ in = "}}", q = """a\\"""""", p = """a\\"""}}""", r = \'\'\'}}\'\'\'\'\', '
                             f'deep = {{ x = [1, {{ y = 2 }}] }} }}')
                where[path + (name, "deep", "x", 1, "y")] = len(lines)
            else:
                where[path + (name,)] = len(lines) + 1
                lines.append(f"{text} = [")
                for index in range(draw(st.integers(0, 3))):
                    lines.append(f'  {{ params = "p{index}", rmse = 1 }},  # score = 2')
                    where[path + (name, index, "rmse")] = len(lines)
                lines.append("]")

    arrays: dict[str, int] = {}
    top: set[str] = {"claims", "model"}  # the arrays of tables below
    body((), top)
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            name = draw(BARE.filter(lambda n: n not in top))
            top.add(name)
            lines.append(f"[ {name} ]")
            where[(name,)] = len(lines)
            body((name,), set())
        else:
            name = draw(st.sampled_from(["claims", "model"]))
            index = arrays[name] = arrays.get(name, -1) + 1
            lines.append(f"[[{name}]]   # entry")
            where[(name, index)] = len(lines)
            body((name, index), set())
    return "\n".join(lines) + "\n", where


@given(toml_texts())
def test_line_index_finds_every_key_where_it_was_written(generated):
    from archaudit.tomlfile import KeyLines

    text, where = generated
    tomllib.loads(text)  # the generator writes TOML
    index = KeyLines(text)
    assert {path: index.line(*path) for path in where} == where, text


def test_line_index_falls_back_to_the_enclosing_key():
    from archaudit.tomlfile import KeyLines

    index = KeyLines('top = 1\n\n[[claims]]\nexpect = { holds = 3 }\n')
    assert (index.line("claims", 0, "expect", "holds"), index.line("claims", 0, "absent"),
            index.line("claims", 5), index.line("nowhere")) == (4, 3, 3, 0)
    assert index.line("top") == 1
