"""The workbench's SVG charts' geometry (charts.py) and how its statistics show figures."""

from __future__ import annotations

from fengqiao.services.workbench import charts
from fengqiao.services.workbench.statistics import shown


def test_bars_scale_to_the_largest_or_to_a_rates_top_and_keep_a_place_for_no_figure() -> None:
    drawn = charts.bars([("a", 2.0, "2"), ("b", None, "—"), ("c", 4.0, "4")])
    assert [b.height for b in drawn.bars] == [60, 0, charts.BAR_HEIGHT]
    assert drawn.bars[1].x > drawn.bars[0].x and drawn.bars[2].y == 0
    rates = charts.bars([("a", 0.5, "50%")], top=1.0)
    assert rates.bars[0].height == charts.BAR_HEIGHT // 2
    assert charts.bars([]).bars == []


def test_a_month_without_a_figure_breaks_the_line() -> None:
    drawn = charts.lines(["2026-10", "2026-11", "2026-12"], {"st_response": [1.0, None, 0.0]})
    [line] = drawn.lines
    assert len(line.segments) == 2 and [d[2] for d in line.dots] == ["100%", "0%"]
    assert line.dots[0][1] < line.dots[1][1]  # 100% above 0%
    assert [m for _, m in drawn.ticks] == ["2026-10", "2026-11", "2026-12"]


def test_figures_are_shown_as_people_read_them() -> None:
    assert shown("resolution_rate", 0.3333) == "33.3%"
    assert shown("amount_recovered", 12000) == "12,000.00"
    assert shown("median_sign_hours", 2.345) == "2.3"
    assert shown("volume", 4) == "4" and shown("satisfaction_rate", None) == "—"
