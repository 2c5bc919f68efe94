"""The calendar file (`data/calendar_overrides.yaml`): its form, checked on load, and the
`WorkCalendar` it makes. Every error names the file and the entry."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fengqiao.services.tracker.workcalendar import (
    DEFAULT_CALENDAR_FILE,
    CalendarError,
    WorkCalendar,
)

__all__ = ["DEFAULT_CALENDAR_FILE", "load_calendar"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _OfficePeriod(_Model):
    start: dt.time
    end: dt.time

    @model_validator(mode="after")
    def _ordered(self) -> _OfficePeriod:
        if self.end <= self.start:
            raise ValueError(f"office period ends ({self.end}) before it starts ({self.start})")
        return self


class _Days(_Model):
    """One date (`date`) or a range (`from`, `to`, both included)."""

    date: dt.date | None = None
    from_: dt.date | None = Field(default=None, alias="from")
    to: dt.date | None = None
    name: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> _Days:
        if (self.date is None) == (self.from_ is None or self.to is None):
            raise ValueError("give either `date` or both `from` and `to`")
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError(f"`to` {self.to} is before `from` {self.from_}")
        return self

    def days(self) -> list[dt.date]:
        if self.date is not None:
            return [self.date]
        assert self.from_ is not None and self.to is not None
        return [self.from_ + dt.timedelta(days=i) for i in range((self.to - self.from_).days + 1)]


class _Year(_Model):
    source: str = ""
    holidays: list[_Days] = []
    workdays: list[_Days] = []


class _CalendarFile(_Model):
    timezone: str = "Asia/Shanghai"
    office_hours: list[_OfficePeriod] = Field(min_length=1)
    years: dict[int, _Year] = {}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("office_hours")
    @classmethod
    def _in_order(cls, value: list[_OfficePeriod]) -> list[_OfficePeriod]:
        for before, after in pairwise(value):
            if after.start < before.end:
                raise ValueError(f"office periods overlap or are out of order at {after.start}")
        return value


def load_calendar(path: Path = DEFAULT_CALENDAR_FILE) -> WorkCalendar:
    """Load and validate a calendar file; `CalendarError` names the file and the entry."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _CalendarFile.model_validate(raw or {})
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise CalendarError(f"{path}: {_explain(exc)}") from exc
    holidays, workdays = _dates(parsed, path)
    return WorkCalendar(
        timezone=ZoneInfo(parsed.timezone),
        office_hours=tuple((p.start, p.end) for p in parsed.office_hours),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        years=frozenset(parsed.years),
        source=path,
    )


def _dates(parsed: _CalendarFile, path: Path) -> tuple[set[dt.date], set[dt.date]]:
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    for year, entry in sorted(parsed.years.items()):
        for kind, days, into in (
            ("holidays", entry.holidays, holidays),
            ("workdays", entry.workdays, workdays),
        ):
            for i, item in enumerate(days):
                for day in item.days():
                    if day.year != year:
                        raise CalendarError(
                            f"{path}: years.{year}.{kind}.{i}: {day} is not in {year}"
                        )
                    into.add(day)
    both = holidays & workdays
    if both:
        raise CalendarError(f"{path}: both a holiday and a workday: {sorted(both)[0]}")
    return holidays, workdays


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )
