"""The case as the tracker keeps it, and its state machine (`TRANSITIONS`).

Pure: a case is a frozen value; every change makes a new one (`evolve`). What a change wants done
outside is kept in the case itself, written with the state in one document, so a crash can never
lose it or do it twice: `outbox` (messages to publish, see `outgoing`) and `effects` (timers,
indexes, see `effects`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import to_json

from fengqiao.contracts import CaseState, Outgoing, UnitActionKind
from fengqiao.services.tracker.calendar_file import load_calendar
from fengqiao.services.tracker.domain.effects import Effect
from fengqiao.services.tracker.timelimits import TimeLimits, load_time_limits
from fengqiao.services.tracker.workcalendar import WorkCalendar

S = CaseState
A = UnitActionKind

OPEN_STATES = frozenset(
    {
        S.RECEIVED,
        S.ACKNOWLEDGED,
        S.DISPATCHED,
        S.ACCEPTED,
        S.IN_PROGRESS,
        S.RETURNED,
        S.COORDINATING,
        S.EXTENDED,
        S.REOPENED,
    }
)
WORKING = frozenset({S.ACCEPTED, S.IN_PROGRESS, S.EXTENDED, S.COORDINATING, S.REOPENED})

# action → the states it may start from, and the state it leads to (None: state unchanged).
TRANSITIONS: dict[str, tuple[frozenset[CaseState], CaseState | None]] = {
    "acknowledge": (frozenset({S.RECEIVED}), S.ACKNOWLEDGED),
    # A case at work may be dispatched again (an operator's reassignment): the new unit signs.
    "dispatch": (OPEN_STATES, S.DISPATCHED),
    "coordinate": (frozenset({S.RECEIVED, S.ACKNOWLEDGED, S.DISPATCHED}), S.COORDINATING),
    A.ACCEPT.value: (frozenset({S.DISPATCHED, S.COORDINATING, S.REOPENED}), S.ACCEPTED),
    A.PROGRESS.value: (WORKING, S.IN_PROGRESS),
    A.RESOLVE.value: (WORKING, S.RESOLVED),
    A.RETURN.value: (frozenset({S.DISPATCHED, S.ACCEPTED}), S.RETURNED),
    A.REQUEST_EXTENSION.value: (WORKING, None),
    A.APPROVE_EXTENSION.value: (WORKING, S.EXTENDED),
    A.REFUSE_EXTENSION.value: (WORKING, None),
    A.NOTE.value: (frozenset(CaseState), None),
    A.REASSIGN.value: (OPEN_STATES, None),
    A.AWAIT_CITIZEN.value: (WORKING, None),
    A.MERGE.value: (frozenset(CaseState) - {S.CLOSED, S.MERGED}, S.MERGED),
    "ask_callback": (frozenset({S.RESOLVED}), S.CALLBACK_PENDING),
    "close": (frozenset({S.CALLBACK_PENDING}), S.CLOSED),
    "reopen": (frozenset({S.CALLBACK_PENDING, S.CLOSED}), S.REOPENED),
}


class InvalidTransition(Exception):
    """An action that the case's state does not allow."""

    def __init__(self, case_id: str, state: CaseState, action: str) -> None:
        super().__init__(f"case {case_id}: cannot {action} in state {state.value}")
        self.case_id, self.state, self.action = case_id, state, action


class NotAllowed(Exception):
    """A unit acting on a case that is not its to act on (or not in that way)."""


@dataclass(frozen=True)
class Bounds:
    """How big a case may grow (see `repeats`): a case that is posted about again and again, or
    written on for years, keeps one document of bounded size."""

    # Repeats of the appeal (reposts, duplicates, follow-ups) that go on the timeline; every
    # repeat after them is only counted (`Case.repeats`).
    repeats_on_timeline: int = 10
    # The repeats the case names in `Case.repeats["recent"]` (the newest).
    recent_repeats: int = 5
    # The event ids of the newest repeats kept to recognise a re-delivery (`Case.repeat_ids`): a
    # repeat delivered again after this many later repeats of its case is counted once more.
    repeat_ids: int = 512
    # The most the timeline takes as JSON; beyond it the oldest entries after the first are left
    # out (counted in `Case.timeline_dropped`; each stays on case.events).
    timeline_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Rules:
    """What the domain needs besides the case: the time limits, the calendar, who it is, how big
    a case may grow."""

    limits: TimeLimits
    calendar: WorkCalendar
    producer: str = "tracker"
    bounds: Bounds = Bounds()

    @staticmethod
    @cache
    def default(producer: str = "tracker") -> Rules:
        return Rules(load_time_limits(), load_calendar(), producer)


class Cause(Protocol):
    """What caused a change: a message, or a timer's firing."""

    @property
    def event_id(self) -> str: ...

    @property
    def occurred_at(self) -> dt.datetime: ...


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    event: str
    state: str
    unit_id: str | None
    detail: str | None
    event_id: str
    person: str | None = None  # who acted, when a person did (issue 19)

    @cached_property
    def json(self) -> bytes:
        """The entry as JSON, made once: it is stored with every later version of the case."""
        return to_json(self)


