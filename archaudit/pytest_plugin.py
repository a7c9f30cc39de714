"""pytest plugin (entry point ``pytest11``): state a model's budget in one line.

* the ``budget`` fixture is :func:`archaudit.assert_budget`::

      def test_model_fits(budget):
          budget(build_model(), params=2_000_000, macs=5e8, input="1x30x17")

* the ``budget`` marker holds the test's ``model`` fixture to limits after the test body has run::

      @pytest.mark.budget(params=2_000_000, macs=(1e8, 5e8), input="1x30x17")
      def test_forward(model):
          ...

A model over its budget fails the test with the table of limits, measured values and margins.
Importing this plugin imports nothing heavy: archaudit (and torch) load only when a budget is checked.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "budget(params=, trainable=, macs=, flops=, size_mb=, input=, allow_unsupported=): hold the test's "
        "`model` fixture to these limits (archaudit)",
    )


@pytest.fixture
def budget():
    """``budget(model, params=..., macs=..., input=...)``: :func:`archaudit.assert_budget`."""
    from archaudit.budget import assert_budget

    return assert_budget


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    marker = item.get_closest_marker("budget")
    if marker is not None:
        funcargs = getattr(item, "funcargs", {})
        if "model" not in funcargs:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.budget needs the test to take a `model` fixture")
        from archaudit.budget import assert_budget

        assert_budget(funcargs["model"], name=item.name, **marker.kwargs)
    return result
