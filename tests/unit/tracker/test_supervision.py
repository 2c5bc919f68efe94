"""Supervision (督办) per unit: overdue, late to sign, due within 24 working hours (on the
working calendar), escalated, worst first."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fengqiao.contracts import CaseState
from fengqiao.services.tracker.calendar_file import load_calendar
from fengqiao.services.tracker.domain import Case
from fengqiao.services.tracker.supervision import supervise

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=TZ)  # a Monday, in office hours
CHAIN = ("xj", "652700", "652701")


def case(case_id: str, deadline: dt.datetime, **fields: object) -> Case:
    base: dict[str, object] = {
        "case_id": case_id, "opened": True, "state": CaseState.ACCEPTED, "chain": CHAIN,
        "assigned_unit": CHAIN[-1], "deadline": deadline.astimezone(dt.UTC).isoformat(),
        "signed_at": NOW.isoformat(),
    }  # fmt: skip
    return Case(**{**base, **fields})  # type: ignore[arg-type]


def flags_of(result: dict[str, object], case_id: str) -> dict[str, object]:
    for row in result["units"]:  # type: ignore[attr-defined]
        for listed in row["cases"]:
            if listed["case_id"] == case_id:
                return dict(listed)
    return {}


def test_soon_is_counted_in_working_hours_and_a_paused_clock_is_not_soon() -> None:
    tomorrow = NOW + dt.timedelta(days=1)  # one working day's office hours away
    next_week = NOW + dt.timedelta(days=7)  # five working days away
    friday_night = dt.datetime(2026, 12, 11, 20, 0, tzinfo=TZ)
    result = supervise(
        [case("soon", tomorrow), case("later", next_week),
         case("paused", tomorrow, paused_since=NOW.isoformat())],
        NOW, load_calendar(),
    )  # fmt: skip
    assert flags_of(result, "soon")["soon"] is True
    assert flags_of(result, "later") == {}  # nothing to chase: counted, not listed
    assert flags_of(result, "paused") == {}
    [row] = result["units"]  # type: ignore[misc]
    assert (row["open"], row["soon"], row["overdue"]) == (3, 1, 0)
    # Due on Friday at 20:00, seen at 17:00: two hours away, but only office time counts.
    late = supervise([case("weekend", friday_night)], friday_night - dt.timedelta(hours=3),
                     load_calendar(), dt.timedelta(hours=2))  # fmt: skip
    assert late["total"]["soon"] == 1  # type: ignore[index]


def test_overdue_late_to_sign_and_escalated_cases_come_first() -> None:
    yesterday = NOW - dt.timedelta(days=1)
    result = supervise(
        [
            case("passed", yesterday),  # the sweep has not marked it yet
            case("escalated", NOW + dt.timedelta(days=7), escalation_level=1),
            case("unsigned", NOW + dt.timedelta(days=9), state=CaseState.DISPATCHED,
                 signed_at=None, sign_due=yesterday.isoformat(), assigned_unit="652702",
                 chain=("xj", "652700", "652702")),
            case("closed", yesterday, state=CaseState.CLOSED),
            case("fine", NOW + dt.timedelta(days=9), assigned_unit="652722",
                 chain=("xj", "652700", "652722")),
        ],
        NOW, load_calendar(),
    )  # fmt: skip
    units = [row["unit"] for row in result["units"]]  # type: ignore[attr-defined]
    assert units == ["652701", "652702", "652722"]
    first = result["units"][0]  # type: ignore[index]
    assert (first["open"], first["overdue"], first["escalated"]) == (2, 1, 1)
    assert [c["case_id"] for c in first["cases"]] == ["passed", "escalated"]
    assert flags_of(result, "passed")["hours_left"] < 0
    assert flags_of(result, "escalated")["supervisor"] == "652700"
    assert flags_of(result, "unsigned")["sign_late"] is True
    total = result["total"]
    assert total == {"unit": "total", "open": 4, "overdue": 1, "sign_late": 1, "soon": 0,
                     "escalated": 1}  # fmt: skip
