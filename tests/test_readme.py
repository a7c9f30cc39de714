"""The README's promises, each run or checked.

Every fenced block of README.md goes through :func:`test_every_block_is_run_or_checked`, which picks its checker:

* ```python: executed statement by statement, in one namespace per README section (a block may use the names an
  earlier block of its section defined; the earlier blocks are run first). A bare expression whose comment starts
  with a literal (``audit.total  # 2_362_368 = ...``) must evaluate to that literal. A ```text block right after
  it (prose between, no other block) is its output: its stdout, or, when the prose says it "raises `X`", the
  message of the ``X`` it must raise, compared exactly (nothing in them varies from run to run).
  A block that defines ``test_`` functions is a test file: it is run by pytest (in-process, through pytester)
  beside the example project the prose names, and every test must pass.
  A block with ``...`` placeholders is a sketch: its assignments run, and its bare calls (which would register
  rules or need the reader's own model) are bound against the real signatures instead of being called.
* ```bash: each command (lines split at ``&&``): ``archaudit ...`` runs in-process through
  ``archaudit.cli.main(argv)`` and must exit 0 (or the code its comment states); ``python -m venv``, activating,
  ``pip install`` and ``python -m pytest`` cannot run in a test, so each must be a command ``.ci/run`` runs on a
  fresh machine (after :func:`readme_blocks.normalised`: the venv's directory and pip's ``-q`` aside).
* ```yaml: the GitHub Actions job, read by the tiny parser of ``readme_blocks`` (PyYAML is no declared test
  dependency): its structure is checked, and each ``run:`` is a command as in a bash block.
* ```toml: a budgets file is read by archaudit's own reader, which refuses any key or value it does not know
  before it builds a model; an entry-point table must name archaudit's plugin group.
* the command-line synopsis: every command, option, choice and repeatable flag it shows is the parser's, and it
  shows every one the parser has.

A block that none of these recognises fails, naming its line: a new snippet never goes unchecked. The only blocks
exempt are in :data:`ILLUSTRATIONS`, each with its reason.

The figures: every figure of speed or scale in the README's prose (outside the Python API section) must be in
the generated file (``reports/*.md``) its paragraph names, and so must every count of a paragraph that names one;
the cross-tool table and the reference-model table must be the generated reports' own figures.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import re
import shlex
import shutil
import sys
import tokenize
import tomllib
from collections.abc import Callable

import pytest
from cli_run import run as run_cli
from readme_blocks import (
    COUNT,
    FIGURE,
    GENERATED,
    README,
    ROOT,
    Block,
    Scalar,
    ci_commands,
    fenced_blocks,
    figure_in,
    first_table_after,
    normalised,
    paragraphs,
    parse_yaml,
    split_commands,
    strip_comment,
    venvs,
)

TEXT = README.read_text(encoding="utf-8")
BLOCKS = fenced_blocks(TEXT)

# Blocks that only illustrate, keyed by the start of their first line: nothing in them can run or be checked
# against the code beyond what other tests do.
ILLUSTRATIONS = {
    # the Architecture section's data-flow diagram: boxes and arrows naming modules (each module's existence is
    # the import of the package itself)
    "TARGET string / nn.Module + inputs": "a diagram",
}


def _output_of(block: Block) -> Block | None:
    """The ```text block that shows ``block``'s output: the next block, in the same section, of language text."""
    i = BLOCKS.index(block)
    if i + 1 < len(BLOCKS):
        nxt = BLOCKS[i + 1]
        if nxt.lang == "text" and nxt.section == block.section:
            return nxt
    return None


def _outputs() -> dict[int, Block]:
    """Output blocks by line, with the block whose output each is."""
    found = {}
    for block in BLOCKS:
        out = _output_of(block)
        if out is not None and block.lang in {"python", "bash"}:
            found[out.line] = block
    return found


# --- python ------------------------------------------------------------------------------------------------------

_LITERAL_COMMENT = re.compile(r"""^#\s*(?P<literal>'[^']*'|"[^"]*"|-?[\d_]+(?:\.\d+)?)(?=\s*(?:$|[:=,;(]))""")


def _comments(source: str) -> dict[int, str]:
    """The comment ending each line of ``source``, by 1-based line."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string
    return found


def _statements(block: Block) -> list[ast.stmt]:
    """The block's statements, numbered by their README lines (so that a traceback names the README's line)."""
    tree = ast.parse(block.text, filename="README.md")
    ast.increment_lineno(tree, block.line)
    return tree.body


def _fail(statement: ast.stmt, message: str) -> None:
    pytest.fail(f"README.md:{statement.lineno}: {message}", pytrace=False)


def _exec(statement: ast.stmt, namespace: dict) -> None:
    exec(compile(ast.Module(body=[statement], type_ignores=[]), "README.md", "exec"), namespace)


def _eval(node: ast.expr, namespace: dict) -> object:
    return eval(compile(ast.Expression(node), "README.md", "eval"), namespace)


def _run_python(block: Block, namespace: dict) -> None:
    """Execute ``block`` statement by statement in ``namespace``, checking the literals its comments promise."""
    comments = _comments(block.text)
    for statement in _statements(block):
        comment = comments.get((statement.end_lineno or statement.lineno) - block.line, "")
        promised = _LITERAL_COMMENT.match(comment)
        try:
            if isinstance(statement, ast.Expr) and promised:
                value = _eval(statement.value, namespace)
                expected = ast.literal_eval(promised["literal"])
                if value != expected:
                    _fail(statement, f"{ast.unparse(statement.value)} is {value!r}, the README says {expected!r}")
            else:
                _exec(statement, namespace)
        except Exception as exc:
            exc.add_note(f"README.md:{statement.lineno}: {ast.unparse(statement)}")
            raise


# Each section's namespace, with the lines of the blocks run in it so far (in README order).
_SECTIONS: dict[str, tuple[dict, list[int]]] = {}


def _section_namespace(block: Block) -> dict:
    """The namespace of ``block``'s section, with every earlier plain python block of the section run in it. Each
    block is run once per process where the tests run in README order; a block run on its own (a pytest-xdist
    worker, ``-k``) first runs the earlier blocks of its section."""
    namespace, done = _SECTIONS.get(block.section, ({}, [-1]))
    if block.line in done or max(done) > block.line:  # out of order: start the section afresh
        namespace, done = {}, [-1]
    _SECTIONS[block.section] = (namespace, done)
    namespace.setdefault("__name__", "readme")
    for earlier in BLOCKS:
        if earlier.line >= block.line:
            break
        same_section = earlier.lang == "python" and earlier.section == block.section
        if same_section and _python_kind(earlier) == "run" and earlier.line not in done:
            with contextlib.redirect_stdout(io.StringIO()):
                _run_python(earlier, namespace)
            done.append(earlier.line)
    done.append(block.line)
    return namespace


def _python_kind(block: Block) -> str:
    tree = ast.parse(block.text)
    if any(isinstance(n, ast.FunctionDef) and n.name.startswith("test_") for n in tree.body):
        return "test file"
    if any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(tree)):
        return "sketch"
    return "run"


def check_python(block: Block, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    # run from the repository's root, as the README's reader does; a block's sys.path.insert is undone afterwards
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    kind = _python_kind(block)
    if kind == "test file":
        check_python_test_file(block, request.getfixturevalue("pytester"))
        return
    if kind == "sketch":
        check_sketch(block)
        return
    namespace = _section_namespace(block)
    shown = _output_of(block)
    raises = re.search(r"raises `([\w.]+)`", shown.before) if shown is not None else None
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            _run_python(block, namespace)
    except Exception as exc:
        if raises is None:
            raise
        expected_type = eval(raises[1], namespace)  # a dotted name from the README's prose, such as archaudit.X
        assert isinstance(exc, expected_type), f"{block.where}: raised {type(exc).__name__}, not {raises[1]}"
        real = str(exc)
    else:
        if raises is not None:
            pytest.fail(f"{block.where}: the README says it raises `{raises[1]}`; it raised nothing", pytrace=False)
        real = stdout.getvalue()
    if shown is not None:
        # exact: the block's output has no timings or paths; only the final newline of the fence is dropped
        assert real.rstrip("\n") == shown.text.rstrip("\n"), (
            f"{shown.where}: the output shown is not what {block.where} prints or raises; the real one:\n{real}"
        )


class _Placeholder:
    """What a sketch's undefined name or ``...`` stands for."""


# What a file under archaudit/formulas/ has to hand, which the "Add a layer rule" sketch uses unimported. REGISTRY
# is the real one: a sketch's bare calls are bound, never made, so nothing is registered.
def _sketch_namespace() -> dict:
    import archaudit
    import torch
    from torch import nn

    return {"archaudit": archaudit, "REGISTRY": archaudit.REGISTRY, "nn": nn, "torch": torch}


def _bind(statement: ast.stmt, call: ast.Call, namespace: dict) -> None:
    try:
        func = _eval(call.func, namespace)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the sketch names what does not exist
        _fail(statement, f"{ast.unparse(call.func)} does not exist: {type(exc).__name__}: {exc}")
    partial = any(isinstance(a, ast.Constant) and a.value is Ellipsis for a in call.args)
    args = [_Placeholder() for a in call.args if not (isinstance(a, ast.Constant) and a.value is Ellipsis)]
    kwargs = {k.arg: _Placeholder() for k in call.keywords if k.arg is not None}
    signature = inspect.signature(func)
    try:
        (signature.bind_partial if partial else signature.bind)(*args, **kwargs)
    except TypeError as exc:
        _fail(statement, f"{ast.unparse(call)} does not fit {ast.unparse(call.func)}{signature}: {exc}")


def check_sketch(block: Block) -> None:
    namespace = _sketch_namespace()
    for statement in _statements(block):
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            _bind(statement, statement.value, namespace)
        elif isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
            uses_placeholder = any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(statement))
            if uses_placeholder:
                _bind(statement, statement.value, namespace)
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        namespace[target.id] = _Placeholder()
            else:
                _exec(statement, namespace)
        elif isinstance(statement, ast.Import | ast.ImportFrom):
            _exec(statement, namespace)
        else:
            _fail(statement, f"a sketch may hold imports, assignments and calls, not {ast.unparse(statement)}")


def check_python_test_file(block: Block, pytester: pytest.Pytester) -> None:
    """Run the block as a test file beside the example project its prose names (which holds what it imports)."""
    projects = re.findall(r"`(examples/[\w-]+)/`", block.before)
    assert projects, f"{block.where}: a test file needs the example project it belongs to named in the prose above it"
    for project in projects:
        for source in sorted((ROOT / project).glob("*.py")):
            if not source.name.startswith("test_"):
                shutil.copy(source, pytester.path / source.name)
    pytester.makepyfile(test_readme_block=block.text)
    tests = len(re.findall(r"^def test_", block.text, flags=re.M))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == tests and set(outcomes) <= {"passed", "warnings"}, (
        f"{block.where}: the test file does not pass as shown:\n" + "\n".join(result.outlines[-40:])
    )


# --- shell -------------------------------------------------------------------------------------------------------

CI = ci_commands()
_EXIT = re.compile(r"\bexits? (\d+)\b")  # a comment that states the exit code: "# exits 1"


def _cheaper(argv: list[str]) -> list[str]:
    """``archaudit report NAME`` spends most of its time (4 to 8 s on this project's 2 cores) in the cross-tool
    section: torchinfo, fvcore and FlopCounterMode, on meta and on the CPU. That section of a reference model's
    report is held byte for byte to the committed ``reports/NAME.md`` by tests/test_reports.py (which regenerates
    every report in a fresh process) and its reasons by tests/test_peers.py, so here the command runs with
    ``--no-compare``: the same parsing, build, audit, claims and rendering to stdout, and the same exit code."""
    if argv[:1] == ["report"] and "--no-compare" not in argv:
        return [*argv, "--no-compare"]
    return argv


def _headings(markdown: str) -> list[str]:
    return re.findall(r"^## .*$", markdown, flags=re.M)


def check_command(where: str, command: list[str], dirs: set[str], capsys, comment: str = "") -> str:
    """One README command: archaudit in-process (its stdout returned), anything else among .ci/run's commands."""
    if command[0] == "archaudit":
        from archaudit.cli import EXIT_OK

        stated = _EXIT.search(comment)
        expected = int(stated[1]) if stated else EXIT_OK
        argv = _cheaper(command[1:])
        code, out, err = run_cli(capsys, *argv)
        assert code == expected, f"{where}: `{shlex.join(command)}` exits {code}, not {expected}: {err[-2000:]}"
        committed = ROOT / "reports" / f"{argv[1]}.md" if argv[0] == "report" and len(argv) > 1 else None
        if committed is not None and committed.is_file() and not {"--output", "--format"} & set(argv):
            # "prints the whole audit": every section of the committed report of the same model
            assert _headings(out) == _headings(committed.read_text(encoding="utf-8")), f"{where}: {_headings(out)}"
        return out
    if normalised(command, dirs) not in CI:
        pytest.fail(
            f"{where}: `{shlex.join(command)}` is no archaudit command and not one that .ci/run runs (a test cannot "
            f"install; CI does, on a fresh machine), normalised as {normalised(command, dirs)}",
            pytrace=False,
        )
    return ""


def check_bash(block: Block, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    lines = [(block.line + i, line) for i, line in enumerate(block.text.splitlines(), 1) if line.strip()]
    commands = [(n, line, c) for n, line in lines for c in split_commands(line)]
    dirs = venvs([c for _, _, c in commands])
    out = ""
    for n, line, command in commands:
        out = check_command(f"README.md:{n}", command, dirs, capsys, strip_comment(line)[1])
    shown = _output_of(block)
    if shown is not None:
        assert out.rstrip("\n") == shown.text.rstrip("\n"), f"{shown.where}: not what {block.where} prints:\n{out}"


def _steps(block: Block) -> list[dict]:
    try:
        parsed = parse_yaml(block.text, block.line + 1)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)
    assert isinstance(parsed, dict) and set(parsed) == {"jobs"}, f"{block.where}: a workflow snippet is `jobs:`"
    jobs = parsed["jobs"]
    assert isinstance(jobs, dict) and jobs, f"{block.where}: no job"
    steps = []
    for name, job in jobs.items():
        assert isinstance(job, dict) and set(job) == {"runs-on", "steps"}, f"{block.where}: job {name}: {job}"
        assert isinstance(job["steps"], list), f"{block.where}: job {name}: steps is a list"
        steps += job["steps"]
    return steps


def check_yaml(block: Block, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    steps = _steps(block)
    for step in steps:
        assert set(step) in ({"uses"}, {"uses", "with"}, {"run"}), f"{block.where}: a step is uses: or run:, {step}"
    # the job runs in a checkout of this repository (its commands use its files), on a Python the package accepts
    assert steps[0] == {"uses": "actions/checkout@v4"}, f"{block.where}: the first step checks the repository out"
    python = next((s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")), None)
    assert python is not None, f"{block.where}: no actions/setup-python step"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = tuple(int(x) for x in python["with"]["python-version"].split("."))
    assert version >= tuple(int(x) for x in requires.removeprefix(">=").split(".")), (python, requires)
    runs = [s["run"] for s in steps if "run" in s]
    assert runs and split_commands(runs[0])[0][:2] == ["pip", "install"], f"{block.where}: the first run installs"
    for run in runs:
        assert isinstance(run, Scalar)
        for command in split_commands(run):
            check_command(f"README.md:{run.line}", command, set(), capsys, run.comment)


# --- toml --------------------------------------------------------------------------------------------------------


class _Reached(Exception):
    pass


def check_toml(block: Block, tmp_path, monkeypatch) -> None:
    data = tomllib.loads(block.text)
    if {"model", "claims"} & set(data):
        # archaudit's budgets reader refuses any unknown key or mistyped value of the whole file before it builds
        # a model: reaching the build of the first target means it read every entry as valid. The targets are the
        # reader's own project's, so the build is where the check stops.
        import archaudit.targets
        from archaudit.budgets.file import run_budgets

        def stop(target, **_):
            raise _Reached(target)

        monkeypatch.setattr(archaudit.targets, "build_target", stop)
        path = tmp_path / "budgets.toml"
        path.write_text(block.text, encoding="utf-8")
        with pytest.raises(_Reached) as reached:
            run_budgets(path)
        assert str(reached.value) == data["model"][0]["target"]
        return
    if "project" in data and "entry-points" in data["project"]:
        from archaudit.references import ENTRY_POINT_GROUP

        points = data["project"]["entry-points"]
        assert set(points) == {ENTRY_POINT_GROUP}, f"{block.where}: the group is {ENTRY_POINT_GROUP!r}"
        for name, value in points[ENTRY_POINT_GROUP].items():
            assert re.fullmatch(r"[\w.]+:[\w.]+", value), f"{block.where}: {name} = {value!r} is not module:callable"
        # this project's own plugin is declared the same way
        ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
        assert ENTRY_POINT_GROUP in ours
        return
    pytest.fail(f"{block.where}: a ```toml block neither a budgets file nor an entry-point table", pytrace=False)


