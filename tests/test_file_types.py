"""Wrong types, unbounded files and circular claims in claims files and budgets files, and in the budget API.

Every refusal of a file goes through the command line (``main(argv) -> int``): exit 2 and exactly one stderr
line that names the file, the line of the offending key, the claim or entry, and the value as written. The
type of every key is declared once (``loader.KEY_TYPES``, ``budgets_file.MODEL_TYPES``); the tables below hold
a wrong value for every key declared there. Oracles: the lines are those of the text the test wrote (a plain
search, :func:`line_of`); each claim template loads as written, so a refusal is the one key's doing.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
from pathlib import Path

import pytest
import torch
from cli_run import budgets_file, refused
from torch import nn

import archaudit
from archaudit.budgets.check import BudgetError, check_budget
from archaudit.inputs import InputSpec
from archaudit.claims import load_claims
from archaudit.claims.records import KINDS
from archaudit.cli import EXIT_OK, main
from archaudit.errors import ArchauditError

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / "tests" / "fixtures" / "targets.py"  # small: 17*8 + 8 + 8*3 + 3 = 171 parameters

BASE = """\
[document]
id = "types"
title = "Fixture: wrong types"
source = "tests/test_file_types.py"
model = "amnl-compact"
{document}
[components]
cnn = ["cnn"]
{components}
[[claims]]
id = "total"
where = "fixture"
printed = "960,964"
kind = "total"

[[claims]]
id = "cnn"
where = "fixture"
printed = "53,184"
kind = "component"
component = "cnn"
{tail}"""
"""Two claims that hold on amnl-compact (960,964 parameters; cnn 53,184: test_claims.py), then the case's own."""

REQUIRED = {
    # each kind's required keys, with values that load (test_each_kinds_template_loads)
    "total": {"printed": '"960,964"'},
    "trainable": {"printed": '"960,964"'},
    "component": {"printed": '"53,184"', "component": '"cnn"'},
    "percentage": {"printed": '"5.5%"', "component": '"cnn"'},
    "sum": {"printed": '"1,014,148"', "terms": '["total", "cnn"]'},
    "arithmetic": {"printed": '"4"', "expression": '"2 + 2"'},
    "formula": {"layer": '"Linear"', "expression": '"in_features * out_features + out_features"'},
    "scaling": {"printed": '"2x"', "component": '"cnn"', "hyperparameter": '"lstm_hidden"', "from": "64",
                "to": "128"},
    "size": {"printed": '"3.8 MB"', "dtype": '"float32"'},
    "derived": {"printed": '"960,964"', "expression": '"total"'},
    "ranking": {"label": '"total"', "among": '["total", "cnn"]'},
    "between": {"label": '"cnn"', "above": '["total"]'},
    "score_formula": {"rows": '[{ params = "total", rmse = "cnn", score = "total" }]', "formulas": '["c / params"]'},
    "score": {"printed": '"1"', "params": '"total"', "rmse": '"cnn"'},
    "baseline": {"printed": '"45,372"', "model": '"dcnn"'},
    "reported": {"printed": '"12.5"'},
    "throughput": {"printed": '"1,000"'},
    "attribute": {"printed": '"128"', "module": '"lstm"', "attribute": '"hidden_size"'},
    "macs": {"printed": '"27.6M"'},
    "flops": {"printed": '"55.3M"'},
    "frozen": {"printed": '"0"'},
    "shared": {"printed": '"0"'},
    "count": {"printed": '"3"', "count_type": '"Conv1d"'},
    "leaf_only": {"printed": '"763,588"'},
    "cross": {"printed": '"960,964"', "other": '"all_hold.toml:total"'},
}


def claim(kind: str, line: str = "", claim_id: str = "x") -> str:
    """A claim of ``kind`` with its required keys, ``line`` (``key = value``) replacing or following them."""
    key = line.split("=")[0].strip()
    keys = {k: v for k, v in {"where": '"fixture"', **REQUIRED[kind]}.items() if k != key}
    body = "".join(f"{k} = {v}\n" for k, v in keys.items())
    return f'\n[[claims]]\nid = "{claim_id}"\nkind = "{kind}"\n{body}{line}\n'


