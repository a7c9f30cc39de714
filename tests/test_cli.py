"""The command line, through ``main(argv) -> int``: output formats, and one clear line per bad TARGET."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from archaudit.cli import EXIT_BAD_INPUT, EXIT_OK
from cli_run import run

FIXTURES = Path(__file__).parent / "fixtures"
TARGETS = f"{FIXTURES / 'targets.py'}"




def test_params_json_has_the_documented_keys(capsys):
    code, out, err = run(capsys, "params", f"{TARGETS}:small", "--format", "json")
    assert code == EXIT_OK and err == ""
    data = json.loads(out)
    assert {"total", "trainable", "frozen", "buffers", "modules", "shared", "unregistered"} <= set(data)
    assert data["total"] == 171  # 17*8 + 8 + 8*3 + 3
    assert data["trainable"] == 171 and data["frozen"] == 0
    assert [m["name"] for m in data["modules"]] == ["", "0", "1", "2"]
    assert {m["status"] for m in data["modules"]} == {"zero", "formula"}
    first = data["modules"][1]
    assert {"name", "type", "params", "status"} <= set(first)
    assert (first["type"], first["params"], first["formula"]) == ("Linear", 144, "17*8 + 8")


def test_params_markdown_and_meta(capsys):
    code, out, _ = run(capsys, "params", "torch.nn:Identity", "--meta")
    assert code == EXIT_OK and "| total parameters" in out
    code, out, _ = run(capsys, "params", f"{TARGETS}:small", "--meta")
    assert code == EXIT_OK
    assert "| total parameters" in out and "171" in out and "`17*8 + 8`" in out


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nosuchpackage.models:build", "no module named 'nosuchpackage'"),
        ("archaudit:no_such_builder", "archaudit has no attribute 'no_such_builder'"),
        (f"{TARGETS}:raises", "calling it raised RuntimeError: the builder is broken"),
        (f"{TARGETS}:not_a_module", "returned a int, not an nn.Module"),
        (f"{TARGETS}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not a callable"),
        (f"{FIXTURES / 'missing.py'}:build", "no such file"),
        (f"{FIXTURES / 'syntax_error.py'}:broken", "syntax error in"),
        (f"{TARGETS}:lazy", "module '0' (LazyLinear) has an uninitialised parameter 'weight'"),
        ("no-such-model", "unknown reference model 'no-such-model'"),
        ("module.only:", "expected package.module:callable"),
    ],
)
def test_bad_target_exits_2_with_one_line(capsys, target, message):
    code, out, err = run(capsys, "params", target)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    code, _, err = run(capsys, "params")
    assert code == EXIT_BAD_INPUT and "TARGET" in err
    code, _, err = run(capsys, "params", "x:y", "--format", "xml")
    assert code == EXIT_BAD_INPUT and "invalid choice" in err
    code, _, _ = run(capsys)
    assert code == EXIT_BAD_INPUT


def test_python_dash_m_and_console_script_agree(capsys):
    """Both entry points print what main() prints and pass its exit code on, good input or bad."""
    args = ["params", f"{TARGETS}:small", "--format", "json"]
    code, out, _ = run(capsys, *args)
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # what exit_process must flush
    by_module = subprocess.run([sys.executable, "-m", "archaudit", *args], capture_output=True, text=True, env=buffered)
    assert by_module.returncode == code == EXIT_OK
    assert json.loads(by_module.stdout) == json.loads(out)
    script = Path(sys.executable).with_name("archaudit")
    bad = subprocess.run([str(script), "params", "nosuch:x"], capture_output=True, text=True)
    assert bad.returncode == EXIT_BAD_INPUT and "Traceback" not in bad.stderr


def test_the_console_script_runs_atexit_handlers_and_flushes_before_it_exits(tmp_path):
    """The entry points end the process without Python's teardown of torch (archaudit.cli.exit_process): the
    handlers the model's code registered with atexit still run, and what the command and the model's code wrote
    to stdout and stderr arrives whole through a pipe. Oracle: the file the handler writes, and the outputs."""
    marker = tmp_path / "atexit-ran"
    target = tmp_path / "model.py"
    target.write_text(
        "import atexit, sys\n"
        "from torch import nn\n"
        "def build():\n"
        f"    atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "    atexit.register(print, 'goodbye from the model')  # after every write of the command's own\n"
        "    sys.stderr.write('from the model, unflushed')\n"
        "    return nn.Sequential(*[nn.Linear(8, 8) for _ in range(200)])\n",
        encoding="utf-8",
    )
    script = Path(sys.executable).with_name("archaudit")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout to a pipe: block-buffered
    for command in ([str(script)],):  # python -m archaudit ends the same way (the test above reads its output)
        marker.unlink(missing_ok=True)
        done = subprocess.run(
            [*command, "params", f"{target}:build", "--format", "json"], capture_output=True, text=True, env=buffered
        )
        assert done.returncode == EXIT_OK, done.stderr
        assert marker.read_text() == "ran"
        assert done.stderr.endswith("from the model, unflushed")
        # 200 layers of 8*8 + 8 parameters, all in the JSON, its last byte included
        report, goodbye = done.stdout.rsplit("\n", 2)[0], done.stdout.rsplit("\n", 2)[1]
        assert goodbye == "goodbye from the model"
        assert json.loads(report)["total"] == 200 * (8 * 8 + 8)


def test_a_command_collects_garbage_less_often_and_restores_the_thresholds_it_found(tmp_path, capsys):
    """Oracle: ``gc.get_threshold()`` as the model's builder sees it, and after the command returns."""
    import gc

    from archaudit.cli import GC_THRESHOLDS

    seen = tmp_path / "seen"
    target = tmp_path / "model.py"
    target.write_text(
        "import gc\nfrom torch import nn\n"
        f"def build():\n    open({str(seen)!r}, 'w').write(repr(gc.get_threshold()))\n    return nn.Linear(2, 2)\n",
        encoding="utf-8",
    )
    found = gc.get_threshold()
    code, _, err = run(capsys, "params", f"{target}:build")
    assert code == EXIT_OK, err
    assert seen.read_text() == repr(GC_THRESHOLDS) != repr(found)
    assert gc.get_threshold() == found