# --- the synopsis ------------------------------------------------------------------------------------------------

# "[--flag]", "[--flag VALUE]", "[--flag VALUE ...]"; a VALUE may open with its own brackets ("[NAME=]SHAPE")
_OPTION = re.compile(r"\[(--[\w-]+)(?: ((?:\[[^\]\s]*\])?[^\]\s]+))?( \.\.\.)?\]")


def _is_synopsis(block: Block) -> bool:
    lines = [line for line in block.text.splitlines() if line.strip()]
    return bool(lines) and lines[0].startswith("archaudit ") and all(s.startswith(("archaudit ", " ")) for s in lines)


def check_synopsis(block: Block) -> None:
    """Each command's positionals (by metavar), options, choices (``a|b``) and repeatable options (``...``) are
    the parser's, in both directions. Option metavars (``SHAPE``, ``PATH``) are not compared: they are help text."""
    from archaudit.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    shown: dict[str, str] = {}
    current = ""
    for line in block.text.splitlines():
        if line.startswith("archaudit "):
            current = line.split()[1]
            assert current not in shown, f"{block.where}: {current} twice"
            shown[current] = line
        elif line.strip():
            shown[current] += " " + line.strip()
    assert set(shown) == set(commands), f"{block.where}: commands {sorted(shown)} against {sorted(commands)}"
    for name, line in shown.items():
        sub = commands[name]
        options = {m[1]: (m[2], bool(m[3])) for m in _OPTION.finditer(line)}
        positionals = _OPTION.sub("", line).split()[2:]
        real_options = {
            a.option_strings[-1]: a for a in sub._actions if a.option_strings and a.option_strings[0] != "-h"
        }
        assert set(options) == set(real_options), (
            f"{block.where}: `archaudit {name}` shows {sorted(options)}, its parser has {sorted(real_options)}"
        )
        for flag, (value, repeated) in options.items():
            action = real_options[flag]
            if action.choices:
                assert value is not None and value.split("|") == list(action.choices), (name, flag, value)
            assert (value is None) == (action.nargs == 0), f"{block.where}: {name} {flag} takes a value or not"
            assert repeated == (action.__class__.__name__ == "_AppendAction"), f"{block.where}: {name} {flag} ..."
        real_positionals = [
            f"[{a.metavar}]" if a.nargs == "?" else a.metavar for a in sub._actions if not a.option_strings
        ]
        assert positionals == real_positionals, f"{block.where}: {name}: {positionals} against {real_positionals}"


