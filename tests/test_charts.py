"""Charts format what the report computed: the component chart's percentages are the table's shares (largest
remainder, adding to 100.0), never recomputed from the counts."""

from __future__ import annotations

import importlib.util

import re

import pytest

# Found, not imported: importing matplotlib at collection would cost every pytest-xdist worker its import time.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib is not installed (the charts extra)")

from archaudit.render.charts import distribution_svg, text_bars  # noqa: E402
from archaudit.report_data import shares  # noqa: E402


def _labels(svg: str) -> list[str]:
    return re.findall(r"\(([0-9.]+)%\)", svg)


def test_the_chart_shows_the_tables_shares():
    # exact shares 33.33.., 33.33.., 33.33..: largest remainder gives 33.4, 33.3, 33.3 (they add to 100.0);
    # each recomputed on its own would print 33.3 three times
    table = shares([("a", "", 1), ("b", "", 1), ("c", "", 1)], 3)
    assert [s.percent for s in table] == [33.4, 33.3, 33.3]
    svg = distribution_svg(table, "t")
    assert svg is not None
    assert sorted(_labels(svg)) == sorted(f"{s.percent:.1f}" for s in table)


def test_text_bars_show_the_tables_shares():
    table = shares([("cnn", "", 402_048), ("lstm", "", 9_455_616), ("rest", "", 2_761_601)], 12_619_265)
    assert sum(s.percent for s in table) == pytest.approx(100.0)
    shown = re.findall(r"([0-9.]+)%", text_bars(table))
    assert shown == [f"{s.percent:.1f}" for s in table]
