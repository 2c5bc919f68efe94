"""Time limits as data: classes, categories, deployment overrides, reminders, notices."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fengqiao.services.tracker.calendar_file import load_calendar
from fengqiao.services.tracker.timelimits import Kind, TimeLimits, TimeLimitsError, load_time_limits
from fengqiao.services.tracker.workcalendar import WorkCalendar

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


@pytest.fixture(scope="module")
def limits() -> TimeLimits:
    return load_time_limits()


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


FRIDAY_EVENING = at(2025, 3, 7, 22)


def test_urgent_counts_calendar_hours_through_the_night(
    limits: TimeLimits, cal: WorkCalendar
) -> None:
    due = limits.deadline(Kind.FEEDBACK, "urgent", None, FRIDAY_EVENING, cal)
    assert due == at(2025, 3, 8, 0)
    assert limits.deadline(Kind.ACKNOWLEDGMENT, "urgent", None, FRIDAY_EVENING, cal) == due


def test_timely_counts_24_calendar_hours(limits: TimeLimits, cal: WorkCalendar) -> None:
    assert limits.deadline(Kind.FEEDBACK, "timely", None, FRIDAY_EVENING, cal) == at(2025, 3, 8, 22)


def test_general_and_complex_count_working_days(limits: TimeLimits, cal: WorkCalendar) -> None:
    start = at(2025, 9, 26, 10)  # Friday before National Day; Sunday 28 Sept is worked
    # 7 working days: 26 (from 10:00), 28, 29, 30 Sept, 9, 10, 11 Oct (a worked Saturday).
    assert limits.deadline(Kind.FEEDBACK, "general", None, start, cal) == at(2025, 10, 13, 10)
    assert limits.deadline(Kind.FEEDBACK, "complex", None, start, cal) == at(2025, 10, 23, 10)


def test_a_category_overrides_its_class(limits: TimeLimits, cal: WorkCalendar) -> None:
    start = at(2025, 3, 10, 10)
    consult = limits.deadline(Kind.FEEDBACK, "general", "legal_consultation", start, cal)
    assert consult == at(2025, 3, 17, 10)
    assert limits.deadline(Kind.FEEDBACK, "general", "wage_arrears", start, cal) == at(
        2025, 3, 19, 10
    )


def test_the_callback_is_asked_the_next_working_day_and_answered_within_three(
    limits: TimeLimits, cal: WorkCalendar
) -> None:
    resolved = at(2025, 9, 30, 15)
    ask = limits.deadline(Kind.CALLBACK_ASK, "general", None, resolved, cal)
    assert ask == at(2025, 10, 9, 9)
    assert limits.deadline(Kind.CALLBACK_ANSWER, "general", None, ask, cal) == at(2025, 10, 11, 18)
    assert limits.reminders(Kind.CALLBACK_ASK, "general", None, resolved, cal) == []


def test_reminders_at_half_and_eighty_percent_wait_for_office_hours(
    limits: TimeLimits, cal: WorkCalendar
) -> None:
    # Timely, 24 h from Monday 20:00: 50 % is Tuesday 08:00 (before opening) → 09:00;
    # 80 % is Tuesday 15:12.
    start = at(2025, 3, 10, 20)
    assert limits.reminders(Kind.FEEDBACK, "timely", None, start, cal) == [
        at(2025, 3, 11, 9),
        at(2025, 3, 11, 15, 12),
    ]


def test_urgent_reminders_go_out_at_night(limits: TimeLimits, cal: WorkCalendar) -> None:
    assert limits.reminders(Kind.FEEDBACK, "urgent", None, FRIDAY_EVENING, cal) == [
        at(2025, 3, 7, 23),
        at(2025, 3, 7, 23, 36),
    ]
    assert limits.notice_time(FRIDAY_EVENING, "urgent", None, cal) == FRIDAY_EVENING
    assert limits.notice_time(FRIDAY_EVENING, "general", None, cal) == at(2025, 3, 10, 9)


def test_a_reminder_that_would_wait_past_the_deadline_is_dropped(cal: WorkCalendar) -> None:
    limits = load_time_limits(overrides=[{"classes": {"timely": {"feedback": "10 hours"}}}])
    # 21:00 + 10 h = 07:00; both reminders fall at night and would wait until 09:00.
    assert limits.reminders(Kind.FEEDBACK, "timely", None, at(2025, 3, 10, 21), cal) == []


def test_pauses_move_deadline_and_reminders(limits: TimeLimits, cal: WorkCalendar) -> None:
    start = at(2025, 3, 10, 9)
    pause = (at(2025, 3, 10, 10), at(2025, 3, 12, 10))  # two working days waiting
    due = limits.deadline(Kind.FEEDBACK, "general", None, start, cal, [pause])
    assert due == limits.deadline(Kind.FEEDBACK, "general", None, start, cal) + timedelta(days=2)


def test_escalation_comes_a_grace_period_after_the_deadline(
    limits: TimeLimits, cal: WorkCalendar
) -> None:
    assert limits.escalation_at(at(2025, 3, 7, 17), "general", None, cal) == at(2025, 3, 10, 17)
    assert limits.escalation_at(at(2025, 3, 7, 23), "urgent", None, cal) == at(2025, 3, 7, 23, 30)


def test_a_deployment_file_then_settings_override_single_values(
    tmp_path: Path, cal: WorkCalendar
) -> None:
    deployment = tmp_path / "limits.yaml"
    deployment.write_text(
        "defaults:\n  reminders: [0.25]\nclasses:\n  urgent:\n    feedback: 4 hours\n",
        encoding="utf-8",
    )
    limits = load_time_limits(
        overrides=[deployment, {"classes": {"urgent": {"signing": "15 minutes"}}}]
    )
    urgent = limits.limits("urgent")
    assert urgent.durations[Kind.FEEDBACK].text == "4 hours"
    assert urgent.durations[Kind.SIGNING].text == "15 minutes"
    assert urgent.durations[Kind.FIRST_PROGRESS].text == "1 hours"  # untouched
    assert urgent.reminders == (0.25,)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"classes": {"general": {"feedback": "7 wrking days"}}}, r"classes\.general\.feedback"),
        ({"classes": {"urgnt": {"feedback": "1 hours"}}}, r"classes\.urgnt"),
        ({"defaults": {"reminders": [0.5, 1.2]}}, r"defaults\.reminders"),
        ({"categories": {"minors": {"classes": {"general": {"sign": "1 hours"}}}}}, "sign"),
        ({"defaults": {"feedback": None}}, "missing feedback"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(override: dict[str, object], error: str) -> None:
    with pytest.raises(TimeLimitsError, match=error):
        load_time_limits(overrides=[override])


def test_an_unknown_urgency_class_is_refused(limits: TimeLimits) -> None:
    with pytest.raises(TimeLimitsError, match="unknown urgency class 'soon'"):
        limits.limits("soon")


def test_the_limits_of_a_class_and_category_are_merged_once_and_read_only(
    limits: TimeLimits,
) -> None:
    legal = limits.limits("general", "legal_consultation")
    assert limits.limits("general", "legal_consultation") is legal
    assert legal.durations[Kind.FEEDBACK].text == "5 working days"  # the category's own
    # A category the file does not name has the class's limits, whatever its name.
    assert limits.limits("general", "no_such_category") is limits.limits("general", None)
    assert limits.limits("general", "another_one") is limits.limits("general")
    assert limits.limits("general").durations[Kind.FEEDBACK].text == "7 working days"
    with pytest.raises(TypeError):
        legal.durations[Kind.FEEDBACK] = legal.durations[Kind.SIGNING]  # type: ignore[index]
    # A refused class is refused every time, not remembered as something else.
    for _ in range(2):
        with pytest.raises(TimeLimitsError, match="unknown urgency class 'soon'"):
            limits.limits("soon", "legal_consultation")