# --- the one test over every block -------------------------------------------------------------------------------


def _id(block: Block) -> str:
    return f"line{block.line}-{block.lang or 'plain'}"


@pytest.mark.parametrize("block", BLOCKS, ids=_id)
def test_every_block_is_run_or_checked(block: Block, capsys, monkeypatch, tmp_path, request) -> None:
    outputs = _outputs()
    if block.line in outputs:
        # compared by the block it is the output of; that block must be one that runs
        owner = outputs[block.line]
        assert owner.lang == "bash" or _python_kind(owner) == "run", f"{block.where}: output of a block that never runs"
        return
    first = block.text.strip().splitlines()[0] if block.text.strip() else ""
    for start, reason in ILLUSTRATIONS.items():
        if first.startswith(start):
            assert reason
            return
    checkers: dict[str, Callable[[], None]] = {
        "python": lambda: check_python(block, request, monkeypatch),
        "bash": lambda: check_bash(block, capsys, monkeypatch),
        "yaml": lambda: check_yaml(block, capsys, monkeypatch),
        "toml": lambda: check_toml(block, tmp_path, monkeypatch),
    }
    if block.lang in checkers:
        checkers[block.lang]()
    elif block.lang == "" and _is_synopsis(block):
        check_synopsis(block)
    else:
        pytest.fail(
            f"{block.where}: a ```{block.lang} block that no test runs or checks: give it a checker in "
            "tests/test_readme.py, or list it in ILLUSTRATIONS with the reason it cannot be checked",
            pytrace=False,
        )