def claims_file(tmp_path: Path, *, document: str = "", components: str = "", tail: str = "") -> Path:
    path = tmp_path / "claims.toml"
    path.write_text(BASE.format(document=document, components=components, tail=tail), encoding="utf-8")
    return path




def line_of(path: Path, text: str) -> int:
    """1-based number of the last line of ``path`` that reads exactly ``text`` (stripped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return max(i for i, line in enumerate(lines, 1) if line.strip() == text)




# ============================================================================================== claims files


def test_the_base_file_holds(tmp_path, capsys):
    """The base of every case below is a good file: whatever is refused below is refused for the case's key."""
    assert main(["claims", str(claims_file(tmp_path))]) == EXIT_OK, capsys.readouterr()


@pytest.mark.parametrize("kind", KINDS)
def test_each_kinds_template_loads(tmp_path, kind):
    document = load_claims(claims_file(tmp_path, tail=claim(kind)))
    assert document.claims[-1].kind == kind


CLAIM_CASES = [
    # (kind, the offending line, what the message says of it)
    ("total", "where = 5", "where = 5 must be a string"),
    ("total", "note = 5", "note = 5 must be a string"),
    ("total", "printed = 5", "printed = 5 must be a string"),
    ("total", "value = 5", "value = 5 must be a string"),
    ("total", "tolerance = nan", "tolerance = nan must be a finite number >= 0"),
    ("total", "tolerance = inf", "tolerance = inf must be a finite number >= 0"),  # admits any count
    ("total", "tolerance = -1", "tolerance = -1 must be a finite number >= 0"),
    ("total", "tolerance = true", "tolerance = True must be a finite number >= 0"),  # not read as 1
    ("total", 'tolerance = "0.5"', "tolerance = '0.5' must be a finite number >= 0"),
    ("total", "implied = 5", "implied = 5 must be a non-empty string (an arithmetic expression)"),
    ("total", 'implied = ""', "implied = '' must be a non-empty string"),  # was skipped: checked nothing
    ("total", "family = 5", "family = 5 must be a model family's name or a non-empty list of them"),
    ("total", "family = []", "family = [] must be a model family's name or a non-empty list of them"),
    ("total", "family = [1]", "family = [1] must be a model family's name or a non-empty list of them"),
    ("total", 'family = ""', "family = '' must be a model family's name"),  # was read as no family: no search
    ("component", 'component = ["cnn"]', "component = ['cnn'] must be a string"),
    ("component", 'components = "cnn"', "components = 'cnn' must be a non-empty list of strings"),
    ("component", "components = []", "components = [] must be a non-empty list of strings"),
    ("component", 'components = ["cnn", "lstm"]', "components = ['cnn', 'lstm'] names 'lstm', which is not "
                                                  "in [components] (known: cnn)"),
    ("percentage", 'components = "cnn"', "components = 'cnn' must be a non-empty list of strings"),
    ("arithmetic", "expression = 5", "expression = 5 must be a non-empty string (an arithmetic expression)"),
    ("derived", 'expression = " "', "expression = ' ' must be a non-empty string"),  # fell back to terms: exit 3
    ("arithmetic", "component = 5", "component = 5 must be a string"),
    ("sum", 'terms = "total"', "terms = 'total' must be a non-empty list of strings"),
    ("sum", "terms = []", "terms = [] must be a non-empty list of strings"),
    ("derived", 'candidates = "total"', "candidates = 'total' must be a non-empty list of expressions"),
    ("derived", "candidates = [1]", "candidates = [1] must be a non-empty list of expressions"),
    ("derived", 'candidates = ["total", ""]', "candidates = ['total', ''] must be a non-empty list of expressions"),
    ("formula", 'layer = ["Linear"]', "layer = ['Linear'] must be a string"),
    ("formula", "expression = 5", "expression = 5 must be a non-empty string"),
    ("scaling", "hyperparameter = 5", "hyperparameter = 5 must be a string"),
    ("scaling", "from = 0", "from = 0 must be a positive integer"),
    ("scaling", "from = 64.0", "from = 64.0 must be a positive integer"),
    ("scaling", 'to = "128"', "to = '128' must be a positive integer"),
    ("scaling", "to = true", "to = True must be a positive integer"),
    ("size", "dtype = 4", "dtype = 4 must be a string"),
    ("size", 'dtype = ["float32"]', "dtype = ['float32'] must be a string"),
    ("ranking", "label = 5", "label = 5 must be a string"),
    ("ranking", "among = []", "among = [] must be a non-empty list of strings"),
    ("ranking", "labels = 3", "labels = 3 must be a non-empty list of strings"),
    ("ranking", 'order = "sideways"', "order = 'sideways' must be 'max' or 'min'"),
    ("ranking", "order = 1", "order = 1 must be 'max' or 'min'"),
    ("ranking", "position = 0", "position = 0 must be a positive integer"),
    ("ranking", 'audited = "yes"', "audited = 'yes' must be true or false"),
    ("between", "below = []", "below = [] must be a non-empty list of strings"),
    ("between", "above = 3", "above = 3 must be a non-empty list of strings"),
    ("score_formula", "formulas = []", "formulas = [] must be a non-empty list of expressions"),
    ("score_formula", "rows = 5", "rows = 5 must be a non-empty list of tables { params = ID, rmse = ID, score = ID }"),
    ("score_formula", "rows = []", "rows = [] must be a non-empty list of tables"),
    ("score_formula", 'rows = ["total"]', "rows = ['total'] must be a non-empty list of tables"),
    ("score_formula", 'rows = [{ params = 1, rmse = "cnn", score = "total" }]', "rows #1: params = 1 must be a string"),
    ("score", "params = 5", "params = 5 must be a string"),
    ("score", "rmse = 5", "rmse = 5 must be a string"),
    ("score", "model = 5", "model = 5 must be a string"),
    ("baseline", 'model = ["dcnn"]', "model = ['dcnn'] must be a string"),
    ("reported", 'published = "12.5"', "published = '12.5' must be a finite number"),
    ("reported", "published = nan", "published = nan must be a finite number"),
    ("reported", "published = true", "published = True must be a finite number"),
    ("reported", "published_source = 5", "published_source = 5 must be a string"),
    ("reported", "reason = 5", "reason = 5 must be a string"),
    ("attribute", "module = 5", "module = 5 must be a string"),
    ("attribute", "attribute = 5", "attribute = 5 must be a string"),
    ("attribute", "count_type = 5", "count_type = 5 must be a string"),
    ("macs", "input = 5", "input = 5 must be an input shape such as '1x3x224x224'"),
    ("flops", "input = []", "input = [] must be an input shape such as '1x3x224x224'"),
    ("cross", "other = 5", "other = 5 must be another claims file and one of its claim ids"),
    ("cross", 'other = "x.toml"', "other = 'x.toml' must be another claims file and one of its claim ids"),
    # a value longer than the message shows is cut after 60 characters of its repr: "[" and 20 ones with the
    # ", " between them are 1 + 20 + 19 * 2 = 59, and the 20th comma makes 60
    ("total", "note = [" + ", ".join(["1"] * 40) + "]", "note = [" + ", ".join(["1"] * 20) + ",... must be a string"),
]


