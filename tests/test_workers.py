"""archaudit.workers: tasks in forked children give what a loop gives, errors included.

ORACLES
* a plain loop over the same tasks (the results and the first error, in task order);
* ``os.getpid()`` inside each task, for where it ran: a child's differs from the parent's.

Forking is refused in a process with another thread alive, and a pytest-xdist worker has one, so every test that
needs a fork runs its script in a fresh interpreter (:func:`_script`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from archaudit import workers
from archaudit.errors import ArchauditError

ROOT = Path(__file__).resolve().parents[1]


def _script(code: str, *, count: int | str = 2, timeout: float = 120) -> dict:
    """Run ``code`` in a fresh interpreter with ``ARCHAUDIT_WORKERS=count``; it prints one JSON line last."""
    env = {**os.environ, workers.ENVIRONMENT: str(count)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_results_come_back_in_task_order_from_children() -> None:
    found = _script(
        """
        import json, os
        from archaudit.workers import run_all
        tasks = [lambda i=i: (i * i, os.getpid()) for i in range(7)]
        results = run_all(tasks)
        print(json.dumps({"values": [v for v, _ in results], "pids": [p for _, p in results], "me": os.getpid()}))
        """,
        count=3,
    )
    assert found["values"] == [i * i for i in range(7)]  # the loop's answer
    # rounds of 3: the first task of each round runs here, the other two in children
    here = [pid == found["me"] for pid in found["pids"]]
    assert here == [True, False, False, True, False, False, True]


def test_one_worker_or_another_thread_means_a_plain_loop() -> None:
    found = _script(
        """
        import json, os
        from archaudit.workers import run_all
        print(json.dumps({"pids": run_all([os.getpid] * 3), "me": os.getpid()}))
        """,
        count=1,
    )
    assert found["pids"] == [found["me"]] * 3
    threaded = _script(
        """
        import json, os, threading
        from archaudit.workers import run_all
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        pids = run_all([os.getpid] * 3)
        stop.set(); other.join()
        print(json.dumps({"pids": pids, "me": os.getpid()}))
        """,
        count=3,
    )
    assert threaded["pids"] == [threaded["me"]] * 3


def test_the_first_error_in_task_order_is_raised_with_its_type_and_message() -> None:
    found = _script(
        """
        import json, os
        from archaudit.errors import ForwardError
        from archaudit.workers import run_all
        def fails(text):
            def task():
                raise ForwardError(f"{text} in {'child' if os.getpid() != me else 'parent'}")
            return task
        me = os.getpid()
        try:
            run_all([lambda: 1, fails("second"), fails("third")])
        except ForwardError as exc:
            print(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        """,
        count=3,
    )
    assert found == {"type": "ForwardError", "message": "second in child"}


def test_an_error_that_does_not_pickle_keeps_its_message_and_its_kind() -> None:
    found = _script(
        """
        import json
        from archaudit.errors import ArchauditError
        from archaudit.workers import run_all
        class Odd(ArchauditError):
            def __init__(self, message, *, where):  # a keyword-only argument: unpickling it fails
                super().__init__(message)
        class Bug(Exception):
            def __init__(self, message, *, where):
                super().__init__(message)
        def odd():
            raise Odd("the model at fault", where=1)
        def bug():
            raise Bug("a broken invariant", where=1)
        seen = {}
        for name, task in (("odd", odd), ("bug", bug)):
            try:
                run_all([lambda: 0, task])
            except Exception as exc:
                seen[name] = [isinstance(exc, ArchauditError), str(exc)]
        print(json.dumps(seen))
        """
    )
    assert found["odd"] == [True, "the model at fault"]
    assert found["bug"] == [False, "a worker's task failed: Bug: a broken invariant"]


def test_a_child_that_dies_has_its_task_run_again_here() -> None:
    found = _script(
        """
        import json, os, signal
        from archaudit.workers import run_all
        me = os.getpid()
        def task():
            if os.getpid() != me:
                os.kill(os.getpid(), signal.SIGKILL)  # killed before it answers
            return os.getpid()
        print(json.dumps({"pids": run_all([os.getpid, task]), "me": me}))
        """
    )
    assert found["pids"] == [found["me"], found["me"]]


def test_children_run_torch_kernels_after_the_parent_started_its_thread_pool() -> None:
    # Without torch.set_num_threads(1) in the child, the child's first parallel kernel waits forever on the
    # OpenMP pool it inherited but does not have (the timeout below would fire).
    found = _script(
        """
        import json, torch
        from archaudit.workers import run_all
        x = torch.ones(600, 600)
        (x @ x).sum()  # the parent's OpenMP pool is up
        total = lambda: float((x @ x).sum())
        print(json.dumps(run_all([total, total])))
        """,
        timeout=60,
    )
    assert found == [600.0 * 600 * 600] * 2


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_a_bad_worker_count_is_a_clear_error(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.ENVIRONMENT, value)
    with pytest.raises(workers.WorkersError, match=f"ARCHAUDIT_WORKERS='{value}': expected a whole number"):
        workers.workers()
    assert issubclass(workers.WorkersError, ArchauditError)


def test_the_default_is_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workers.ENVIRONMENT, raising=False)
    assert workers.workers() == max(1, min(len(os.sched_getaffinity(0)), workers.MAX_WORKERS))
    assert workers.can_fork() == (threading.active_count() == 1)


def test_vary_gives_the_same_polynomials_side_by_side_and_skips_failures_it_never_needs() -> None:
    # A convolution with a kernel of 40 fails at T=31, the fifth size of DEFAULT_POINTS, which a fit of the linear
    # MACs never needs (121, 77, 48, 148) but which two workers measuring ahead do reach: its failure must not
    # surface. AHEAD_AFTER_S=0 makes every pass "slow", so the run measures ahead from the first miss.
    code = """
        import json, torch
        from torch import nn
        from archaudit import varied
        from archaudit.polynomial import parse_varied
        varied.AHEAD_AFTER_S = 0.0
        model = nn.Sequential(nn.Conv1d(3, 4, 40), nn.ReLU())
        costs = varied.vary(model, parse_varied(["1x3xT"], "T"))
        print(json.dumps({k: str(p.coefficients) for k, p in costs.polynomials}))
        """
    side_by_side = _script(code, count=2)
    in_a_loop = _script(code, count=1)
    assert side_by_side == in_a_loop
    # MACs = 4 output channels x (T - 39) positions x 3 x 40 = 480*T - 18,720
    assert side_by_side["macs"] == str((Fraction(-18720), Fraction(480)))