def test_the_readme_has_the_blocks_this_file_was_written_for() -> None:
    """A floor, so that a parsing slip that finds no blocks cannot pass for a README with nothing to check."""
    kinds = [b.lang for b in BLOCKS]
    assert kinds.count("python") >= 4 and {"bash", "yaml", "toml", "text"} <= set(kinds), kinds


# --- figures -----------------------------------------------------------------------------------------------------


def _generated(names: list[str]) -> str:
    texts = []
    for name in names:
        path = ROOT / name
        assert path.is_file(), f"the README names {name}, which does not exist"
        texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def _line_of(first: int, paragraph: str, offset: int) -> int:
    return first + paragraph.count("\n", 0, offset)


def test_every_speed_figure_is_in_the_generated_file_its_paragraph_names() -> None:
    """Each figure of speed ("29 million configurations per second", "0.70x", "11.8 ms", "1.2 MB" ...) is in the
    ``reports/*.md`` named by its paragraph (the list a paragraph introduces with ":" is part of it): literally, as
    a table cell of a column in its unit, or, for millions and billions, as a number that rounds to it."""
    problems, found = [], []
    for first, paragraph in paragraphs(TEXT):
        names = GENERATED.findall(paragraph)
        for figure in FIGURE.finditer(paragraph):
            where = f"README.md:{_line_of(first, paragraph, figure.start())}"
            found.append(figure[0])
            if not names:
                problems.append(f"{where}: {figure[0]!r} quotes no generated file (name the reports/*.md it is from)")
            elif not figure_in(figure, _generated(names)):
                problems.append(f"{where}: {figure[0]!r} is not in {', '.join(names)}")
    assert not problems, "\n".join(problems)
    # the benchmark sentences are there to check (a regex that stopped matching would check nothing)
    assert {"70 million", "184,078x", "0.82x", "1.2 MB", "2.32 s", "1.39x"} <= set(found), found