@pytest.mark.parametrize(("kind", "text", "fragment"), CLAIM_CASES, ids=[c[1][:30] for c in CLAIM_CASES])
def test_a_wrong_type_is_refused_with_file_line_claim_and_value(tmp_path, capsys, kind, text, fragment):
    path = claims_file(tmp_path, tail=claim(kind, text))
    err = refused(capsys, "claims", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, text)}: claim 'x' ({kind}): "), err
    assert fragment in err


@pytest.mark.parametrize(
    ("kind", "text", "fragment"),
    [
        ("ranking", 'among = ["total", "total", "cnn"]', "among names 'total' twice"),
        ("between", 'above = ["total", "total"]', "above names 'total' twice"),
        ("score_formula", 'formulas = ["' + "-" * 100_000 + 'c"]', "a formula of 100,001 characters: at most 2,000"),
        ("score_formula", 'formulas = ["(c - rmse"]', "formula '(c - rmse' is not an expression"),
    ],
    ids=["ranking repeated", "between repeated", "formula too long", "formula unparsed"],
)
def test_what_a_claim_lists_is_checked_before_it_is_used(tmp_path, capsys, kind, text, fragment):
    """A row listed twice would be ranked against itself (an IndexError past the loader); a formula is bounded and
    parsed at load, so a long one cannot exhaust memory and a broken one is not called 'without c'."""
    path = claims_file(tmp_path, tail=claim(kind, text))
    err = refused(capsys, "claims", str(path))
    assert f"claim 'x' ({kind}): " in err and fragment in err, err


def test_every_declared_key_has_a_case_and_every_allowed_key_a_type():
    """The table above is complete: a key declared without a wrong-type case here is untested."""
    from archaudit.claims.loader import CLAIM_KEYS, KEY_TYPES

    allowed = {key for spec in CLAIM_KEYS.values() for key in spec.allowed}
    assert set(KEY_TYPES) == allowed
    tested = {text.split("=")[0].strip() for _, text, _ in CLAIM_CASES}
    assert allowed - tested == {"id", "kind"}  # refused by their own checks (test_claims.py, test_file_keys.py)


DOCUMENT_CASES = [
    # (where, the offending line, what the message says of it)
    ("document", 'families = "x"', "[document]: families = 'x' must be a table of claim kinds and model families"),
    ("document", "families = { total = 5 }",
     "[document] families: total = 5 must be a model family's name or a non-empty list of them"),
    ("document", "families = { trainable = [] }",
     "[document] families: trainable = [] must be a model family's name or a non-empty list of them"),
    ("components", 'lstm = "lstm"', "[components]: lstm = 'lstm' must be a non-empty list of module paths"),
    ("components", "lstm = []", "[components]: lstm = [] must be a non-empty list of module paths"),
    ("components", "lstm = [1]", "[components]: lstm = [1] must be a non-empty list of module paths"),
    ("components", "lstm = { path = \"lstm\" }", "[components]: lstm = {'path': 'lstm'} must be a non-empty list"),
]


@pytest.mark.parametrize(("where", "text", "fragment"), DOCUMENT_CASES, ids=[c[1] for c in DOCUMENT_CASES])
def test_document_and_components_types(tmp_path, capsys, where, text, fragment):
    path = claims_file(tmp_path, **{where: text})
    err = refused(capsys, "claims", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, text)}: "), err
    assert fragment in err


@pytest.mark.parametrize(("tail", "marker", "fragment"), [
    # a derived figure that comes from itself always "holds": it checks nothing
    (claim("derived", 'expression = "d"', "d"), 'id = "d"', "claim 'd' (derived): derived from itself: d -> d"),
    (claim("derived", 'expression = "d2 + 1"', "d1") + claim("derived", 'expression = "d1 - 1"', "d2"),
     'id = "d1"', "claim 'd1' (derived): derived from itself: d1 -> d2 -> d1"),
    (claim("derived", 'candidates = ["total", "d2"]', "d1") + claim("sum", 'terms = ["total", "d1"]', "d2"),
     'id = "d1"', "claim 'd1' (derived): derived from itself: d1 -> d2 -> d1"),
    (claim("sum", 'candidates = ["x"]'), 'id = "x"', "claim 'x' (sum): derived from itself: x -> x"),
    (claim("size", 'implied = "x * 4 / 1e6"'), 'id = "x"', "claim 'x' (size): implied = 'x * 4 / 1e6' names the "
                                                           "claim itself"),
])
def test_a_figure_derived_from_itself_is_refused(tmp_path, capsys, tail, marker, fragment):
    path = claims_file(tmp_path, tail=tail)
    err = refused(capsys, "claims", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, marker)}: "), err
    assert fragment in err


@pytest.mark.parametrize(("tail", "fragment"), [
    # the ranking's own id has no figure: the check would look it up (KeyError, exit 3)
    (claim("ranking", 'among = ["total", "x"]'), "among refers to 'x', a claim with no figure"),
    (claim("ranking", claim_id="rk") + claim("score", 'rmse = "rk"'), "rmse refers to 'rk', a claim with no figure"),
    (claim("ranking", 'label = "nowhere"'), "label = 'nowhere' must be one of among (total, cnn)"),
    # neither key: getattr(module, None) (TypeError, exit 3)
    (claim("attribute").replace('attribute = "hidden_size"\n', ""), "needs count_type or attribute"),
    (claim("attribute", 'count_type = "LSTM"'), "gives both count_type and attribute"),
    # read only with `component`: the model's side of the claim was never checked
    (claim("arithmetic", 'components = ["cnn"]'), "components is read only with component"),
])
def test_what_a_check_would_trip_on_is_refused_at_load(tmp_path, capsys, tail, fragment):
    path = claims_file(tmp_path, tail=tail)
    err = refused(capsys, "claims", str(path))
    line = line_of(path, 'id = "x"')
    assert err.startswith(f"archaudit: {path}:{line}: claim 'x' ("), err
    assert fragment in err


