"""The business calendar on real dates: 2025's Spring Festival and National Day with their
make-up Saturdays, weekends, evenings, pauses, an override year, and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fengqiao.services.tracker.calendar_file import load_calendar
from fengqiao.services.tracker.workcalendar import (
    CalendarError,
    NaiveDatetimeError,
    UnknownYear,
    WorkCalendar,
)

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


def test_the_2025_spring_festival_and_its_make_up_days(cal: WorkCalendar) -> None:
    assert not cal.is_working_day(date(2025, 1, 28))  # New Year's Eve, holiday
    assert not cal.is_working_day(date(2025, 2, 4))
    assert cal.is_working_day(date(2025, 1, 26))  # a Sunday worked (调休)
    assert cal.is_working_day(date(2025, 2, 8))  # a Saturday worked
    assert cal.is_working_day(date(2025, 2, 5))


def test_national_day_2025_and_a_plain_weekend(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2025, 9, 28))  # Sunday worked
    assert not any(cal.is_working_day(date(2025, 10, d)) for d in range(1, 9))
    assert cal.is_working_day(date(2025, 10, 11))  # Saturday worked
    assert not cal.is_working_day(date(2025, 3, 8))  # an ordinary Saturday


def test_working_time_skips_the_spring_festival(cal: WorkCalendar) -> None:
    # Monday 27 January 2025, 17:00: one working hour left that day, then the holiday until
    # 4 February; Saturday 8 February is worked.
    start = at(2025, 1, 27, 17)
    assert cal.add_working(start, timedelta(hours=1)) == at(2025, 1, 27, 18)
    assert cal.add_working(start, timedelta(hours=2)) == at(2025, 2, 5, 10)
    assert cal.add_working(start, cal.working_day * 4) == at(2025, 2, 8, 17)  # 5,6,7,8 Feb


def test_an_evening_start_counts_from_the_next_opening(cal: WorkCalendar) -> None:
    friday_evening = at(2025, 3, 7, 21, 30)
    assert cal.add_working(friday_evening, timedelta(hours=2)) == at(2025, 3, 10, 11)
    assert cal.add_working(friday_evening, cal.working_day) == at(2025, 3, 10, 18)
    assert cal.next_office_instant(friday_evening) == at(2025, 3, 10, 9)
    assert cal.next_office_instant(at(2025, 3, 10, 12, 30)) == at(2025, 3, 10, 13, 30)
    assert cal.next_office_instant(at(2025, 3, 10, 10)) == at(2025, 3, 10, 10)


def test_working_time_between_two_instants(cal: WorkCalendar) -> None:
    assert cal.working_between(at(2025, 3, 7, 17), at(2025, 3, 10, 10)) == timedelta(hours=2)
    assert cal.working_between(at(2025, 3, 10, 10), at(2025, 3, 7, 17)) == timedelta(0)
    week = cal.working_between(at(2025, 3, 10, 0), at(2025, 3, 17, 0))
    assert week == cal.working_day * 5 == timedelta(hours=37.5)


def test_the_next_working_day_after_a_holiday_eve(cal: WorkCalendar) -> None:
    assert cal.next_working_day_start(at(2025, 9, 30, 16)) == at(2025, 10, 9, 9)
    assert cal.next_working_day_start(at(2025, 3, 7, 10)) == at(2025, 3, 10, 9)


def test_a_pause_moves_the_deadline_by_the_paused_working_time(cal: WorkCalendar) -> None:
    start = at(2025, 3, 10, 9)
    # Waiting for the citizen from Monday 11:00 to Tuesday 10:00: 4.5 working hours paused.
    pause = (at(2025, 3, 10, 11), at(2025, 3, 11, 10))
    plain = cal.add_working(start, timedelta(hours=5))
    assert plain == at(2025, 3, 10, 15, 30)
    # 2 h before the pause, then Tuesday 10:00–12:00 and 13:30–14:30.
    assert cal.add_working(start, timedelta(hours=5), [pause]) == at(2025, 3, 11, 14, 30)
    assert cal.working_between(start, at(2025, 3, 11, 14, 30), [pause]) == timedelta(hours=5)
    # A calendar clock moves by the paused calendar time (23 h).
    assert cal.add_calendar(start, timedelta(hours=5), [pause]) == start + timedelta(hours=28)
    assert cal.calendar_between(start, start + timedelta(hours=28), [pause]) == timedelta(hours=5)


def test_utc_and_shanghai_inputs_mean_the_same_instant(cal: WorkCalendar) -> None:
    # 01:00 UTC is 09:00 in Shanghai (no daylight saving time there).
    utc = datetime(2025, 3, 10, 1, tzinfo=UTC)
    assert cal.in_office_hours(utc)
    assert cal.add_working(utc, timedelta(hours=1)) == at(2025, 3, 10, 10)
    assert cal.add_working(utc, timedelta(hours=1)).tzinfo == SH
    july = datetime(2025, 7, 1, 0, 30, tzinfo=UTC)  # summer: still +08:00
    assert cal.local(july).hour == 8 and not cal.in_office_hours(july)


def test_naive_datetimes_are_refused(cal: WorkCalendar) -> None:
    with pytest.raises(NaiveDatetimeError):
        cal.add_working(datetime(2025, 3, 10, 9), timedelta(hours=1))
    with pytest.raises(NaiveDatetimeError):
        cal.add_working(
            at(2025, 3, 10, 9), timedelta(hours=1), [(datetime(2025, 3, 10), at(2025, 3, 11))]
        )


def test_a_year_nobody_knows_fails_loudly_naming_the_year_and_the_file(cal: WorkCalendar) -> None:
    with pytest.raises(UnknownYear, match=r"2031.*calendar_overrides\.yaml"):
        cal.is_working_day(date(2031, 3, 3))


OVERRIDES = """
timezone: Asia/Shanghai
office_hours:
  - {start: "10:00", end: "14:00"}
  - {start: "16:00", end: "20:00"}