def test_every_count_of_a_paragraph_naming_a_generated_file_is_in_it() -> None:
    """A paragraph that names ``reports/X.md`` quotes its counts from there: "3,498,500", "12,028,004" ..."""
    problems, checked = [], 0
    for first, paragraph in paragraphs(TEXT):
        names = GENERATED.findall(paragraph)
        if not names:
            continue
        generated = _generated(names)
        for count in COUNT.finditer(paragraph):
            checked += 1
            if not re.search(r"(?<![\d,])" + re.escape(count[0]) + r"(?![\d]|,\d)", generated):
                where = f"README.md:{_line_of(first, paragraph, count.start())}"
                problems.append(f"{where}: {count[0]} is not in {', '.join(names)}")
    assert not problems, "\n".join(problems)
    assert checked >= 5


def test_the_cross_tool_table_is_the_amnl_reports_totals() -> None:
    """The README's MACs per tool on the large AMNL are the total row of section 4 of reports/amnl.md."""
    report = (ROOT / "reports" / "amnl.md").read_text(encoding="utf-8")
    totals = next(row for row in first_table_after(report, "## 4. FLOPs cross-check") if row["module"] == "total")
    del totals["module"]
    rows = first_table_after(TEXT, "the totals of section 4 of `reports/amnl.md`")
    tools = {re.sub(r" \d+(\.\d+)*$", "", row["tool"]): row["MACs"] for row in rows}  # "torchinfo 1.8": "torchinfo"
    assert len(tools) == len(rows)
    assert tools == totals


def test_the_reference_model_table_is_the_reports_totals() -> None:
    """Each reference model's parameters in the README's table are its report's total (reports/NAME.json); a
    model listed with none ("—") has no report."""
    checked = 0
    for row in first_table_after(TEXT, "## Reference models"):
        for model in re.findall(r"`([\w-]+)`", row["name"]):
            report = ROOT / "reports" / f"{model}.json"
            if row["parameters"] == "—":
                assert not report.exists(), f"{model} has a report; the README gives it no parameters"
                continue
            total = json.loads(report.read_text(encoding="utf-8"))["summary"]["total"]
            shown = row["parameters"].split(" ")[0]  # "45,372 (FD001)": the builder's default subset
            assert shown == f"{total:,}", f"README: {model} {row['parameters']}; {report.name}: {total:,}"
            checked += 1
    assert checked >= 6
