"""Time limits as data: how long each step of a case may take, per urgency class and category.

The limits live in `data/time_limits.yaml` (its header documents every key). Precedence, lowest
first: `defaults` < `classes.<class>` < `categories.<code>.defaults` <
`categories.<code>.classes.<class>`; deployment overrides (files or mappings, e.g. from settings)
are merged into the document key by key, in the order given, before it is validated.

A duration counts calendar time ("24 hours") or working time ("7 working days", office hours on
working days of the `WorkCalendar`); "1 working day" is one working day's office hours. Clocks
pause while the case waits for the citizen (`pauses`, see `workcalendar`). Pure: every instant is
an argument.

    limits = load_time_limits()
    due = limits.deadline(Kind.FEEDBACK, "general", "wage_arrears", received_at, calendar)
    remind = limits.reminders(Kind.FEEDBACK, "general", "wage_arrears", received_at, calendar)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fengqiao.services.tracker.workcalendar import Pause, WorkCalendar

__all__ = [
    "DEFAULT_TIME_LIMITS_FILE",
    "Duration",
    "Kind",
    "Limits",
    "TimeLimits",
    "TimeLimitsError",
    "UrgencyClass",
    "load_time_limits",
]

DEFAULT_TIME_LIMITS_FILE = Path(__file__).parent / "data" / "time_limits.yaml"


class TimeLimitsError(Exception):
    """The time limits file or an override is invalid; the message names the entry."""


class UrgencyClass(StrEnum):
    """The classes of the 12345 rules (the values of `contracts.Urgency`)."""

    URGENT = "urgent"
    TIMELY = "timely"
    GENERAL = "general"
    COMPLEX = "complex"


class Kind(StrEnum):
    """What a limit is for, and from which instant it runs."""

    ACKNOWLEDGMENT = "acknowledgment"  # from the appeal's receipt
    SIGNING = "signing"  # per hop, from the dispatch of that hop
    FIRST_PROGRESS = "first_progress"  # from signing
    FEEDBACK = "feedback"  # from the appeal's receipt
    CALLBACK_ASK = "callback_ask"  # from the resolution
    CALLBACK_ANSWER = "callback_answer"  # from the callback question


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(working\s+)?(second|minute|hour|day)s?\s*$")
NEXT_WORKING_DAY = "next working day"


@dataclass(frozen=True)
class Duration:
    """A limit's length: calendar or working time, or "the next working day"."""

    text: str
    amount: float = 0.0
    unit: str = "hour"
    working: bool = False

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Read "2 hours", "7 working days", "30 minutes" or "next working day"."""
        if text.strip() == NEXT_WORKING_DAY:
            return cls(NEXT_WORKING_DAY)
        match = _DURATION.match(text)
        if not match:
            raise ValueError(
                f"cannot read duration {text!r} (e.g. '2 hours', '7 working days', "
                f"'30 minutes', '{NEXT_WORKING_DAY}')"
            )
        return cls(text, float(match[1]), match[3], bool(match[2]))

    @property
    def next_working_day(self) -> bool:
        return self.text == NEXT_WORKING_DAY

    def length(self, calendar: WorkCalendar) -> dt.timedelta:
        """The time to add: calendar time, or working time (a working day is its office hours)."""
        if self.working and self.unit == "day":
            return calendar.working_day * self.amount
        return dt.timedelta(seconds=_UNITS[self.unit] * self.amount)

    def after(
        self,
        start: dt.datetime,
        calendar: WorkCalendar,
        pauses: Iterable[Pause] = (),
        fraction: float = 1.0,
    ) -> dt.datetime:
        """When `fraction` of this duration has run from `start`."""
        if self.next_working_day:
            # The day's boundary moves with a pause too: count from the pause's end.
            end = max((b for a, b in pauses if a <= start < b), default=start)
            return calendar.next_working_day_start(end)
        length = self.length(calendar) * fraction
        if self.working:
            return calendar.add_working(start, length, pauses)
        return calendar.add_calendar(start, length, pauses)


@dataclass(frozen=True)
class Limits:
    """The limits that apply to one (urgency class, category)."""

    durations: Mapping[Kind, Duration]
    reminders: tuple[float, ...]
    escalation_grace: Duration
    notify_off_hours: bool


class _Layer(BaseModel):
    """One layer of values; any may be absent (a lower layer gives it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acknowledgment: str | None = None
    signing: str | None = None
    first_progress: str | None = None
    feedback: str | None = None
    callback_ask: str | None = None
    callback_answer: str | None = None
    reminders: list[float] | None = None
    escalation_grace: str | None = None
    notify_off_hours: bool | None = None

    @field_validator(*[k.value for k in Kind], "escalation_grace")
    @classmethod
    def _readable(cls, value: str | None) -> str | None:
        if value is not None:
            Duration.parse(value)
        return value

    @field_validator("reminders")
    @classmethod
    def _fractions(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not all(0 < f < 1 for f in value):
            raise ValueError(f"reminder fractions must be between 0 and 1, got {value}")
        return sorted(value) if value is not None else None


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: _Layer = _Layer()
    classes: dict[UrgencyClass, _Layer] = {}


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: _Layer
    classes: dict[UrgencyClass, _Layer] = Field(default_factory=dict)
    categories: dict[str, _Category] = Field(default_factory=dict)

    @field_validator("defaults")
    @classmethod
    def _complete(cls, value: _Layer) -> _Layer:
        missing = [name for name, v in value.model_dump().items() if v is None]
        if missing:
            raise ValueError(f"defaults must give every value; missing {', '.join(missing)}")
        return value


class TimeLimits:
    """The validated time limits. Build it with `load_time_limits`.

    The limits of each (class, category) are merged and their durations read once, on first use:
    the file does not change while it is loaded, and every case event asks for them (reading them
    again each time was most of the domain's time per event)."""

    def __init__(self, parsed: _File) -> None:
        self._file = parsed
        # (class, category or None for one the file does not name) → its limits. Bounded: the
        # classes are four and the categories those of the file.
        self._merged: dict[tuple[str, str | None], Limits] = {}

    def limits(self, urgency_class: str, category: str | None = None) -> Limits:
        """The limits for a class (a `UrgencyClass` value) and category (None: no category)."""
        known = category if category in self._file.categories else None
        key = (urgency_class, known)
        limits = self._merged.get(key)
        if limits is None:
            limits = self._merged[key] = self._merge(_urgency(urgency_class), known)
        return limits

    def _merge(self, cls: UrgencyClass, category: str | None) -> Limits:
        cat = self._file.categories.get(category or "")
        layers = [self._file.defaults, self._file.classes.get(cls)]
        if cat is not None:
            layers += [cat.defaults, cat.classes.get(cls)]
        merged: dict[str, Any] = {}
        for layer in layers:
            if layer is not None:
                merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
        return Limits(
            # Read-only: one Limits is shared by every caller.
            durations=MappingProxyType({k: Duration.parse(merged[k.value]) for k in Kind}),
            reminders=tuple(merged["reminders"]),
            escalation_grace=Duration.parse(merged["escalation_grace"]),
            notify_off_hours=merged["notify_off_hours"],
        )

    def deadline(
        self,
        kind: Kind,
        urgency_class: str,
        category: str | None,
        start: dt.datetime,
        calendar: WorkCalendar,
        pauses: Iterable[Pause] = (),
    ) -> dt.datetime:
        """When the limit of `kind` that started at `start` runs out."""
        return self.limits(urgency_class, category).durations[kind].after(start, calendar, pauses)

    def reminders(
        self,
        kind: Kind,
        urgency_class: str,
        category: str | None,
        start: dt.datetime,
        calendar: WorkCalendar,
        pauses: Iterable[Pause] = (),
    ) -> list[dt.datetime]:
        """When to remind the office before the deadline: at each reminder fraction of the span,
        moved to office hours unless the class may notify off hours; none at or after the
        deadline, none for "next working day" limits."""
        limits = self.limits(urgency_class, category)
        duration = limits.durations[kind]
        if duration.next_working_day:
            return []
        pauses = list(pauses)
        due = duration.after(start, calendar, pauses)
        times = {
            self._notice(limits, duration.after(start, calendar, pauses, f), calendar)
            for f in limits.reminders
        }
        return sorted(t for t in times if t < due)

    def escalation_at(
        self,
        deadline: dt.datetime,
        urgency_class: str,
        category: str | None,
        calendar: WorkCalendar,
    ) -> dt.datetime:
        """When a missed deadline escalates to the tier above (the chasing notice is at once)."""
        limits = self.limits(urgency_class, category)
        return limits.escalation_grace.after(deadline, calendar)

    def notice_time(
        self, at: dt.datetime, urgency_class: str, category: str | None, calendar: WorkCalendar
    ) -> dt.datetime:
        """When a notice due at `at` may go out: off-hours notices wait for office hours, except
        for classes with `notify_off_hours` (urgent)."""
        return self._notice(self.limits(urgency_class, category), at, calendar)

    @staticmethod
    def _notice(limits: Limits, at: dt.datetime, calendar: WorkCalendar) -> dt.datetime:
        return calendar.local(at) if limits.notify_off_hours else calendar.next_office_instant(at)


def _urgency(value: str) -> UrgencyClass:
    try:
        return UrgencyClass(value)
    except ValueError:
        known = ", ".join(c.value for c in UrgencyClass)
        raise TimeLimitsError(f"unknown urgency class {value!r} (known: {known})") from None


def load_time_limits(
    path: Path = DEFAULT_TIME_LIMITS_FILE,
    overrides: Sequence[Path | Mapping[str, Any]] = (),
) -> TimeLimits:
    """Load the time limits and merge the deployment's overrides into them, in order.

    Each override is a YAML file or a mapping with the same shape as the file (any subset of
    it). `TimeLimitsError` names the file and the entry that is wrong.
    """
    document = _read(path)
    sources = [str(path)]
    for override in overrides:
        layer = _read(override) if isinstance(override, Path) else dict(override)
        document = _merge(document, layer)
        sources.append(str(override) if isinstance(override, Path) else "settings")
    try:
        return TimeLimits(_File.model_validate(document))
    except ValidationError as exc:
        where = " + ".join(sources)
        raise TimeLimitsError(f"{where}: {_explain(exc)}") from exc


def _read(path: Path) -> dict[str, Any]:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TimeLimitsError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TimeLimitsError(f"{path}: expected a mapping at the top")
    return raw


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, mappings merged key by key, anything else replaced."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(below, value)
        else:
            merged[key] = value
    return merged


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
    )
