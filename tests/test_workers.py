"""archaudit.workers: tasks in forked children give what a loop gives, errors included.

ORACLES
* a plain loop over the same tasks (the results and the first error, in task order);
* ``os.getpid()`` inside each task, for where it ran: a child's differs from the parent's.

Forking is refused in a process with another thread alive, and a pytest-xdist worker has one, so the scenarios
that need a fork run in one fresh interpreter (:data:`SCENARIOS`, run once per test process by :func:`_found`),
each printing its findings under its own key; the tests assert on them.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from archaudit import workers
from archaudit.errors import ArchauditError

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS = textwrap.dedent(
    """
    import json, os, signal, threading
    import torch
    from archaudit import workers
    from archaudit.errors import ArchauditError, ForwardError
    from archaudit.workers import run_all
    found = {}
    me = os.getpid()

    def count(n):
        os.environ[workers.ENVIRONMENT] = str(n)

    # order: rounds of 3, the first task of each here, the other two in children
    count(3)
    results = run_all([lambda i=i: (i * i, os.getpid()) for i in range(7)])
    found["order"] = {"values": [v for v, _ in results], "here": [p == me for _, p in results]}

    # one worker, or another thread alive: a plain loop
    count(1)
    found["one worker"] = [p == me for p in run_all([os.getpid] * 3)]
    count(3)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    found["threaded"] = [p == me for p in run_all([os.getpid] * 3)]
    stop.set()
    other.join()

    # the first error in task order, with its type and message
    def fails(text):
        def task():
            raise ForwardError(f"{text} in {'child' if os.getpid() != me else 'parent'}")
        return task
    try:
        run_all([lambda: 1, fails("second"), fails("third")])
    except ForwardError as exc:
        found["first error"] = [type(exc).__name__, str(exc)]

    # a failure of the parent's own task, the first in task order, stops the children: their answers cannot matter
    import time
    started = time.perf_counter()
    try:
        run_all([fails("first"), lambda: time.sleep(30)])
    except ForwardError as exc:
        found["parent's failure"] = [str(exc), time.perf_counter() - started < 20]

    # errors that do not pickle keep their message and their kind
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
    for name, task in (("odd", odd), ("bug", bug)):
        count(2)
        try:
            run_all([lambda: 0, task])
        except Exception as exc:
            found[name] = [isinstance(exc, ArchauditError), str(exc)]

    # a child killed before it answers: its task runs again here
    def killed():
        if os.getpid() != me:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()
    found["killed"] = [p == me for p in run_all([os.getpid, killed])]

    # no fork to be had: the tasks run here, in order, with the same answers
    real_fork = os.fork
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")
    os.fork = no_fork
    try:
        found["no fork"] = [(v, p == me) for v, p in run_all([lambda i=i: (i, os.getpid()) for i in range(3)])]
    finally:
        os.fork = real_fork

    # torch kernels in children after the parent started its OpenMP pool (without torch.set_num_threads(1) in the
    # child, its first parallel kernel waits forever on a pool it inherited but does not have)
    x = torch.ones(600, 600)
    (x @ x).sum()
    total = lambda: float((x @ x).sum())
    found["torch"] = run_all([total, total])

    # vary side by side (three workers) and in a loop: a convolution with a kernel of 40 fails at T=31, the fifth
    # size of DEFAULT_POINTS, which a fit of the linear MACs never needs (121, 77, 48, 148): three workers measure
    # the first three together (a fit needs at least three), then 148 alone (the three values prove degree 1,
    # which needs four), never 31. A model whose passes run on meta is measured ahead; this one is made to count as one.
    from torch import nn
    from archaudit import varied
    from archaudit.polynomial import parse_varied
    varied.trace_device = lambda model, inputs: "meta"
    model = nn.Sequential(nn.Conv1d(3, 4, 40), nn.ReLU())
    rounds = []
    real_run_all = varied.run_all
    def logged(tasks):
        rounds.append(len(tasks))
        return real_run_all(tasks)
    varied.run_all = logged
    for n in (3, 1):
        count(n)
        rounds.clear()
        costs = varied.vary(model, parse_varied(["1x3xT"], "T"))
        found[f"vary {n}"] = {k: str(p.coefficients) for k, p in costs.polynomials}
        found[f"vary {n} rounds"] = list(rounds)
    varied.run_all = real_run_all

    # a report whose passes run on meta and fake tensors (a large model; this one is made to count as one) measures
    # memory in a worker beside the trace and the training audit, and says what a loop says
    import importlib
    from archaudit import report_data
    audit_module = importlib.import_module("archaudit.audit")  # the module, not the function archaudit.audit
    from archaudit.render.model import report_json
    report_data.trace_device = lambda model, inputs: "meta"
    measure = audit_module.Audit.memory
    def spied(self, *args, **kwargs):
        with open(os.environ["ARCHAUDIT_TEST_PIDS"], "a") as out:
            out.write(f"{os.getpid()}\\n")
        return measure(self, *args, **kwargs)
    audit_module.Audit.memory = spied
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    for n in (2, 1):
        count(n)
        made = report_data.build_report(layer, inputs=["2x5x16"], compare=False)
        found[f"report {n}"] = report_json(made)
        found[f"report {n} memory here"] = [int(p) == me for p in open(os.environ["ARCHAUDIT_TEST_PIDS"])]
        os.remove(os.environ["ARCHAUDIT_TEST_PIDS"])
    print(json.dumps(found))
    """
)


@functools.cache
def _found() -> dict:
    with tempfile.TemporaryDirectory() as where:
        out = subprocess.run(
            [sys.executable, "-c", SCENARIOS], capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={**os.environ, "ARCHAUDIT_TEST_PIDS": str(Path(where) / "pids")},
        )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_results_come_back_in_task_order_from_children() -> None:
    assert _found()["order"]["values"] == [i * i for i in range(7)]  # the loop's answer
    assert _found()["order"]["here"] == [True, False, False, True, False, False, True]


def test_one_worker_or_another_thread_means_a_plain_loop() -> None:
    assert _found()["one worker"] == [True] * 3
    assert _found()["threaded"] == [True] * 3


def test_the_first_error_in_task_order_is_raised_with_its_type_and_message() -> None:
    assert _found()["first error"] == ["ForwardError", "second in child"]
    # the child sleeping 30 s was stopped, not waited for
    assert _found()["parent's failure"] == ["first in parent", True]


def test_an_error_that_does_not_pickle_keeps_its_message_and_its_kind() -> None:
    assert _found()["odd"] == [True, "the model at fault"]
    assert _found()["bug"] == [False, "a worker's task failed: Bug: a broken invariant"]


def test_a_child_that_dies_has_its_task_run_again_here() -> None:
    assert _found()["killed"] == [True, True]


def test_when_no_child_can_be_forked_the_tasks_run_here_in_order() -> None:
    assert _found()["no fork"] == [[0, True], [1, True], [2, True]]


def test_children_run_torch_kernels_after_the_parent_started_its_thread_pool() -> None:
    assert _found()["torch"] == [600.0 * 600 * 600] * 2


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
    assert _found()["vary 3"] == _found()["vary 1"]
    # the parameters first, one size a round (nothing to measure), then the MACs: (121, 77, 48), then
    # 148 alone with three workers; one size a round in a loop
    assert _found()["vary 3 rounds"] == [1, 1, 1, 3, 1]
    assert _found()["vary 1 rounds"] == [1] * 7
    # MACs = 4 output channels x (T - 39) positions x 3 x 40 = 480*T - 18,720
    assert _found()["vary 3"]["macs"] == str((Fraction(-18720), Fraction(480)))


def test_a_report_on_meta_measures_memory_beside_the_trace_and_says_what_a_loop_says() -> None:
    found = _found()
    assert found["report 2 memory here"] == [False]  # once, in a child
    assert found["report 1 memory here"] == [True]  # once, here
    assert found["report 2"]["memory"] is not None
    assert found["report 2"] == found["report 1"]
