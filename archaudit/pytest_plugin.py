"""pytest plugin (entry point ``pytest11``): state a model's budget in one line.

* the ``budget`` fixture is :func:`archaudit.assert_budget`::

      def test_model_fits(budget):
          budget(build_model(), params=2_000_000, macs=5e8, input="1x30x17")

* the ``budget`` marker holds the test's ``model`` fixture to limits after the test body has run::

      @pytest.mark.budget(params=2_000_000, macs=(1e8, 5e8), input="1x30x17")
      def test_forward(model):
          ...

The memory limits (``memory_mb``, ``train_memory_mb`` with ``optimizer=`` and ``precision=``) and a baseline
(``baseline="baselines/model.json", max_growth_pct=5``, a path relative to the working directory) are
:func:`archaudit.assert_budget`'s, in the marker as in the fixture.

A model over its budget fails the test with the table of limits, measured values and margins. A marker that
would check nothing fails the test naming it: a positional argument, a misspelt keyword, a value of the wrong
type (``allow_unsupported="false"``, ``input=(0, 17)``).
Importing this plugin imports nothing heavy: archaudit (and torch) load only when a budget is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from archaudit.budgets.check import BudgetResult


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "budget(params=, trainable=, macs=, flops=, size_mb=, memory_mb=, train_memory_mb=, input=, optimizer=, "
        "precision=, baseline=, max_growth_pct=, allow_unsupported=): hold the test's `model` fixture to these "
        "limits (archaudit)",
    )


@pytest.fixture
def budget() -> Callable[..., BudgetResult]:
    """``budget(model, params=..., macs=..., input=...)``: :func:`archaudit.assert_budget`."""
    from archaudit.budgets.check import assert_budget

    return assert_budget


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    marker = item.get_closest_marker("budget")
    if marker is not None:
        funcargs = getattr(item, "funcargs", {})
        if "model" not in funcargs:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.budget needs the test to take a `model` fixture")
        _check_marker(item, marker, funcargs["model"])
    return result


def _check_marker(item: pytest.Item, marker: pytest.Mark, model: Any) -> None:
    """Hold ``model`` to the marker's limits. A marker that would check nothing (a positional argument, a
    misspelt keyword, ``allow_unsupported="false"``, ``input=(0, 17)``) fails the test naming it."""
    __tracebackhide__ = True
    from archaudit.budgets.check import KINDS, OPTIONS, BudgetError, assert_budget
    from archaudit.tomlfile import shown, unknown_message

    # assert_budget's keywords; name: the test's by default
    known = (*KINDS, "input", *OPTIONS, "allow_unsupported", "name")
    where = f"{item.nodeid}: @pytest.mark.budget"
    if marker.args:
        raise BudgetError(f"{where} takes keywords only (params=..., macs=...), got {shown(marker.args)}")
    unknown = [key for key in marker.kwargs if key not in known]
    if unknown:
        raise BudgetError(f"{where}: {unknown_message(unknown, known)}")
    try:
        assert_budget(model, **{"name": item.name, **marker.kwargs})
    except BudgetError as exc:
        raise BudgetError(f"{where}: {exc}") from None
