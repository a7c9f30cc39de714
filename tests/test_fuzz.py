"""Fuzz: every input the CLI reads, built from its documented grammar and then mutated.

Oracle: the CLI's contract. Whatever the input, ``archaudit`` exits 0, 1 or 2 (never 3, never a traceback), an
exit 2 prints exactly one line on stderr, and each case ends within a few seconds. The inputs: TARGET strings,
``--input`` shapes, claims files and budgets files (valid documents of every claim kind, then with a key
dropped, an unknown key added, a value replaced by a wrong type, a huge, deeply nested or hostile value).

Each property runs ``FUZZ_EXAMPLES`` examples under the CI profile (fewer under dev): a CLI call builds a model and
checks a document, about 50 ms, so the profile's 200 would cost minutes.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archaudit.cli import main

FUZZ_EXAMPLES = min(settings().max_examples, 60)
FUZZ = settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck), deadline=None)
SECONDS = 10.0  # per case: a hang or a runaway build fails, an ordinary check takes well under one


def run_cli(*argv: str) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def assert_contract(argv: tuple[str, ...], code: int, err: str, seconds: float) -> None:
    assert code in (0, 1, 2), f"exit {code} for {argv}: {err[:500]}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("archaudit"), f"{argv}: stderr {err[:500]!r}"
    assert "Traceback" not in err, err[:500]
    assert seconds < SECONDS, f"{argv} took {seconds:.1f} s"


# ------------------------------------------------------------------------------------------------ TOML writing


def toml_value(value: Any, depth: int = 0) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v, depth + 1) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v, depth + 1)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else toml_value(key)


def toml_document(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, body in data.items():
        if isinstance(body, list) and body and all(isinstance(b, dict) for b in body):
            for entry in body:
                lines += ["", f"[[{toml_key(table)}]]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items()]
        elif isinstance(body, dict):
            lines += ["", f"[{toml_key(table)}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in body.items()]
        else:
            lines += [f"{toml_key(table)} = {toml_value(body)}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ documents

# dcnn (FD001): 45,372 parameters; regressor.2 is Linear(420, 100) with 42,100 (420 x 100 + 100)
CLAIMS: dict[str, Any] = {
    "document": {"id": "fuzz", "title": "a fuzzed document", "source": "none", "model": "dcnn"},
    "components": {"conv": ["features"], "head": ["regressor"], "dense": ["regressor.2"]},
    "claims": [
        {"id": "total", "where": "title", "printed": "45,372", "kind": "total"},
        {"id": "head", "where": "table", "printed": "42.2K", "kind": "component", "component": "head"},
        {"id": "head_pct", "where": "table", "printed": "93.0%", "kind": "percentage", "component": "head"},
        {"id": "double", "where": "text", "printed": "90,744", "kind": "arithmetic", "expression": "45372 * 2"},
        {"id": "in_k", "where": "text", "printed": "45.4", "kind": "derived", "expression": "total / 1000"},
        {"id": "both", "where": "text", "printed": "87,572", "kind": "sum", "terms": ["total", "head"]},
        {"id": "fp32", "where": "text", "printed": "0.18 MB", "kind": "size", "dtype": "float32"},
        {"id": "best", "where": "table", "kind": "ranking", "label": "double", "among": ["total", "in_k"]},
        {"id": "rmse", "where": "results", "printed": "12.6", "kind": "reported"},
        {"id": "width", "where": "text", "printed": "100", "kind": "attribute", "module": "regressor.2",
         "attribute": "out_features"},
        {"id": "lin", "where": "formulas", "kind": "formula", "layer": "Linear", "expression": "in * out + out"},
        {"id": "speed", "where": "text", "printed": ">30K", "kind": "throughput"},
    ],
}

HOSTILE = [
    5, -1, 0, 1.5, True, "x", "", [], {}, ["a"], [1, 2], {"a": 1}, float("nan"), float("inf"), 10**18,
    "9**9**9", "__import__('os').system('true')", "1 << 10**9", "-" * 5000 + "1", "(" * 3000 + "1" + ")" * 3000,
    "x" * 20_000, "1" + " " * 2000 + "!", "a | b | **holds**\n| row |", "<script>", "total.__class__",
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
]


@st.composite
def mutated(draw, base: dict[str, Any]) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        tables = [t for t in data if isinstance(data[t], (dict, list))]
        if not tables:
            break
        table = draw(st.sampled_from(tables + [t for t in tables if isinstance(data[t], list)] * 3))
        body = data[table]
        target = draw(st.sampled_from(body)) if isinstance(body, list) and body else body
        if not isinstance(target, dict):
            continue
        action = draw(st.sampled_from(["drop", "add", "replace", "replace", "kind"]))
        keys = list(target)
        if action == "drop" and keys:
            target.pop(draw(st.sampled_from(keys)))
        elif action == "add":
            target[draw(st.sampled_from(["tolerence", "colour", "expct", "kind2", "id"]))] = \
                draw(st.sampled_from(HOSTILE))
        elif action == "replace" and keys:
            target[draw(st.sampled_from(keys))] = draw(st.sampled_from(HOSTILE))
        elif action == "kind" and "kind" in target:
            from archaudit.claims.records import KINDS

            target["kind"] = draw(st.sampled_from([*KINDS, "flops", "Total"]))
    return data


@FUZZ
@given(mutated(CLAIMS))
def test_claims_files(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "claims.toml"
    path.write_text(toml_document(data))
    argv = ("claims", str(path))
    code, _, err, seconds = run_cli(*argv)
    assert_contract(argv, code, err, seconds)


def budgets(claims_path: Path) -> dict[str, Any]:
    return {
        "model": [{"target": "dcnn", "input": "1x30x14", "params": [45_000, 46_000], "macs": 2_000_000,
                   "size_mb": 1, "allow_unsupported": False}],
        "claims": [{"file": str(claims_path), "expect": {"holds": 3}}],
    }


@FUZZ
@given(st.data())
def test_budgets_files(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("fuzz")
    claims = directory / "claims.toml"
    claims.write_text(toml_document(CLAIMS))
    path = directory / "budgets.toml"
    path.write_text(toml_document(data.draw(mutated(budgets(claims)))))
    argv = ("check", str(path))
    code, _, err, seconds = run_cli(*argv)
    assert_contract(argv, code, err, seconds)


SHAPE_ALPHABET = "0123456789x:int64floatbl-. "


@FUZZ
@given(st.one_of(st.text(SHAPE_ALPHABET, max_size=40), st.sampled_from([
    "1x30x14", "1x30x14:float64", "1x30x14:int64", "0x30x14", "1x30", "1x30x14x1x1x1x1x1x1", "x", ":", "1x",
    f"1x{2**63}", "1x" + "9" * 5000, "1x30x14:float8", "-1x30x14", "1.5x30x14", "2147483647x30x14",
])))
def test_input_shapes(shape):
    argv = ("flops", "dcnn", "--input", shape, "--format", "json")
    code, _, err, seconds = run_cli(*argv)
    assert_contract(argv, code, err, seconds)
    assert code != 1  # flops checks nothing, so it never fails a check


@FUZZ
@given(st.one_of(st.text(max_size=60), st.sampled_from([
    "amnl", "dcnn", "dkamformer", "bilstm-ed", ":", "a:b", "os:getcwd", "os.path:join", "torch.nn:Linear",
    "torch.nn:Module", "/nonexistent.py:build", "tests/fixtures/targets.py:small", "tests/fixtures/targets.py:",
    "tests/fixtures/targets.py:nothing", "tests/fixtures/targets.py:small.x", "sys:exit", "builtins:exit",
    "builtins:quit", "builtins:input", "json:loads", "..:x", "a" * 5000, "\x00:x", "amnl-xxl",
])), st.sampled_from(["params", "flops"]))
def test_targets(target, command):
    argv = (command, target, "--meta") if command == "params" else (command, target, "--input", "1x30x14")
    code, _, err, seconds = run_cli(*argv)
    assert_contract(argv, code, err, seconds)