@dataclass(frozen=True)
class Case:
    """A case as the tracker keeps it. Instants are ISO 8601 strings (UTC)."""

    case_id: str
    state: CaseState = S.RECEIVED
    opened: bool = False
    account: str | None = None
    platform: str | None = None
    author_id: str | None = None
    masked_text: str | None = None
    reply_to: dict[str, Any] | None = None
    received_at: str | None = None
    chain: tuple[str, ...] = ()
    hops: tuple[dict[str, Any], ...] = ()
    assigned_unit: str | None = None
    assigned_handle: str | None = None
    co_units: tuple[str, ...] = ()
    category: str | None = None
    urgency: str | None = None
    routing_confidence: float | None = None  # the router's, in the newest dispatch
    acknowledged: bool = False
    sign_due: str | None = None
    signed_at: str | None = None
    signed_in_time: bool | None = None
    first_progress_at: str | None = None
    deadline: str | None = None
    overdue: bool = False
    escalation_level: int = 0
    extension: dict[str, Any] | None = None  # the pending request
    paused_since: str | None = None  # waiting for the citizen: the feedback clock stands still
    extensions: int = 0
    returns: int = 0
    resolved_at: str | None = None
    resolved_in_time: bool | None = None
    outcome: str | None = None
    amount_recovered: float | None = None
    satisfaction: str | None = None
    closed_at: str | None = None
    reopened: int = 0
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Repeats of the appeal, counted (`repeats.py`): count, first_at, last_at, duplicates,
    # follow_ups, recent (the newest few: at, kind, account, author_id, excerpt); {} for none.
    repeats: dict[str, Any] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()
    timeline_dropped: int = 0  # the oldest entries left out (`Bounds.timeline_bytes`)
    # The ids of the messages applied (no change of the case happens twice), but for repeats:
    # those of the newest repeats only are kept, in order, in `repeat_ids` (`Bounds.repeat_ids`).
    processed: frozenset[str] = frozenset()
    repeat_ids: tuple[str, ...] = ()
    outbox: tuple[Outgoing, ...] = ()
    # What is to be done outside, by its stored key (`Effect.key`): a later effect on the same
    # timer or index entry replaces the earlier one.
    effects: dict[str, Effect] = field(default_factory=dict)
    version: int = 0
    # The clocks whose timer this case last asked to schedule and has not cancelled since, with
    # their due instant (a timer that fired is not taken off: it may have raced with a new
    # schedule). Only those are cancelled: a cancel costs the store a lookup.
    clocks: dict[str, str] = field(default_factory=dict)

    def has_processed(self, event_id: str) -> bool:
        return event_id in self.processed or event_id in self.repeat_ids

    def visible_to(self, unit_id: str) -> bool:
        """A unit sees the cases it leads or co-handles and those of the units below it (the
        chain runs from the region down to the lead unit)."""
        return unit_id in self.chain or unit_id in self.co_units

    @property
    def urgency_class(self) -> str:
        return self.urgency or "general"


def new_case(case_id: str) -> Case:
    return Case(case_id=case_id)


_CASE_FIELDS = frozenset(f.name for f in fields(Case))

if TYPE_CHECKING:  # type-checked as `replace`: the changes' names and types
    from dataclasses import replace

    evolve = replace
else:

    def evolve(case: Case, /, **changes: Any) -> Case:
        """`dataclasses.replace(case, **changes)` without running `Case.__init__` over its forty
        fields (replace was half of the domain's time: several per case event; use this one for
        cases everywhere). The new case shares the old one's values but for the changes; Case
        is frozen and has no `__post_init__`, so nothing else happens in between."""
        if not changes.keys() <= _CASE_FIELDS:
            unknown = sorted(changes.keys() - _CASE_FIELDS)
            raise TypeError(f"Case has no field {unknown[0]!r}")
        new = object.__new__(Case)
        _set(new, "__dict__", case.__dict__ | changes)  # one new mapping, filled in C
        return new

    _set = object.__setattr__  # past the frozen dataclass's guard, once


def iso(at: dt.datetime) -> str:
    """How the case keeps an instant."""
    return at.astimezone(dt.UTC).isoformat()


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def check(case: Case, action: str) -> CaseState:
    """The state `action` leads to; `InvalidTransition` names the case, state and action."""
    allowed, target = TRANSITIONS[action]
    if case.state not in allowed:
        raise InvalidTransition(case.case_id, case.state, action)
    return target or case.state


def done(case: Case, cause: Cause) -> Case:
    """The cause is applied: it will not be applied again, and the case has a new version."""
    return evolve(case, processed=case.processed | {cause.event_id}, version=case.version + 1)


def with_effects(case: Case, *effects: Effect) -> Case:
    return evolve(case, effects={**case.effects, **{e.key: e for e in effects}})


def with_timeline(case: Case, timeline: tuple[TimelineEntry, ...], bounds: Bounds) -> Case:
    """`case` with `timeline`, without its oldest entries but the first while it takes more than
    `bounds.timeline_bytes` as JSON (they are counted in `timeline_dropped`)."""
    size = sum(len(e.json) + 1 for e in timeline)
    dropped = 0
    while size > bounds.timeline_bytes and len(timeline) - dropped > 2:
        size -= len(timeline[1 + dropped].json) + 1
        dropped += 1
    if not dropped:
        return evolve(case, timeline=timeline)
    return evolve(
        case,
        timeline=(timeline[0], *timeline[1 + dropped :]),
        timeline_dropped=case.timeline_dropped + dropped,
    )
