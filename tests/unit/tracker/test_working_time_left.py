"""The unit API's cases carry their clocks' working time left: office hours (9:00–12:00,
13:30–18:00 in Beijing) on working days, not the wall clock's (issue 19, deliver 5)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fengqiao.services.tracker import domain
from fengqiao.services.tracker.supervision import with_working_time

BEIJING = ZoneInfo("Asia/Shanghai")
CALENDAR = domain.Rules.default().calendar
MONDAY_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=BEIJING)  # a working Monday


def doc(**fields: object) -> dict[str, object]:
    return {"state": "dispatched", "paused_since": None, "signed_at": None, **fields}


def test_the_working_hours_to_a_deadline_skip_lunch_the_night_and_the_weekend() -> None:
    tuesday_10 = dt.datetime(2026, 12, 8, 10, 0, tzinfo=BEIJING)
    shown = with_working_time(doc(deadline=tuesday_10.isoformat()), MONDAY_10, CALENDAR)
    assert shown["deadline_working_hours"] == 7.5  # 2 + 4.5 on Monday, 1 on Tuesday
    friday_17 = dt.datetime(2026, 12, 11, 17, 0, tzinfo=BEIJING)
    monday_10 = dt.datetime(2026, 12, 14, 10, 0, tzinfo=BEIJING)
    over = with_working_time(doc(deadline=friday_17.isoformat()), monday_10, CALENDAR)
    assert over["deadline_working_hours"] == -2.0  # Friday 17–18, Monday 9–10; not the weekend


def test_no_working_time_for_a_clock_that_is_stopped() -> None:
    due = (MONDAY_10 + dt.timedelta(hours=2)).isoformat()
    signed = with_working_time(doc(sign_due=due, signed_at=due, deadline=due), MONDAY_10, CALENDAR)
    assert signed["sign_due_working_hours"] is None and signed["deadline_working_hours"] == 2.0
    paused = with_working_time(doc(deadline=due, paused_since=due), MONDAY_10, CALENDAR)
    assert paused["deadline_working_hours"] is None  # waiting for the citizen
    done = with_working_time(doc(state="resolved", deadline=due), MONDAY_10, CALENDAR)
    assert done["deadline_working_hours"] is None
    assert with_working_time(doc(), MONDAY_10, CALENDAR)["deadline_working_hours"] is None
