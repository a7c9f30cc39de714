"""Running the CLI in a test: ``archaudit.cli.main(argv)`` with its output captured, and the exit-2 contract
(one stderr line, no traceback) checked in one place."""

from __future__ import annotations

from pathlib import Path

from archaudit.cli import EXIT_BAD_INPUT, main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one CLI call."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """The only line of ``err`` (an exit-2 message), failing when there is not exactly one."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def refused(capsys, *argv: str) -> str:
    """Run the CLI, require exit 2 and one stderr line, and return that line."""
    code, out, err = run(capsys, *argv)
    assert code == EXIT_BAD_INPUT, (code, out[-500:], err)
    assert err.count("\n") == 1, err
    return one_line(err)


def budgets_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text, encoding="utf-8")
    return path
