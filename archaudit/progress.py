"""Progress of long work (``bench``, ``reports``) on one line of standard error, for a person watching.

Shown only when standard error is a terminal: piped, redirected or captured, nothing is written, so logs and
standard output stay clean (standard output is never touched either way). The line is rewritten in place with
``\\r``, cut to the terminal's width (a wrapped line could not be rewritten), and erased when the work ends,
normally or not, so that what is printed next starts on a clean line::

    with progress("bench dcnn", total=33) as step:
        for batch in batches:
            step(f"batch {batch}")  # "bench dcnn [1/33] batch 1 (0 s)"

Library functions do not print: they take a ``step`` callable (a no-op by default) that the command line passes.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

Step = Callable[[str], None]
"""Called once per unit of work done or begun, with what it is (``"batch 64: run 3/10"``)."""


def no_step(what: str) -> None:
    """A :data:`Step` that shows nothing."""


def _terminal() -> TextIO | None:
    stream = sys.stderr  # looked up at each call: a test or a caller may have replaced it
    try:
        return stream if stream is not None and stream.isatty() else None
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return None


class _Line:
    def __init__(self, stream: TextIO, label: str, total: int | None) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.shown = 0
        self.began = time.monotonic()

    def __call__(self, what: str) -> None:
        self.done += 1
        count = f"[{self.done}/{self.total}] " if self.total is not None else ""
        tail = " ".join(f"{count}{what} ({time.monotonic() - self.began:.0f} s)".split())
        # the last column left empty: writing it wraps the line on some terminals, and a wrapped line cannot be
        # rewritten; a long label (a file TARGET's path) is cut from its start, what changes is kept
        width = max(shutil.get_terminal_size().columns - 1, 10)
        label, room = " ".join(self.label.split()), width - len(tail) - 1
        if len(label) > room:
            label = "..." + label[len(label) - room + 3 :] if room > 3 else ""
        self._write(f"{label} {tail}".strip()[:width])

    def _write(self, text: str) -> None:
        pad = " " * max(self.shown - len(text), 0)  # what remains of a longer line before
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()
        self.shown = len(text)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Step]:
    """A :data:`Step` that shows ``label [done/total] what (elapsed)`` on standard error while the body runs, and
    erases it at the end; a no-op when standard error is not a terminal. ``total=None`` shows no count."""
    stream = _terminal()
    if stream is None:
        yield no_step
        return
    line = _Line(stream, label, total)
    try:
        yield line
    finally:
        line.clear()
