"""What a case asks to have done outside, and what its timers carry: one definition each.

The domain makes these; the unit of work carries them out (`unit_of_work.py`) and the case
repository stores them with the case (`stored_effects`, `parsed_effects`: the stored form, keys
like `timer:feedback`, `unit:<unit>`, `await:<platform>:<author>`, is made and read only here).
A timer's payload is a `TimerStep` (`payload`, `TimerStep.from_payload`).

The clocks (one live timer per clock and case, see `adapters/timers.py`):

- `ack`       public acknowledgment, from the appeal's receipt;
- `sign`      the lead unit signs for the order (签收), from the final hop's dispatch; a miss is
              supervised by the tier above, and up the chain while it stays unsigned;
- `progress`  the first progress report, from signing;
- `feedback`  the resolution, from the receipt: reminders at the configured fractions, a chasing
              notice (催办) at the deadline, escalation to the tier above after the grace period
              and on up the tiers while it stays overdue (纵督促);
- `callback`  after resolution: ask the citizen (回访), then wait for the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple


class Clock(StrEnum):
    ACK = "ack"
    SIGN = "sign"
    PROGRESS = "progress"
    FEEDBACK = "feedback"
    CALLBACK = "callback"


CLOCKS = tuple(Clock)  # a case's timers
# The plain names, looked up: an enum's `.value` costs a Python call, several per change.
CLOCK_NAMES = {clock: clock.value for clock in Clock}


class Step(StrEnum):
    """What a clock's next firing is for."""

    DUE = "due"  # the limit ran out
    REMIND = "remind"  # a reminder before the deadline (feedback)
    ESCALATE = "escalate"  # supervision by the next tier up (sign, feedback)
    ASK = "ask"  # ask the citizen the callback question
    ANSWER = "answer"  # the citizen's time to answer ran out


_STEP_NAMES = {step: step.value for step in Step}


class TimerStep(NamedTuple):
    """A clock's next firing: stored as its timer's payload, handed back when it fires. A firing
    that no longer matches the case (it moved on, the deadline was extended) changes nothing.
    (A named tuple: made for most changes, and a frozen dataclass took three times as long.)"""

    case_id: str
    clock: Clock
    step: Step
    due_at: str
    deadline: str | None = None  # the feedback deadline the step was made for
    start: str | None = None  # when the feedback clock's span began (its reminders' base)
    hop: int | None = None  # the dispatch hop whose signing it waits for
    level: int | None = None  # the tier above the lead unit that an escalation goes to

    @property
    def due(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.due_at)

    def payload(self) -> dict[str, Any]:
        """The stored form; the optional fields only when set, in this order."""
        stored: dict[str, Any] = {
            "case_id": self.case_id,
            "clock": CLOCK_NAMES[self.clock],
            "step": _STEP_NAMES[self.step],
            "due_at": self.due_at,
        }
        if self.deadline is not None:
            stored["deadline"] = self.deadline
        if self.start is not None:
            stored["start"] = self.start
        if self.hop is not None:
            stored["hop"] = self.hop
        if self.level is not None:
            stored["level"] = self.level
        return stored

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TimerStep:
        get = payload.get
        return cls(
            payload["case_id"],
            Clock(payload["clock"]),
            Step(payload["step"]),
            payload["due_at"],
            get("deadline"),
            get("start"),
            get("hop"),
            get("level"),
        )


_TIMER_KEYS = {clock: f"timer:{clock.value}" for clock in Clock}  # made once, used by every change


def awaiting_key(platform: str, author_id: str | None) -> str:
    """The effect key (and index id) of a citizen whose next message may answer a callback."""
    return f"await:{platform}:{author_id}"


@dataclass(frozen=True)
class ScheduleTimer:
    """Run the clock until `step.due_at` (replaces the clock's timer)."""

    step: TimerStep

    @property
    def key(self) -> str:
        return _TIMER_KEYS[self.step.clock]

    def value(self) -> dict[str, Any]:
        return self._value

    @cached_property
    def _value(self) -> dict[str, Any]:
        # Made once: stored with the version, and again if a crash left it undone.
        return {"due_at": self.step.due_at, "payload": self.step.payload()}


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Stop the clock."""

    clock: Clock

    @property
    def key(self) -> str:
        return _TIMER_KEYS[self.clock]

    def value(self) -> dict[str, Any]:
        return {"due_at": None}


@dataclass(frozen=True, slots=True)
class ShowToUnit:
    """The unit may see the case: it goes into the unit's index of cases."""

    unit: str

    @property
    def key(self) -> str:
        return f"unit:{self.unit}"

    def value(self) -> dict[str, Any]:
        return {"unit": self.unit}


@dataclass(frozen=True, slots=True)
class AwaitCitizen:
    """The citizen's next message answers this case (`case_id`), or no case (None)."""

    platform: str
    author_id: str | None
    case_id: str | None

    @property
    def key(self) -> str:
        return awaiting_key(self.platform, self.author_id)

    def value(self) -> dict[str, Any]:
        return {"case_id": self.case_id}


Effect = ScheduleTimer | CancelTimer | ShowToUnit | AwaitCitizen

_CANCELS = {clock: CancelTimer(clock) for clock in Clock}


def cancel_timer(clock: Clock) -> CancelTimer:
    """The cancel of `clock` (one per clock: it is the same for every case)."""
    return _CANCELS[clock]


def parse_effect(key: str, value: Mapping[str, Any]) -> Effect:
    kind, _, name = key.partition(":")
    if kind == "timer":
        if value.get("due_at"):
            return ScheduleTimer(TimerStep.from_payload(value["payload"]))
        return CancelTimer(Clock(name))
    if kind == "unit":
        return ShowToUnit(value["unit"])
    if kind == "await":
        platform, _, author_id = name.partition(":")
        return AwaitCitizen(platform, author_id, value.get("case_id"))
    raise ValueError(f"unknown effect {key!r}")


def stored_effects(effects: Mapping[str, Effect]) -> list[dict[str, Any]]:
    """The effects as a case document keeps them: a list, not a mapping (effect keys hold
    author ids, which may contain dots)."""
    return [{"key": key, "value": effect.value()} for key, effect in effects.items()]


def parsed_effects(stored: Iterable[Mapping[str, Any]]) -> dict[str, Effect]:
    return {e["key"]: parse_effect(e["key"], e["value"]) for e in stored}
