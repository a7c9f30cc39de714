"""Independent tasks run side by side in forked worker processes, with the same results as one after another.

``run_all(tasks)`` runs the first task of each round here and the others in children forked for the round, one
per CPU this process may use (at most :data:`MAX_WORKERS`, or ``ARCHAUDIT_WORKERS``), and returns every result
in the order of ``tasks``. A fork shares the parent's state as it is (a built model, fake weights), so nothing is
built twice and nothing but the results (plain, picklable values) crosses back.

It falls back to running the tasks here, one after another, whenever that is the safer choice: one worker, a
platform without ``fork``, or another thread alive in this process (a fork copies only the calling thread, and a
lock another thread held would never be released in the child). A child sets torch to one thread first:
forked children of a process whose OpenMP pool has started hang in their first parallel kernel otherwise.

A task's exception reaches the caller as it was raised (the first failing task's, in task order, as a loop would
raise it); a child that dies without an answer (killed, out of memory) has its task run again here, so an answer
never depends on a worker's fate. Children are reaped before ``run_all`` returns or raises, and killed first when
it is interrupted or when the task it runs itself fails (that error is the first in task order).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .errors import ArchauditError

T = TypeVar("T")

MAX_WORKERS = 4
"""Most processes a round uses by default: each holds a copy-on-write image of the parent."""

ENVIRONMENT = "ARCHAUDIT_WORKERS"
"""Names a worker count (``1``: never fork); otherwise the CPUs this process may use, up to :data:`MAX_WORKERS`."""


class WorkersError(ArchauditError, ValueError):
    """``ARCHAUDIT_WORKERS`` is set to something that is no worker count."""


class _Failed:
    """What a child sends back when its task raised: the exception, or its type and message when it won't pickle."""

    def __init__(self, exc: BaseException) -> None:
        try:
            pickle.loads(pickle.dumps(exc))
            self.exc: BaseException | None = exc
        except Exception:  # noqa: BLE001 - any pickling failure: send the text instead
            self.exc = None
        self.archaudit = isinstance(exc, ArchauditError)
        self.text = str(exc)
        self.kind = type(exc).__name__

    def error(self) -> BaseException:
        """The exception to raise here: the child's own, else one of the same meaning with its message."""
        if self.exc is not None:
            return self.exc
        if self.archaudit:  # an error on the user's input stays one, with its exit code
            return ArchauditError(self.text)
        return RuntimeError(f"a worker's task failed: {self.kind}: {self.text}")


def workers() -> int:
    """How many processes a round may use (at least 1)."""
    setting = os.environ.get(ENVIRONMENT, "").strip()
    if setting:
        try:
            count = int(setting)
        except ValueError:
            count = 0
        if count < 1:
            raise WorkersError(f"{ENVIRONMENT}={setting[:40]!r}: expected a whole number of workers, 1 or more")
        return count
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(available, MAX_WORKERS))


def side_by_side() -> bool:
    """Whether :func:`run_all` would run tasks in children here (more than one worker, and :func:`can_fork`)."""
    return workers() > 1 and can_fork()


def can_fork() -> bool:
    """Whether tasks may go to forked children here: ``fork`` exists and this is the only thread."""
    return hasattr(os, "fork") and threading.active_count() == 1


def run_all(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Every task's result, in order; side by side where :func:`can_fork` and :func:`workers` allow."""
    count = workers()
    if count == 1 or len(tasks) < 2 or not can_fork():
        return [task() for task in tasks]
    results: list[T] = []
    for start in range(0, len(tasks), count):
        results += _round(tasks[start : start + count])
    return results


def _round(tasks: Sequence[Callable[[], T]]) -> list[T]:
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe), for tasks[1:] that could be forked
    answers: list[Any] = []
    try:
        for task in tasks[1:]:
            try:
                children.append(_fork(task))
            except Exception:  # noqa: BLE001 - no fork to be had (EAGAIN, ENOMEM, a warning made an error): the
                break  # rest run here, in order
        # the parent's own task: its error is the first in task order, so no child's answer can matter and the
        # children are stopped (below) rather than waited for
        answers.append(tasks[0]())
        while children:
            pid, read = children[0]
            answers.append(_collect(pid, read))
            children.pop(0)  # reaped and closed: never killed or closed again below
    finally:
        for pid, read in children:  # interrupted, or the first task failed: stop and reap what is still running
            _kill(pid, read)
    answers += [_LOST] * (len(tasks) - len(answers))  # tasks no child was forked for: run here, below
    results: list[T] = []
    for task, answer in zip(tasks, answers, strict=True):
        if answer is _LOST:
            answer = task()  # no answer from a child (it died, or none was forked): the same task, here
        if isinstance(answer, _Failed):
            raise answer.error()
        results.append(answer)
    return results


_LOST = object()


def _fork(task: Callable[[], Any]) -> tuple[int, int]:
    read, write = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # what is buffered here is written once, by this process
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        with warnings.catch_warnings():
            # Python 3.12 warns of fork() with other OS threads alive; torch's thread pools are idle here, and the
            # child runs only its task and leaves
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except BaseException:
        os.close(read)
        os.close(write)
        raise
    if pid == 0:  # the child: run, answer, and leave without running the parent's exit handlers or flushing its buffers
        status = 0
        try:
            os.close(read)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            import torch

            torch.set_num_threads(1)
            try:
                answer: Any = task()
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it
                answer = _Failed(exc)
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write, "wb") as pipe:
                pipe.write(data)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            status = 1
        finally:
            os._exit(status)
    os.close(write)
    return pid, read


def _collect(pid: int, read: int) -> Any:
    """The child's answer (read to the end before waiting, so a large answer cannot block it), or :data:`_LOST`."""
    chunks = []
    with os.fdopen(read, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not chunks:
        return _LOST
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - a truncated answer is no answer
        return _LOST


def _kill(pid: int, read: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        os.close(read)


__all__ = ["ENVIRONMENT", "MAX_WORKERS", "WorkersError", "can_fork", "run_all", "side_by_side", "workers"]
