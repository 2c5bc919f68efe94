"""The business calendar: which days are working days, office hours, and working-time arithmetic.

Working days follow China's official holiday calendar with its make-up working days (调休), from
the maintained `chinese-calendar` package, corrected and extended by `data/calendar_overrides.yaml`
(read by `calendar_file.py`; precedence for one date: a date listed in the file > the package >
a year listed in the file, whose unlisted dates are Monday–Friday > `UnknownYear`). A date that
neither source knows is an error naming the year and the file to edit, never silently a workday.

Everything here is pure: instants come in as arguments (timezone-aware; naive ones are refused)
and instants go out in the calendar's time zone (Asia/Shanghai by default).

Pauses: a clock stops while the case waits for the citizen. Every function that runs a clock
takes `pauses`, closed intervals `(start, end)`; time inside them does not count, so a deadline
moves by the paused time that falls before it. An open pause has no deadline at all: the caller
cancels the timer when the pause starts and computes the deadline again when it ends.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = [
    "DEFAULT_CALENDAR_FILE",
    "CalendarError",
    "NaiveDatetimeError",
    "Pause",
    "UnknownYear",
    "WorkCalendar",
]

DEFAULT_CALENDAR_FILE = Path(__file__).parent / "data" / "calendar_overrides.yaml"

# No clock runs longer than this; a loop past it means a calendar without working days.
MAX_SPAN_DAYS = 3 * 366
MAX_CACHED_DAYS = 4 * 366  # the days whose office periods a calendar remembers

Pause = tuple[dt.datetime, dt.datetime]
Period = tuple[dt.datetime, dt.datetime]


class CalendarError(Exception):
    """The calendar file is invalid, or a computation cannot be done with it."""


class UnknownYear(CalendarError):
    """A date in a year that neither `chinese-calendar` nor the overrides file knows."""

    def __init__(self, year: int, source: Path) -> None:
        super().__init__(
            f"no holiday calendar for {year}: chinese-calendar {_package_version()} does not know "
            f"it; add `years: {{{year}: ...}}` to {source} from the State Council's notice "
            f"on {year}'s holidays"
        )
        self.year, self.source = year, source


class NaiveDatetimeError(CalendarError, ValueError):
    """An instant without a time zone: its meaning would depend on the machine."""


def _package_version() -> str:
    return str(getattr(chinese_calendar, "__version__", "?"))


@functools.lru_cache(maxsize=4096)
def _statutory_workday(day: dt.date) -> bool | None:
    """chinese-calendar's answer for `day`, None for a year it does not know. Cached: every
    deadline asks it about the same few weeks (it was 8 % of a tracker's time per case event)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and office hours of one deployment (`calendar_file.load_calendar`)."""

    timezone: ZoneInfo
    office_hours: tuple[tuple[dt.time, dt.time], ...]
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    years: frozenset[int] = frozenset()
    source: Path = DEFAULT_CALENDAR_FILE
    # Each day's office periods and their working time, computed once (every deadline walks the
    # same few weeks); not part of the calendar's value.
    _days: dict[dt.date, tuple[tuple[Period, ...], dt.timedelta]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        """Whether offices work on `day` (a local date). Raises `UnknownYear`."""
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        statutory = _statutory_workday(day)
        if statutory is not None:
            return statutory
        if day.year in self.years:
            return day.weekday() < 5
        raise UnknownYear(day.year, self.source)

    @functools.cached_property
    def working_day(self) -> dt.timedelta:
        """The working time in one working day (what "1 working day" adds)."""
        today = dt.date(2000, 1, 3)
        return sum(
            (
                _at(today, b, self.timezone) - _at(today, a, self.timezone)
                for a, b in self.office_hours
            ),
            dt.timedelta(0),
        )

    def office_periods(self, day: dt.date) -> list[Period]:
        """The office periods of `day` as aware instants; empty on a day off."""
        return list(self._periods_of(day))

    def _periods_of(self, day: dt.date) -> tuple[Period, ...]:
        return self._day(day)[0]

    def _day(self, day: dt.date) -> tuple[tuple[Period, ...], dt.timedelta]:
        """The office periods of `day` and the working time in them."""
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= MAX_CACHED_DAYS:
                self._days.clear()
            periods = (
                tuple(
                    (_at(day, a, self.timezone), _at(day, b, self.timezone))
                    for a, b in self.office_hours
                )
                if self.is_working_day(day)
                else ()
            )
            total = sum((b - a for a, b in periods), dt.timedelta(0))
            known = self._days[day] = (periods, total)
        return known

    # -- instants ---------------------------------------------------------------------------

    def local(self, at: dt.datetime) -> dt.datetime:
        """`at` in the calendar's time zone."""
        return _aware(at).astimezone(self.timezone)

    def in_office_hours(self, at: dt.datetime) -> bool:
        at = self.local(at)
        return any(a <= at < b for a, b in self.office_periods(at.date()))

    def next_office_instant(self, at: dt.datetime) -> dt.datetime:
        """`at` if offices are open then, else when they open next (notices wait for it)."""
        at = self.local(at)
        for a, b in self._periods_from(at):
            if at < b:
                return max(a, at)
        raise self._no_working_days(at)

    def next_working_day_start(self, after: dt.datetime) -> dt.datetime:
        """When offices open on the first working day after `after`'s local date."""
        after = self.local(after)
        start = dt.datetime.combine(after.date() + dt.timedelta(days=1), dt.time(), self.timezone)
        return self.next_office_instant(start)

    # -- clocks -----------------------------------------------------------------------------

    def add_working(
        self, start: dt.datetime, duration: dt.timedelta, pauses: Iterable[Pause] = ()
    ) -> dt.datetime:
        """The instant when `duration` of working time has run from `start`.

        Time outside office hours, on days off and inside `pauses` does not count. Started
        outside office hours, the clock starts when offices open; a duration that ends exactly
        at closing time ends then (not at the next opening).
        """
        start = self.local(start)
        remaining = _non_negative(duration)
        if not remaining:
            return start
        paused = _merge(pauses)
        if not paused:
            return self._add_unpaused(start, remaining)
        for a, b in _subtract(self._periods_from(start), paused, start):
            if remaining <= b - a:
                return a + remaining
            remaining -= b - a
        raise self._no_working_days(start)

    def _add_unpaused(self, start: dt.datetime, remaining: dt.timedelta) -> dt.datetime:
        """`add_working` without pauses, a whole day at a time where the clock runs past it."""
        day = start.date()
        for i in range(MAX_SPAN_DAYS):
            periods, total = self._day(day)
            if i and remaining > total:  # a later day, all of it counted (none on a day off)
                remaining -= total
            else:
                for a, b in periods:
                    if b > start:
                        a = max(a, start)
                        if remaining <= b - a:
                            return a + remaining
                        remaining -= b - a
            day += dt.timedelta(days=1)
        raise self._no_working_days(start)

    def add_calendar(
        self, start: dt.datetime, duration: dt.timedelta, pauses: Iterable[Pause] = ()
    ) -> dt.datetime:
        """`start + duration`, moved later by the paused time that falls before it."""
        start = self.local(start)
        end = start + _non_negative(duration)
        for a, b in _merge(pauses):
            if b <= start:
                continue
            if a >= end:
                break
            end += b - max(a, start)
        return end

    def working_between(
        self, start: dt.datetime, end: dt.datetime, pauses: Iterable[Pause] = ()
    ) -> dt.timedelta:
        """The working time from `start` to `end` (zero when `end` is not later)."""
        start, end = self.local(start), self.local(end)
        total = dt.timedelta(0)
        if end <= start:
            return total
        for a, b in _subtract(self._periods_from(start), _merge(pauses), start):
            if a >= end:
                break
            total += min(b, end) - a
        return total

    def calendar_between(
        self, start: dt.datetime, end: dt.datetime, pauses: Iterable[Pause] = ()
    ) -> dt.timedelta:
        """The calendar time from `start` to `end` less the paused time in between."""
        start, end = self.local(start), self.local(end)
        if end <= start:
            return dt.timedelta(0)
        paused = sum(
            (min(b, end) - max(a, start) for a, b in _merge(pauses) if a < end and b > start),
            dt.timedelta(0),
        )
        return end - start - paused

    # -- internals --------------------------------------------------------------------------

    def _periods_from(self, at: dt.datetime) -> Iterator[Period]:
        """Office periods that end after `at`, clipped to start no earlier than it."""
        day = at.date()
        for _ in range(MAX_SPAN_DAYS):
            for a, b in self._periods_of(day):
                if b > at:
                    yield max(a, at), b
            day += dt.timedelta(days=1)

    def _no_working_days(self, at: dt.datetime) -> CalendarError:
        return CalendarError(f"no office hours within {MAX_SPAN_DAYS} days after {at.isoformat()}")


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {at.isoformat()}: give it a time zone")
    return at


def _non_negative(duration: dt.timedelta) -> dt.timedelta:
    if duration < dt.timedelta(0):
        raise ValueError(f"negative duration {duration}")
    return duration


def _at(day: dt.date, t: dt.time, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, t, tz)


def _merge(pauses: Iterable[Pause]) -> list[Pause]:
    """Pauses sorted, overlapping ones joined; each checked (aware, start ≤ end)."""
    merged: list[Pause] = []
    for a, b in sorted((_aware(a), _aware(b)) for a, b in pauses):
        if b < a:
            raise ValueError(f"pause ends before it starts: {a.isoformat()} – {b.isoformat()}")
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _subtract(
    periods: Iterable[Period], pauses: Sequence[Pause], since: dt.datetime
) -> Iterator[Period]:
    """The parts of `periods` outside `pauses` (both sorted)."""
    pauses = [p for p in pauses if p[1] > since]
    for a, b in periods:
        for pa, pb in pauses:
            if pb <= a or pa >= b:
                continue
            if pa > a:
                yield a, pa
            a = max(a, pb)
            if a >= b:
                break
        if a < b:
            yield a, b