years:
  2031:
    source: test
    holidays:
      - {from: 2031-01-01, to: 2031-01-02, name: 元旦}
    workdays:
      - {date: 2031-01-04, name: 调休}
  2025:
    holidays:
      - {date: 2025-03-10, name: a regional holiday}
"""


def test_an_override_year_and_an_override_that_wins_over_the_package(tmp_path: Path) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(OVERRIDES, encoding="utf-8")
    cal = load_calendar(path)
    assert not cal.is_working_day(date(2031, 1, 1))
    assert cal.is_working_day(date(2031, 1, 3))  # a Friday not listed: works
    assert cal.is_working_day(date(2031, 1, 4))  # a Saturday listed as worked
    assert not cal.is_working_day(date(2031, 1, 5))
    assert not cal.is_working_day(date(2025, 3, 10))  # the package says workday; the file wins
    assert cal.working_day == timedelta(hours=8)
    assert cal.add_working(at(2031, 1, 3, 13), timedelta(hours=2)) == at(2031, 1, 3, 17)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("office_hours: [{start: '12:00', end: '09:00'}]", r"office_hours\.0"),
        ("office_hours: [{start: '09:00', end: '12:00'}]\ntimezone: Mars/Base", "Mars/Base"),
        (
            "office_hours: [{start: '09:00', end: '12:00'}]\n"
            "years: {2031: {holidays: [{date: 2030-12-31}]}}",
            r"years\.2031\.holidays\.0: 2030-12-31",
        ),
        (
            "office_hours: [{start: '09:00', end: '12:00'}]\n"
            "years: {2031: {holidays: [{date: 2031-01-01}], workdays: [{date: 2031-01-01}]}}",
            "both a holiday and a workday: 2031-01-01",
        ),
    ],
)
def test_a_bad_calendar_file_is_refused_naming_the_entry(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match=error):
        load_calendar(path)


def test_2027_is_known_provisionally_so_december_clocks_can_run_into_it() -> None:
    calendar = load_calendar()
    assert not calendar.is_working_day(date(2027, 1, 1))  # 元旦
    assert not calendar.is_working_day(date(2027, 2, 8))  # 春节, 初三
    assert calendar.is_working_day(date(2027, 2, 9))
    assert not calendar.is_working_day(date(2027, 1, 2))  # a Saturday


def test_remembered_office_periods_give_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh, remembering = load_calendar(), load_calendar()
    assert fresh == remembering and hash(fresh) == hash(remembering)
    # A few days remembered at most: the answers stay the same as the cache fills and empties.
    monkeypatch.setattr("fengqiao.services.tracker.workcalendar.MAX_CACHED_DAYS", 3)
    start = at(2025, 1, 27, 17)
    for hours in (1, 2, 30, 1, 2, 30):
        assert remembering.add_working(start, timedelta(hours=hours)) == fresh.add_working(
            start, timedelta(hours=hours)
        )
    assert remembering.add_working(start, timedelta(hours=2)) == at(2025, 2, 5, 10)
    assert len(remembering._days) <= 3
    # The caller's list is its own: changing it changes nothing remembered.
    periods = remembering.office_periods(date(2025, 3, 10))
    periods.clear()
    assert remembering.office_periods(date(2025, 3, 10)) == fresh.office_periods(date(2025, 3, 10))
    assert remembering.office_periods(date(2025, 3, 10)) != []
    # An unknown year is refused every time, not remembered as a day off.
    for _ in range(2):
        with pytest.raises(UnknownYear):
            remembering.office_periods(date(2031, 3, 3))


def walked(cal: WorkCalendar, start: datetime, duration: timedelta) -> datetime:
    """Working time added the plain way: office period after office period."""
    start, day = cal.local(start), cal.local(start).date()
    while True:
        for a, b in cal.office_periods(day):
            if b > start:
                a = max(a, start)
                if duration <= b - a:
                    return a + duration
                duration -= b - a
        day += timedelta(days=1)


@pytest.mark.parametrize(
    "duration",
    [
        timedelta(minutes=30),
        timedelta(hours=3, minutes=30),  # the morning period exactly
        timedelta(hours=7, minutes=30),  # one working day exactly: ends at closing time
        timedelta(hours=7, minutes=31),
        timedelta(hours=22, minutes=30),  # three working days
        timedelta(hours=112, minutes=30),  # fifteen
    ],
)
def test_whole_days_skipped_at_once_land_where_walking_the_periods_does(
    cal: WorkCalendar, duration: timedelta
) -> None:
    # Every 37 minutes through the 2025 Spring Festival, its make-up Saturdays and weekends.
    start = at(2025, 1, 20, 0, 3)
    while start < at(2025, 2, 20):
        expected = walked(cal, start, duration)
        assert cal.add_working(start, duration) == expected, start
        # The same through the general path (a pause of no length changes nothing).
        assert cal.add_working(start, duration, [(start, start)]) == expected, start
        start += timedelta(minutes=37)