def test_a_reference_with_no_architecture_is_bad_input(tmp_path, capsys):
    path = claims_file(tmp_path).read_text().replace('model = "amnl-compact"', 'model = "dkamformer"')
    (tmp_path / "claims.toml").write_text(path)
    err = refused(capsys, "claims", str(tmp_path / "claims.toml"))
    assert err.startswith(f"archaudit: {tmp_path / 'claims.toml'}: [document] model = 'dkamformer' "), err
    assert "has no public architecture" in err


# ============================================================================================== bounds


@contextlib.contextmanager
def memory_bound(extra: int = 2 << 30):
    """At most ``extra`` more bytes of address space while the block runs: a file read to its end (/dev/zero)
    fails with MemoryError (exit 3) instead of taking the machine's memory."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("command", ["claims", "check", "check [[claims]]"])
def test_a_link_to_an_endless_device_is_refused_unread(tmp_path, capsys, command):
    link = tmp_path / "endless.toml"
    link.symlink_to("/dev/zero")
    path = budgets_file(tmp_path, '[[claims]]\nfile = "endless.toml"\n') if "[[claims]]" in command else link
    with memory_bound():
        err = refused(capsys, command.split()[0], str(path))
    prefix = f"archaudit: {path}:2: [[claims]] #1 (endless.toml): " if path != link else "archaudit: "
    assert err.startswith(f"{prefix}{link}: "), err  # a claims file named by a budgets file: both are named
    assert "is not a regular file (a character device)" in err and "at most 1,048,576 bytes" in err


def test_a_directory_is_refused(tmp_path, capsys):
    err = refused(capsys, "claims", str(tmp_path))
    assert err == (f"archaudit: {tmp_path}: is not a regular file (a directory); a claims file is a regular file "
                   "of at most 1,048,576 bytes (1 MiB)")


@pytest.mark.parametrize("command", ["claims", "check"])
def test_a_file_over_the_bound_is_refused_and_one_at_it_is_read(tmp_path, capsys, command):
    bound = 1 << 20  # tomlfile.MAX_FILE_BYTES, 1 MiB = 1,048,576 bytes (test_the_bounds_are_the_stated_ones)
    text = claims_file(tmp_path).read_text(encoding="utf-8") if command == "claims" else \
        f'[[model]]\ntarget = "{TARGETS}:small"\nparams = 171\n'
    path = tmp_path / "padded.toml"
    padding = bound - len(text.encode()) - 2  # "#" and "\n" make it exactly the bound
    path.write_text(text + "#" + "x" * padding + "\n", encoding="utf-8")
    assert path.stat().st_size == bound
    assert main([command, str(path)]) == EXIT_OK, capsys.readouterr().err
    capsys.readouterr()
    path.write_text(text + "#" + "x" * (padding + 1) + "\n", encoding="utf-8")  # one byte over
    err = refused(capsys, command, str(path))
    assert err == f"archaudit: {path}: is 1,048,577 bytes; a {'claims' if command == 'claims' else 'budgets'} " \
                  "file has at most 1,048,576 bytes (1 MiB)"


@pytest.mark.parametrize("command", ["claims", "check"])
def test_arrays_nested_past_what_the_reader_can_follow_are_refused(tmp_path, capsys, command):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")  # 200 KB: under the size bound
    err = refused(capsys, command, str(path))
    assert err.startswith(f"archaudit: {path}: ") and "nested too deeply" in err, err


def test_the_bounds_are_the_stated_ones():
    from archaudit import tomlfile
    from archaudit.claims import loader

    assert (tomlfile.MAX_FILE_BYTES, tomlfile.MAX_NESTING, loader.MAX_CLAIMS) == (1 << 20, 16, 10_000)


@pytest.mark.parametrize("command", ["claims", "check"])
def test_an_integer_too_long_for_python_to_read_is_refused(tmp_path, capsys, command):
    # 5,001 digits: past the 4,300 that int() reads, so tomllib raises ValueError (not TOMLDecodeError)
    path = tmp_path / "long.toml"
    path.write_text("x = 1" + "0" * 5000 + "\n")
    err = refused(capsys, command, str(path))
    assert err.startswith(f"archaudit: {path}: not valid TOML here: Exceeds the limit (4300 digits)"), err


def test_nesting_is_bounded_where_the_reader_can_follow_it(tmp_path, capsys):
    deepest = 16  # tomlfile.MAX_NESTING
    path = claims_file(tmp_path, tail=claim("total", "note = " + "[" * deepest + "]" * deepest))
    # the claims array, its table, then note's arrays: 2 + 16 levels
    err = refused(capsys, "claims", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, 'note = ' + '[' * deepest + ']' * deepest)}: ")
    assert f"arrays and tables nest {deepest + 2} levels deep; at most {deepest}" in err, err


def test_the_number_of_claims_is_bounded(tmp_path, capsys):
    most = 10_000  # loader.MAX_CLAIMS
    rows = "".join(f'  {{ id = "c{i}", kind = "total", where = "", printed = "1" }},\n' for i in range(most + 1))
    tail = '\n[document]\nid = "d"\ntitle = "t"\nsource = "s"\nmodel = "amnl-compact"\n'
    path = tmp_path / "many.toml"
    path.write_text("claims = [\n" + rows + "]\n" + tail)  # 10,001 claims of 60 bytes: 600 KB, under the bound
    err = refused(capsys, "claims", str(path))
    # claims = [ is line 1 and claim i is on line 2 + i: the 10,001st (i = 10,000) on line 10,002
    assert err == f"archaudit: {path}:10002: 10,001 claims; a claims file has at most 10,000"


# ============================================================================================== budgets files

SMALL = f'[[model]]\ntarget = "{TARGETS}:small"\n'


@pytest.mark.parametrize("text", ['input = "2x17"', "input = [2, 17]", "input = [[2, 17]]", 'input = ["2x17"]'])
def test_every_form_of_input_still_measures(tmp_path, capsys, text):
    # small on 2x17: (17*8 + 8*3) MACs per sample x 2 samples = 160 x 2 = 320
    path = budgets_file(tmp_path, SMALL + f"{text}\nmacs = [320, 320]\nallow_unsupported = false\n")
    assert main(["check", str(path)]) == EXIT_OK, capsys.readouterr()


BUDGET_CASES = [
    # (the offending line, what the message says of it)
    ('allow_unsupported = "false"', "allow_unsupported = 'false' must be a boolean (true or false)"),  # was true
    ("allow_unsupported = 0", "allow_unsupported = 0 must be a boolean (true or false)"),
    ("input = [0, 17]", "input = [0, 17] must have every dimension a positive integer; 0 is not"),  # 0 MACs
    ("input = [true, 17]", "input = [True, 17] must have every dimension a positive integer; True is not"),
    ("input = [1.5, 17]", "input = [1.5, 17] must have every dimension a positive integer; 1.5 is not"),
    ("input = [[1, 17], [1, 0]]", "input = [[1, 17], [1, 0]] must have every dimension a positive integer; 0 is not"),
    ('input = "0x17"', "input = '0x17' is not a shape"),  # parse_input's own bounds, its message in brackets
    ("input = []", "input = [] must be a shape"),
    ("input = [[]]", "input = [[]] must have at least one dimension"),
    ("input = 5", "input = 5 must be a shape"),
    ("params = [nan, 5e6]", "params = [nan, 5000000.0] must be a number or a (min, max) pair, each finite and "
                            "non-negative"),
    ("params = 1e400", "params = inf must be a number or a (min, max) pair, each finite and non-negative"),
    ("params = 1" + "0" * 400, "params = an integer of about 401 digits must be a number"),  # float() overflows
    ("macs = [0, inf]", "macs = [0, inf] must be a number or a (min, max) pair"),
    ("size_mb = -0.5", "size_mb = -0.5 must be a number or a (min, max) pair, each finite and non-negative"),
    ("trainable = true", "trainable = True must be a number or a (min, max) pair"),
    ('flops = "1M"', "flops = '1M' must be a number or a (min, max) pair"),
    ("params = [1, 2, 3]", "params = [1, 2, 3] must be a number or a (min, max) pair"),
    ("params = [200, 100]", "params = [200, 100] must be a (min, max) pair with min <= max: minimum 200 is above "
                            "maximum 100"),
    ("name = 5", "name = 5 must be a string"),
    ("memory_mb = -1", "memory_mb = -1 must be a number or a (min, max) pair, each finite and non-negative"),
    ('train_memory_mb = "2 GB"', "train_memory_mb = '2 GB' must be a number or a (min, max) pair"),
    ('optimizer = "lion"', "optimizer = 'lion' must be one of sgd, momentum, adam, adamw"),
    ('precision = "fp8"', "precision = 'fp8' must be one of fp32, bf16-mixed, fp16-mixed"),
    ("baseline = 5", "baseline = 5 must be a string"),
    ("max_growth_pct = -5", "max_growth_pct = -5 must be"),
]


@pytest.mark.parametrize(("text", "fragment"), BUDGET_CASES, ids=[c[0][:30] for c in BUDGET_CASES])
def test_a_wrong_budget_type_is_refused_with_file_line_and_entry(tmp_path, capsys, text, fragment):
    limit = "" if text.split("=")[0].strip() in ("params", "macs", "size_mb", "trainable", "flops", "memory_mb",
                                                               "train_memory_mb") else \
        "params = 200\n"
    path = budgets_file(tmp_path, SMALL + limit + text + "\n")
    err = refused(capsys, "check", str(path))
    assert err.startswith(f"archaudit: {path}:{line_of(path, text)}: [[model]] #1 ({TARGETS}:small): "), err
    assert fragment in err


def test_every_budgets_key_has_a_case():
    from archaudit.budgets.file import MODEL_KEYS, MODEL_TYPES

    assert tuple(MODEL_TYPES) == MODEL_KEYS
    tested = {text.split("=")[0].strip() for text, _ in BUDGET_CASES}
    assert set(MODEL_KEYS) - tested == {"target"}  # "needs target": test_budgets.py


@pytest.mark.parametrize("text", ["", "input = [1, 17]\n", "allow_unsupported = true\n", 'name = "small"\n'])
def test_an_entry_with_no_limit_is_refused_before_anything_is_built(tmp_path, capsys, text):
    # the first entry's target cannot be built: the second entry is refused before it is tried
    path = budgets_file(tmp_path, '[[model]]\ntarget = "no-such-model"\nparams = 1\n\n' + SMALL + text)
    err = refused(capsys, "check", str(path))
    assert err == (f"archaudit: {path}:5: [[model]] #2 ({TARGETS}:small): checks nothing: give at least one "
                   "limit (params, trainable, macs, flops, size_mb, memory_mb, train_memory_mb) or a baseline with "
                   "max_growth_pct")


# ============================================================================================== assert_budget


def small() -> nn.Module:
    # 16*32 + 32 = 544 and 32*4 + 4 = 132: 676 parameters; MACs per sample 16*32 + 32*4 = 640
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.mark.parametrize("shape", ["1x16", (1, 16), [1, 16], torch.Size([1, 16]), InputSpec((1, 16)),
                                   torch.zeros(1, 16), [(1, 16)]], ids=repr)
def test_every_form_of_input_measures_640_macs(shape):
    assert archaudit.assert_budget(small(), macs=(640, 640), input=shape).ok


API_CASES = [
    ({"params": 700, "allow_unsupported": "false"}, "allow_unsupported = 'false' must be a boolean"),
    ({"params": 700, "allow_unsupported": None}, "allow_unsupported = None must be a boolean"),
    ({"macs": 1, "input": (0, 16)}, "input = (0, 16) must have every dimension a positive integer; 0 is not"),
    ({"macs": 1, "input": (True, 16)}, "input = (True, 16) must have every dimension a positive integer; True is not"),
    ({"macs": 1, "input": [(1, 16), (1, 0)]}, "0 is not"),
    ({"macs": 1, "input": InputSpec((0, 16))}, "input = InputSpec(shape=(0, 16)"),
    ({"macs": 1, "input": torch.zeros(0, 16)}, "must have every dimension a positive integer; 0 is not"),
    ({"macs": 1, "input": (2**31, 16)}, "a dimension is larger than 2,147,483,647"),  # capture.MAX_DIMENSION
    ({"macs": 1, "input": "0x16"}, "every dimension must be at least 1"),
    ({"macs": 1, "input": 16}, "input = 16 must be a shape"),
    ({"params": (float("nan"), 5e6)}, "params = (nan, 5000000.0) must be a number or a (min, max) pair"),
    ({"params": float("inf")}, "params = inf must be a number or a (min, max) pair, each finite and non-negative"),
    ({"params": 10**400}, "must be a number or a (min, max) pair, each finite and non-negative"),  # float() overflows
    ({"params": 10**5000}, "params = an integer of about 5,001 digits must be a number"),  # past repr()'s 4,300 digits
    ({"macs": 1, "input": (1, 10**5000)}, "input = a tuple holding an integer too long to show is not a shape: a "
                                          "dimension is larger than 2,147,483,647"),
    ({"macs": (0, float("inf")), "input": "1x16"}, "macs = (0, inf) must be a number or a (min, max) pair"),
    ({"params": True}, "params = True must be a number or a (min, max) pair"),
    ({"params": 700, "name": 5}, "name = 5 must be a string"),
]


@pytest.mark.parametrize(("kwargs", "fragment"), API_CASES, ids=[f"{n}-{','.join(c[0])}" for n, c in enumerate(API_CASES)])
def test_assert_budget_refuses_what_would_check_nothing(kwargs, fragment):
    with pytest.raises(ArchauditError) as caught:
        archaudit.assert_budget(small(), **kwargs)
    assert isinstance(caught.value, ValueError) and not isinstance(caught.value, AssertionError)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_check_budget_refuses_the_same():
    with pytest.raises(BudgetError, match="allow_unsupported = 'false'"):
        check_budget(small(), params=700, allow_unsupported="false")


# ============================================================================================== the marker


def test_the_marker_refuses_what_would_check_nothing(pytester):
    pytester.makepyfile(textwrap.dedent(
        """
        import pytest
        from torch import nn

        @pytest.fixture
        def model():
            return nn.Linear(100, 100)  # 100*100 + 100 = 10,100 parameters; 100*100 = 10,000 MACs per sample

        @pytest.mark.budget(params=20_000, macs=(10_000, 10_000), input=(1, 100), allow_unsupported=False)
        def test_ok(model):
            pass

        @pytest.mark.budget(params=20_000, allow_unsupported="false")
        def test_flag(model):
            pass

        @pytest.mark.budget(macs=1, input=(0, 100))
        def test_zero(model):
            pass

        @pytest.mark.budget(1_000, params=20_000)
        def test_positional(model):
            pass

        @pytest.mark.budget(parms=20_000)
        def test_misspelt(model):
            pass
        """
    ))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")  # torch is imported already: no new process
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1 and outcomes.get("failed") == 4, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines([
        "*test_flag: @pytest.mark.budget: allow_unsupported = 'false' must be a boolean*",
        "*test_zero: @pytest.mark.budget: input = (0, 100) must have every dimension a positive integer; 0 is not*",
        "*test_positional: @pytest.mark.budget takes keywords only (params=..., macs=...), got (1000,)*",
        "*test_misspelt: @pytest.mark.budget: unknown key(s) parms (did you mean params?)*",
    ], consecutive=False)


def test_a_claims_gate_built_by_hand_never_passes_without_checking():
    from archaudit.budgets.file import ClaimsGate

    counts = {"holds": 3}
    assert ClaimsGate("f.toml", "all hold", counts, ()).ok
    assert not ClaimsGate("f.toml", "all hold", counts, ("x",)).ok
    assert not ClaimsGate("f.toml", "anything else", counts, ()).ok  # not ALL_HOLD: fails, never passes
    assert not ClaimsGate("f.toml", {}, counts, ()).ok  # an empty table checks nothing
    assert ClaimsGate("f.toml", {"holds": 3}, counts, ()).ok