_ENDINGS = """
import json, os, sys
from archaudit.cli import exit_process, main

def ending(setup, call):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(write, 2)
        setup()
        call()
    os.close(write)
    with os.fdopen(read) as err:
        text = err.read()
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), text]

def to_full():
    os.dup2(os.open("/dev/full", os.O_WRONLY), 1)

def no_stdout():  # as when the process was started with it closed (>&-)
    sys.stdout = None

print(json.dumps({
    "exit_process, output lost": ending(to_full, lambda: (print("lost"), exit_process(0))),
    "exit_process, no stdout": ending(no_stdout, lambda: exit_process(0)),
    "list to /dev/full": ending(to_full, lambda: exit_process(main(["list"]))),
    "list without stdout": ending(no_stdout, lambda: exit_process(main(["list"]))),
}))
"""


@pytest.mark.skipif(not Path("/dev/full").exists() or not hasattr(os, "fork"), reason="needs /dev/full and fork")
def test_output_that_cannot_be_written_is_one_line_and_exit_2():
    """Oracle: the exit code and stderr of a process ending through exit_process (as both entry points do) whose
    output cannot be flushed (stdout on /dev/full), or that has no stdout; and of ``list`` in each case, whose output
    fails in the command. A normal exit would print a traceback; before, the command said "internal error" (3).
    Each case is a child forked from one fresh interpreter (one import of torch)."""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a flush must do the writing
    done = subprocess.run([sys.executable, "-c", _ENDINGS], capture_output=True, text=True, env=buffered, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    full = "No space left on device"
    assert found["exit_process, output lost"] == [EXIT_BAD_INPUT, f"archaudit: could not write standard output: {full}\n"]
    assert found["exit_process, no stdout"] == [EXIT_OK, ""]
    assert found["list to /dev/full"] == [EXIT_BAD_INPUT, f"archaudit: standard output: cannot be written: {full}\n"]
    code, err = found["list without stdout"]
    assert code == EXIT_BAD_INPUT and err.startswith("archaudit: standard output is closed") and err.count("\n") == 1
