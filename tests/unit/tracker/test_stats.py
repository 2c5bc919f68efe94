"""Statistics per unit and tier: each rate counted from cases built by the domain itself."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from fengqiao.services.tracker import domain, stats
from fengqiao.services.tracker.cli import format_table
from tests.unit.tracker.cases import (
    PLAIN,
    T0,
    A,
    action,
    answer,
    asked,
    dispatched,
    fire,
    resolved,
)

SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=1)


def cases() -> list[domain.Case]:
    satisfied = answer(asked(), "满意")
    no_answer = fire(asked(), "callback")
    overdue = fire(fire(fire(dispatched(), "feedback"), "feedback"), "feedback")  # 50 %, 80 %, due
    returned = domain.act(dispatched(), action(A.RETURN, reason_code="x"), rules=PLAIN)
    assert satisfied is not None
    return [
        replace(satisfied, case_id="c-a"),
        replace(no_answer, case_id="c-b"),
        replace(overdue, case_id="c-c"),
        replace(returned, case_id="c-d"),
        replace(resolved(), case_id="c-old", received_at=(T0 - timedelta(days=9)).isoformat()),
    ]


def test_the_rates_of_one_unit() -> None:
    report = stats.compute(cases(), SINCE, UNTIL)
    [row] = report.units
    assert row["unit"] == "652701"
    assert row["volume"] == 4  # c-old was received before the period
    assert row["response_rate"] == 0.5  # a and b signed in time; c and d never signed
    assert row["resolution_rate"] == 0.5
    assert row["satisfaction_rate"] == 1.0 and row["no_answer"] == 1
    assert row["on_time_rate"] == 1.0
    assert row["overdue_open"] == 1 and row["returns"] == 1
    assert row["amount_recovered"] == 6000.0
    assert row["median_resolution_hours"] == 2.0
    assert [t["tier"] for t in report.tiers] == ["county"]
    assert report.total["volume"] == 4


def test_a_unit_sees_its_own_figures_and_those_below_it_only() -> None:
    assert stats.compute(cases(), SINCE, UNTIL, unit="652700").total["volume"] == 4
    assert stats.compute(cases(), SINCE, UNTIL, unit="652702").total["volume"] == 0


def test_no_cases_give_no_rates_rather_than_zero() -> None:
    report = stats.compute([], SINCE, UNTIL)
    assert report.units == [] and report.total["response_rate"] is None


def test_the_table_and_the_json_carry_the_same_figures() -> None:
    report = stats.compute(cases(), SINCE, UNTIL)
    table = format_table(report)
    assert "652701" in table and "[county]" in table and "TOTAL" in table and "50%" in table
    data = json.loads(json.dumps(report.as_dict()))
    assert data["units"][0]["volume"] == 4 and data["since"] == SINCE.isoformat()


def test_a_merged_duplicate_is_counted_apart_not_in_the_rates() -> None:
    merge = action(A.MERGE, unit="xj", minutes=40, into_case_id="c-a")
    merged = replace(domain.act(dispatched(), merge, rules=PLAIN), case_id="c-m")
    report = stats.compute([*cases(), merged], SINCE, UNTIL)
    assert report.total["volume"] == 4 and report.total["merged"] == 1
    assert report.total["response_rate"] == 0.5  # as without it


def test_the_table_formats_each_figure_by_its_kind_and_aligns_chinese_headers() -> None:
    from rich.cells import cell_len

    from fengqiao.services.tracker.cli import cell

    assert cell("response_rate", 0.5) == "50%" and cell("response_rate", None) == "–"
    assert cell("median_sign_hours", 0.0) == "0.0"  # not "0%"
    assert cell("median_resolution_hours", 1.0) == "1.0"
    assert cell("amount_recovered", 0.0) == "0" and cell("amount_recovered", 100000) == "100,000"
    lines = format_table(stats.compute(cases(), SINCE, UNTIL)).splitlines()[1:]
    header = lines[0]
    # Each column starts where its header does, whatever the width of its characters.
    starts = [cell_len(header[: header.index(h)]) for h in ("解决率", "满意率", "on time")]
    for row in lines[1:]:
        cells = [i for i in range(1, len(row)) if row[i] != " " and row[i - 1] == " "]
        offsets = {cell_len(row[:i]) for i in cells}
        assert set(starts) <= offsets, row
