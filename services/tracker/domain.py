"""The case: its state machine, its timeline, its clocks, and what it asks others to do.

Pure: every function takes the case, a message (or a timer's firing) and the `Rules`, and returns
the new case. What it wants done outside is kept in the case itself, written with the state in one
document, so a crash can never lose it or do it twice:

- `outbox`: messages to publish (case.events, replies.requested, supervision.orders);
- `effects`: timers to schedule or cancel (`timer:<clock>`), the index of the cases each unit may
  see (`unit:<unit>`), and the citizen whose next message answers a callback (`await:<author>`).

The clocks (one live timer per clock and case, see `adapters/timers.py`):

- `ack`       public acknowledgment, from the appeal's receipt;
- `sign`      the lead unit signs for the order (签收), from the final hop's dispatch; a miss is
              supervised by the tier above, and up the chain while it stays unsigned;
- `progress`  the first progress report, from signing;
- `feedback`  the resolution, from the receipt: reminders at the configured fractions, a chasing
              notice (催办) at the deadline, escalation to the tier above after the grace period
              and on up the tiers while it stays overdue (纵督促);
- `callback`  after resolution: ask the citizen (回访), then wait for the answer.

A timer's firing carries its clock, step and deadline; a firing that no longer matches the case
(the case moved on, the deadline was extended) changes nothing. The case keeps the clocks it asked
to run (`clocks`) and asks to cancel only those (a cancel costs the store a lookup); a case stored
before it kept them asks to cancel any, as before.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import to_json

from fengqiao.contracts import (
    AppealNormalized,
    CaseEventRecorded,
    CaseState,
    CoordinationRequested,
    DispatchMode,
    DispatchOrdered,
    Envelope,
    Outgoing,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    SupervisionOrdered,
    UnitActed,
    UnitActionKind,
    derived_event_id,
    redispatch_event_id,
)
from fengqiao.contracts.topics import CASE_EVENTS, REPLIES_REQUESTED, SUPERVISION_ORDERS
from fengqiao.services.tracker.timelimits import Kind, TimeLimits, load_time_limits
from fengqiao.services.tracker.workcalendar import WorkCalendar, load_calendar

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


class Satisfaction(StrEnum):
    """The citizen's answer to the callback (回访)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    NO_ANSWER = "no_answer"  # no answer within the window (counted apart)


# Checked in order: the longer phrase first ("不满意" contains "满意").
_ANSWERS: tuple[tuple[re.Pattern[str], Satisfaction], ...] = (
    (re.compile(r"^\s*[3３③]\s*[.。!！]?\s*$"), Satisfaction.DISSATISFIED),
    (re.compile(r"^\s*[2２②]\s*[.。!！]?\s*$"), Satisfaction.BASICALLY),
    (re.compile(r"^\s*[1１①]\s*[.。!！]?\s*$"), Satisfaction.SATISFIED),
    (re.compile(r"不满意|不太满意|很不满|没有?解决|没人管|敷衍|不认可"), Satisfaction.DISSATISFIED),
    (re.compile(r"基本满意|还行|还可以|一般|凑合"), Satisfaction.BASICALLY),
    (re.compile(r"满意|解决了|已解决|谢谢|感谢|点赞"), Satisfaction.SATISFIED),
)


def parse_satisfaction(text: str) -> Satisfaction | None:
    """The citizen's answer: 满意 / 基本满意 / 不满意, 1 / 2 / 3, or free text; None if unclear."""
    for pattern, answer in _ANSWERS:
        if pattern.search(text):
            return answer
    return None


@dataclass(frozen=True)
class Rules:
    """What the domain needs besides the case: the time limits, the calendar, who it is."""

    limits: TimeLimits
    calendar: WorkCalendar
    producer: str = "tracker"

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
class TimerFired:
    """A clock of a case ran out. Its event id is the same for every firing of one step, so a
    timer fired again (a lease ran out) changes the case once."""

    case_id: str
    clock: str
    payload: dict[str, Any]
    occurred_at: dt.datetime

    @property
    def event_id(self) -> str:
        p = self.payload
        return derived_event_id(
            "timer",
            self.case_id,
            self.clock,
            str(p.get("step")),
            str(p.get("due_at")),
            str(p.get("level", "")),
        )


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    event: str
    state: str
    unit_id: str | None
    detail: str | None
    event_id: str

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
    timeline: tuple[TimelineEntry, ...] = ()
    processed: frozenset[str] = frozenset()
    outbox: tuple[Outgoing, ...] = ()
    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0
    # The clocks whose timer this case last asked to schedule and has not cancelled since, with
    # their due instant (a timer that fired is not taken off: it may have raced with a new
    # schedule). None for a case stored before it was kept: any clock may be running.
    clocks: dict[str, str] | None = None

    def has_processed(self, event_id: str) -> bool:
        return event_id in self.processed

    def visible_to(self, unit_id: str) -> bool:
        """A unit sees the cases it leads or co-handles and those of the units below it (the
        chain runs from the region down to the lead unit)."""
        return unit_id in self.chain or unit_id in self.co_units

    @property
    def urgency_class(self) -> str:
        return self.urgency or "general"


def new_case(case_id: str) -> Case:
    return Case(case_id=case_id, clocks={})


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


# -- helpers --------------------------------------------------------------------------------------


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat()


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def check(case: Case, action: str) -> CaseState:
    """The state `action` leads to; `InvalidTransition` names the case, state and action."""
    allowed, target = TRANSITIONS[action]
    if case.state not in allowed:
        raise InvalidTransition(case.case_id, case.state, action)
    return target or case.state


def _record(
    case: Case,
    cause: Cause,
    event: str,
    state: CaseState,
    rules: Rules,
    *,
    unit_id: str | None = None,
    detail: str | None = None,
) -> Case:
    """The case moved to `state`; add the timeline entry and the case.events message."""
    msg = CaseEventRecorded(
        event_id=derived_event_id("case.event", cause.event_id, event),
        occurred_at=cause.occurred_at,
        producer=rules.producer,
        case_id=case.case_id,
        event=event,
        state=state,
        previous_state=case.state,
        unit_id=unit_id,
        caused_by=cause.event_id,
        detail=detail[:2000] if detail else None,
    )
    entry = TimelineEntry(
        at=_iso(cause.occurred_at),
        event=event,
        state=state.value,
        unit_id=unit_id,
        detail=msg.detail,
        event_id=msg.event_id,
    )
    return evolve(
        case,
        state=state,
        timeline=(*case.timeline, entry),
        outbox=(*case.outbox, Outgoing(CASE_EVENTS.name, msg)),
    )


def _send(case: Case, message: Envelope, topic: str) -> Case:
    return evolve(case, outbox=(*case.outbox, Outgoing(topic, message)))


def _effect(case: Case, key: str, value: dict[str, Any]) -> Case:
    return evolve(case, effects={**case.effects, key: value})


def _schedule(case: Case, clock: str, due_at: dt.datetime, step: str, **extra: Any) -> Case:
    due = _iso(due_at)
    payload = {"case_id": case.case_id, "clock": clock, "step": step, "due_at": due}
    return evolve(
        case,
        effects={**case.effects, f"timer:{clock}": {"due_at": due, "payload": payload | extra}},
        clocks=None if case.clocks is None else {**case.clocks, clock: due},
    )


CLOCKS = ("ack", "sign", "progress", "feedback", "callback")  # a case's timers (see on_timer)


def _cancel(case: Case, *clocks: str, always: bool = False) -> Case:
    """Stop those clocks: the ones the case has asked to run (each cancel costs the store a
    lookup), or any of them when it does not know which run (`clocks` is None) or `always`."""
    running = case.clocks
    if running is not None and not always:
        clocks = tuple(c for c in clocks if c in running)
        if not clocks:
            return case
    return evolve(
        case,
        effects={**case.effects, **{f"timer:{c}": {"due_at": None} for c in clocks}},
        clocks=None if running is None else {k: v for k, v in running.items() if k not in clocks},
    )


def _done(case: Case, cause: Cause) -> Case:
    return evolve(case, processed=case.processed | {cause.event_id}, version=case.version + 1)


def _reply(
    case: Case,
    cause: Cause,
    purpose: ReplyPurpose,
    rules: Rules,
    *,
    channel: ReplyChannel = ReplyChannel.COMMENT,
    hop: int = 0,
    **variables: str,
) -> Case:
    """Ask the notifier to tell the citizen (or the public) something, in masked words only."""
    if case.reply_to is None:  # the appeal has not reached the tracker yet: nobody to tell
        return case
    target = ReplyTarget.model_validate(case.reply_to)
    request = ReplyRequested(
        event_id=derived_event_id("reply", cause.event_id, purpose.value),
        occurred_at=cause.occurred_at,
        producer=rules.producer,
        case_id=case.case_id,
        purpose=purpose,
        hop=hop,
        channel=channel,
        target=target,
        template_id=purpose.value,
        variables={
            "account": case.account or target.account,
            "case_ref": case.case_id[-8:],
            "unit_name": _unit_name(case),
            **variables,
        },
    )
    return _send(case, request, REPLIES_REQUESTED.name)


def _unit_name(case: Case) -> str:
    return (case.assigned_handle or "").lstrip("@") or case.assigned_unit or ""


def _supervise(case: Case, cause: Cause, rules: Rules, level: int, reason: str) -> Case:
    """纵督促: the unit `level` tiers above the lead unit orders it to act. False-y when there is
    no tier that high (the case is at the top)."""
    if case.assigned_unit is None or level >= len(case.chain):
        return case
    supervisor = case.chain[-1 - level]
    order = SupervisionOrdered(
        event_id=derived_event_id("supervision", cause.event_id, str(level)),
        occurred_at=cause.occurred_at,
        producer=rules.producer,
        case_id=case.case_id,
        from_unit=supervisor,
        to_unit=case.assigned_unit,
        reason=reason,
        level=level,
    )
    case = evolve(case, escalation_level=max(case.escalation_level, level))
    case = _record(
        case,
        cause,
        "case.escalated",
        case.state,
        rules,
        unit_id=supervisor,
        detail=f"level {level}: {supervisor} → {case.assigned_unit}: {reason}",
    )
    return _send(case, order, SUPERVISION_ORDERS.name)


# -- the clocks -----------------------------------------------------------------------------------


def _start_feedback(case: Case, rules: Rules, start: dt.datetime, deadline: dt.datetime) -> Case:
    """(Re)start the feedback clock: its first reminder still ahead, or the deadline itself."""
    reminders = _reminders(case, rules, start, deadline, after=start)
    case = evolve(case, deadline=_iso(deadline), overdue=False)
    if reminders:
        return _schedule(
            case, "feedback", reminders[0], "remind", deadline=_iso(deadline), start=_iso(start)
        )
    return _schedule(case, "feedback", deadline, "due", deadline=_iso(deadline))


def _reminders(
    case: Case, rules: Rules, start: dt.datetime, deadline: dt.datetime, *, after: dt.datetime
) -> list[dt.datetime]:
    """The reminders of a feedback clock that ran from `start` to `deadline`, later than `after`.
    The span is the one the limit gives; an extension's span runs from its approval to the new
    deadline, so its reminders are fractions of that."""
    span = deadline - start
    limits = rules.limits.limits(case.urgency_class, case.category)
    times = {
        rules.limits.notice_time(
            start + span * f, case.urgency_class, case.category, rules.calendar
        )
        for f in limits.reminders
    }
    return sorted(t for t in times if after < t < deadline)


def _feedback_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    p = fired.payload
    if case.state not in OPEN_STATES or p.get("deadline") != case.deadline or not case.deadline:
        return case  # resolved, or the deadline moved (an extension): this firing is stale
    deadline = _at(case.deadline)
    limits, cal = rules.limits, rules.calendar
    cls, cat = case.urgency_class, case.category
    if p["step"] == "remind":
        case = _record(
            case,
            fired,
            "case.reminded",
            case.state,
            rules,
            unit_id=case.assigned_unit,
            detail=f"deadline {cal.local(deadline):%Y-%m-%d %H:%M}",
        )
        start = _at(str(p.get("start") or case.received_at or case.deadline))
        later = _reminders(case, rules, start, deadline, after=_at(p["due_at"]))
        if later:
            return _schedule(
                case, "feedback", later[0], "remind", deadline=case.deadline, start=_iso(start)
            )
        return _schedule(case, "feedback", deadline, "due", deadline=case.deadline)
    if p["step"] == "due":
        case = evolve(case, overdue=True)
        case = _record(
            case,
            fired,
            "case.chased",  # 催办
            case.state,
            rules,
            unit_id=case.assigned_unit,
            detail=f"overdue since {cal.local(deadline):%Y-%m-%d %H:%M}",
        )
        at = limits.notice_time(limits.escalation_at(deadline, cls, cat, cal), cls, cat, cal)
        return _schedule(case, "feedback", at, "escalate", deadline=case.deadline, level=1)
    if p["step"] == "escalate":
        level = int(p.get("level", 1))
        case = _supervise(case, fired, rules, level, "办理超期，请督促办理并反馈")
        if level + 1 < len(case.chain):
            after = limits.escalation_at(fired.occurred_at, cls, cat, cal)
            at = limits.notice_time(after, cls, cat, cal)
            return _schedule(
                case, "feedback", at, "escalate", deadline=case.deadline, level=level + 1
            )
        return case
    return case


def _sign_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    p = fired.payload
    waiting = case.state in {S.DISPATCHED, S.REOPENED} and case.signed_at is None
    if not waiting or p.get("hop") != _final_hop(case):
        return case
    level = int(p.get("level", 1))
    if level == 1:
        case = _record(
            case, fired, "case.signing_overdue", case.state, rules, unit_id=case.assigned_unit
        )
    case = _supervise(case, fired, rules, level, "派单未按时签收，请即签收办理")
    if level + 1 < len(case.chain):
        limits, cal, cls, cat = rules.limits, rules.calendar, case.urgency_class, case.category
        at = limits.notice_time(
            limits.escalation_at(fired.occurred_at, cls, cat, cal), cls, cat, cal
        )
        return _schedule(case, "sign", at, "escalate", hop=p["hop"], level=level + 1)
    return case


def _final_hop(case: Case) -> int | None:
    finals = [h["hop"] for h in case.hops if h["final"]]
    return max(finals) if finals else None


def on_timer(case: Case, fired: TimerFired, rules: Rules) -> Case:
    """A clock of the case ran out."""
    if case.has_processed(fired.event_id):
        return case
    before = case
    if fired.clock == "feedback":
        case = _feedback_fired(case, fired, rules)
    elif fired.clock == "sign":
        case = _sign_fired(case, fired, rules)
    elif fired.clock == "ack":
        if not case.acknowledged:
            case = _record(case, fired, "case.acknowledgment_overdue", case.state, rules)
    elif fired.clock == "progress":
        if case.first_progress_at is None and case.state in WORKING:
            case = _record(
                case,
                fired,
                "case.progress_overdue",
                case.state,
                rules,
                unit_id=case.assigned_unit,
                detail="催办: no progress reported in time",
            )
    elif fired.clock == "callback":
        case = _callback_fired(case, fired, rules)
    return case if case is before else _done(case, fired)


# -- messages from the other services -------------------------------------------------------------


def open_case(case: Case, appeal: AppealNormalized, *, rules: Rules) -> Case:
    """A new appeal: open the case, ask for the public acknowledgment, start its clock.

    A dispatch may reach the tracker before the appeal it came from (they travel on different
    topics), so opening never moves the state: it fills in what the appeal tells. Another post
    of the same citizen about the case (a repeat, a follow-up) goes on the timeline.
    """
    if case.has_processed(appeal.event_id):
        return case
    if case.opened:
        if case.paused_since is not None and appeal.follow_up_of and case.state in WORKING:
            return _done(_resume(case, appeal, rules), appeal)
        if appeal.follow_up_of or appeal.duplicate_of:
            kind = "duplicate" if appeal.duplicate_of else "follow-up"
            case = _record(
                case,
                appeal,
                "case.follow_up",
                case.state,
                rules,
                detail=f"{kind} via {appeal.account}: {appeal.masked_text}",
            )
        return _done(case, appeal)  # else: the same post again (a platform re-send)
    received = appeal.occurred_at
    case = evolve(
        case,
        opened=True,
        account=appeal.account,
        platform=appeal.platform,
        author_id=appeal.author.id,
        masked_text=appeal.masked_text,
        reply_to=appeal.reply_to.model_dump(),
        received_at=_iso(received),
    )
    case = _record(case, appeal, "case.opened", case.state, rules, detail=f"via {appeal.account}")
    case = _reply(case, appeal, ReplyPurpose.ACKNOWLEDGMENT, rules)
    ack_due = rules.limits.deadline(
        Kind.ACKNOWLEDGMENT, case.urgency_class, case.category, received, rules.calendar
    )
    if not case.acknowledged:
        case = _schedule(case, "ack", ack_due, "due")
    if case.assigned_unit is not None and case.deadline is None:
        case = _start_clocks_after_dispatch(case, rules)
    return _done(case, appeal)


def _start_clocks_after_dispatch(case: Case, rules: Rules) -> Case:
    """The feedback clock runs from the receipt, in the class the router chose."""
    assert case.received_at is not None
    received = _at(case.received_at)
    deadline = rules.limits.deadline(
        Kind.FEEDBACK, case.urgency_class, case.category, received, rules.calendar
    )
    return _start_feedback(case, rules, received, deadline)


def record_dispatch(case: Case, order: DispatchOrdered, *, rules: Rules) -> Case:
    """One hop of the dispatch reached the tracker."""
    if case.has_processed(order.event_id):
        return case
    # A coordination request may arrive before the orders (another topic): a case waiting
    # for a partner agency keeps waiting when its dispatch is recorded. A hop that reaches a
    # case already resolved or closed (a late copy, a reassignment that came too late) goes on
    # the timeline and changes nothing else.
    allowed, target = TRANSITIONS["dispatch"]
    if case.state not in allowed:
        case = _record(
            case,
            order,
            "case.dispatch_ignored",
            case.state,
            rules,
            unit_id=order.to_unit,
            detail=f"hop {order.hop} to {order.to_unit} arrived in state {case.state.value}",
        )
        return _done(case, order)
    state = case.state if case.state is S.COORDINATING else target or case.state
    hop = {
        "hop": order.hop,
        "round": order.round,
        "from_unit": order.from_unit,
        "to_unit": order.to_unit,
        "final": order.final,
        "mode": order.mode.value,
        "at": _iso(order.occurred_at),
    }
    hops = tuple(
        sorted((*[h for h in case.hops if h["hop"] != order.hop], hop), key=lambda h: h["hop"])
    )
    newest = max(h["hop"] for h in hops) == order.hop
    if newest:
        case = evolve(
            case,
            chain=tuple(order.chain),
            category=order.category,
            urgency=order.urgency.value,
            assigned_unit=order.lead_unit,
            co_units=tuple(order.co_units),
        )
    case = evolve(case, hops=hops)
    if order.final and newest:
        case = evolve(case, assigned_handle=order.to_handle, signed_at=None, signed_in_time=None)
    case = _record(
        case,
        order,
        "case.dispatched",
        state,
        rules,
        unit_id=order.to_unit,
        detail=f"hop {order.hop}: {order.from_unit} → {order.to_unit}"
        + (f" ({order.reason})" if order.reason else ""),
    )
    units = {f"unit:{unit}": {"unit": unit} for unit in {*order.chain, *order.co_units}}
    case = evolve(case, effects={**case.effects, **units})
    if order.final and newest:
        cal, cls, cat = rules.calendar, case.urgency_class, case.category
        sign_due = rules.limits.deadline(Kind.SIGNING, cls, cat, order.occurred_at, cal)
        case = evolve(case, sign_due=_iso(sign_due))
        case = _schedule(case, "sign", sign_due, "due", hop=order.hop, level=1)
        if case.received_at is not None and case.deadline is None:
            case = _start_clocks_after_dispatch(case, rules)
        if order.mode is DispatchMode.PUBLIC_MENTION and order.to_handle:
            case = _reply(
                case,
                order,
                ReplyPurpose.DISPATCH_ANNOUNCEMENT,
                rules,
                hop=order.hop,
                to_handle=order.to_handle,
            )
    return _done(case, order)


def record_reply(case: Case, sent: ReplySent, *, rules: Rules) -> Case:
    """The notifier reports what the platform answered to a reply."""
    if case.has_processed(sent.event_id):
        return case
    replies = {
        **case.replies,
        sent.idempotency_key: {
            "purpose": sent.purpose.value,
            "status": sent.status,
            "platform_message_id": sent.platform_message_id,
            "text": sent.text,
            "error": sent.error,
        },
    }
    case = evolve(case, replies=replies)
    acknowledged_now = (
        sent.purpose is ReplyPurpose.ACKNOWLEDGMENT
        and sent.status == "sent"
        and not case.acknowledged
    )
    if acknowledged_now:
        case = evolve(case, acknowledged=True)
        state = check(case, "acknowledge") if case.state is S.RECEIVED else case.state
        case = _record(
            case,
            sent,
            "case.acknowledged",
            state,
            rules,
            detail=f"reply {sent.platform_message_id}",
        )
        case = _cancel(case, "ack")
    elif sent.status != "sent":
        case = _record(
            case,
            sent,
            f"reply.{sent.status}",
            case.state,
            rules,
            detail=f"{sent.purpose.value}: {sent.error or ''}"[:500],
        )
    return _done(case, sent)


def record_coordination(case: Case, request: CoordinationRequested, *, rules: Rules) -> Case:
    """横协调: an outside agency is asked to lead (the case waits for it) or to help."""
    if case.has_processed(request.event_id):
        return case
    allowed, target = TRANSITIONS["coordinate"]
    waits = request.role == "lead" and case.state in allowed
    state = target if waits and target else case.state
    detail = f"{request.partner_name} ({request.partner_kind}, {request.role}): {request.rule}"
    case = _record(
        case,
        request,
        "case.coordination_requested",
        state,
        rules,
        unit_id=request.from_unit,
        detail=detail,
    )
    if request.role == "lead":
        case = _reply(
            case,
            request,
            ReplyPurpose.COORDINATION_NOTICE,
            rules,
            partner_name=request.partner_name,
        )
    return _done(case, request)


def record_supervision(case: Case, order: SupervisionOrdered, *, rules: Rules) -> Case:
    """纵督促 ordered by someone else (an operator, another service): it goes on the timeline.
    The tracker's own supervision orders are recorded when it makes them."""
    if case.has_processed(order.event_id):
        return case
    if order.producer == rules.producer:
        return _done(case, order)
    detail = f"{order.from_unit} → {order.to_unit} (level {order.level}): {order.reason}"
    case = _record(
        case,
        order,
        "case.supervision_ordered",
        case.state,
        rules,
        unit_id=order.to_unit,
        detail=detail,
    )
    return _done(case, order)


# -- what the units do (unit.actions) -------------------------------------------------------------


def authorize(case: Case, unit_id: str, action: UnitActionKind) -> None:
    """`NotAllowed` unless `unit_id` may do `action` on the case: the lead unit works on it, the
    tiers above it rule on extensions, any unit that sees it may add a note."""
    operators = {A.REASSIGN, A.MERGE}  # router and tracker /ops, on behalf of a unit
    if action in operators and not case.chain:
        return  # not dispatched yet: no office has it, operators may act on it
    if not case.visible_to(unit_id):
        raise NotAllowed(f"case {case.case_id} is not visible to unit {unit_id}")
    if action is A.NOTE:
        return
    if action in {A.APPROVE_EXTENSION, A.REFUSE_EXTENSION}:
        if unit_id not in case.chain[:-1]:
            raise NotAllowed(
                f"case {case.case_id}: only a unit above {case.assigned_unit} rules on its "
                f"extension, not {unit_id}"
            )
        return
    if action in operators:
        return
    if action is A.PROGRESS and unit_id in case.co_units:
        return
    if unit_id != case.assigned_unit:
        raise NotAllowed(
            f"case {case.case_id} is led by {case.assigned_unit}; {unit_id} cannot {action.value}"
        )


def validate_action(case: Case, action: UnitActed) -> None:
    """Raise `NotAllowed` or `InvalidTransition` when the action cannot be applied now (the unit
    API asks before publishing; the consumer asks again, the case may have moved meanwhile)."""
    authorize(case, action.unit_id, action.action)
    check(case, action.action.value)
    if action.action is A.REQUEST_EXTENSION:
        if case.extension is not None:
            raise NotAllowed(f"case {case.case_id}: an extension request is already pending")
        if action.requested_deadline is None:
            raise NotAllowed("an extension request needs requested_deadline")
        if case.deadline is None or action.occurred_at >= _at(case.deadline):
            raise NotAllowed(
                f"case {case.case_id}: extensions are asked before the deadline "
                f"({case.deadline or 'none yet'})"
            )
        if action.requested_deadline <= _at(case.deadline):
            raise NotAllowed("requested_deadline must be after the current deadline")
    if action.action in {A.APPROVE_EXTENSION, A.REFUSE_EXTENSION} and case.extension is None:
        raise NotAllowed(f"case {case.case_id}: no extension request is pending")
    if action.action is A.AWAIT_CITIZEN:
        if case.paused_since is not None:
            raise NotAllowed(f"case {case.case_id}: already waiting for the citizen")
        if not action.note:
            raise NotAllowed("await_citizen needs a note: what the citizen is asked")
    if action.action is A.MERGE and action.into_case_id in {None, case.case_id}:
        raise NotAllowed(f"case {case.case_id}: merge needs into_case_id, another case")
    if action.action is A.RESOLVE and not action.outcome:
        raise NotAllowed("resolve needs an outcome")
    if action.action is A.RETURN and not (action.reason_code or action.note):
        raise NotAllowed("return needs a reason_code or a note")


def _redispatched_on(case: Case, action: UnitActed) -> bool:
    """Whether a hop the router re-dispatched on `action` (a return it ruled on) is recorded on
    the case."""
    return any(redispatch_event_id(action.event_id, h["hop"]) in case.processed for h in case.hops)


def act(case: Case, action: UnitActed, *, rules: Rules) -> Case:
    """A unit acted on the case. An action the case no longer allows (it moved on since the
    unit API accepted it) is recorded as refused, not applied."""
    if case.has_processed(action.event_id):
        return case
    if action.action is A.RETURN and _redispatched_on(case, action):
        # The router re-dispatched on this return and its order, on another topic, was recorded
        # first: the return counts and goes on the timeline; the case stays where the
        # re-dispatch put it (its clocks are the new unit's).
        case = evolve(case, returns=case.returns + 1)
        reason = f"{action.reason_code or ''} {action.note or ''}".strip()
        case = _record(
            case,
            action,
            "case.returned",
            case.state,
            rules,
            unit_id=action.unit_id,
            detail=f"{reason} (re-dispatched already)".strip(),
        )
        return _done(case, action)
    try:
        validate_action(case, action)
    except (NotAllowed, InvalidTransition) as exc:
        case = _record(
            case,
            action,
            "unit.action_refused",
            case.state,
            rules,
            unit_id=action.unit_id,
            detail=f"{action.action.value}: {exc}",
        )
        return _done(case, action)
    state = check(case, action.action.value)
    at = action.occurred_at
    cal, limits, cls, cat = rules.calendar, rules.limits, case.urgency_class, case.category
    note = action.note or ""
    kind = action.action
    if kind is A.ACCEPT:
        in_time = case.sign_due is None or at <= _at(case.sign_due)
        case = evolve(case, signed_at=_iso(at), signed_in_time=in_time)
        case = _record(case, action, "case.accepted", state, rules, unit_id=action.unit_id)
        case = _cancel(case, "sign")
        due = limits.deadline(Kind.FIRST_PROGRESS, cls, cat, at, cal)
        case = _schedule(case, "progress", due, "due")
    elif kind is A.PROGRESS:
        first = case.first_progress_at is None
        case = evolve(case, first_progress_at=case.first_progress_at or _iso(at))
        case = _record(
            case, action, "case.progress", state, rules, unit_id=action.unit_id, detail=note
        )
        if first:
            case = _cancel(case, "progress")
        if note:
            case = _reply(case, action, ReplyPurpose.PROGRESS, rules, note=note[:100])
    elif kind is A.RESOLVE:
        in_time = case.deadline is None or at <= _at(case.deadline)
        case = evolve(
            case,
            resolved_at=_iso(at),
            resolved_in_time=in_time,
            outcome=action.outcome,
            amount_recovered=action.amount_recovered,
            overdue=False,
            extension=None,
            paused_since=None,
        )
        case = _record(
            case,
            action,
            "case.resolved",
            state,
            rules,
            unit_id=action.unit_id,
            detail=action.outcome,
        )
        case = _cancel(case, "feedback", "progress", "sign")
        case = _reply(case, action, ReplyPurpose.RESOLUTION, rules, outcome=action.outcome or "")
        ask = limits.deadline(Kind.CALLBACK_ASK, cls, cat, at, cal)
        case = _schedule(case, "callback", ask, "ask")
    elif kind is A.RETURN:
        case = evolve(case, returns=case.returns + 1, signed_at=None)
        reason = action.reason_code or ""
        case = _record(
            case,
            action,
            "case.returned",
            state,
            rules,
            unit_id=action.unit_id,
            detail=f"{reason} {note}".strip(),
        )
        case = _cancel(case, "sign", "progress")
    elif kind is A.REQUEST_EXTENSION:
        assert action.requested_deadline is not None
        case = evolve(
            case,
            extension={
                "unit": action.unit_id,
                "requested_deadline": _iso(action.requested_deadline),
                "note": note,
                "at": _iso(at),
            },
        )
        case = _record(
            case,
            action,
            "case.extension_requested",
            state,
            rules,
            unit_id=action.unit_id,
            detail=f"until {cal.local(action.requested_deadline):%Y-%m-%d %H:%M}: {note}",
        )
    elif kind is A.APPROVE_EXTENSION:
        assert case.extension is not None
        granted = action.requested_deadline or _at(case.extension["requested_deadline"])
        case = evolve(case, extension=None, extensions=case.extensions + 1, escalation_level=0)
        case = _record(
            case,
            action,
            "case.extended",
            state,
            rules,
            unit_id=action.unit_id,
            detail=f"new deadline {cal.local(granted):%Y-%m-%d %H:%M}",
        )
        case = _start_feedback(case, rules, at, granted)
        case = _reply(
            case,
            action,
            ReplyPurpose.EXTENSION_NOTICE,
            rules,
            new_deadline=f"{cal.local(granted):%Y-%m-%d %H:%M}",
        )
    elif kind is A.AWAIT_CITIZEN:
        case = evolve(case, paused_since=_iso(at))
        case = _record(
            case,
            action,
            "case.paused",
            state,
            rules,
            unit_id=action.unit_id,
            detail=f"waiting for the citizen: {note}",
        )
        case = _cancel(case, "feedback")
        case = _effect(case, _await_key(case), {"case_id": case.case_id})
        case = _reply(case, action, ReplyPurpose.PROGRESS, rules, note=note[:100])
    elif kind is A.REFUSE_EXTENSION:
        case = evolve(case, extension=None)
        case = _record(
            case,
            action,
            "case.extension_refused",
            state,
            rules,
            unit_id=action.unit_id,
            detail=note,
        )
    elif kind is A.MERGE:
        awaiting = case.state is S.CALLBACK_PENDING or case.paused_since is not None
        case = evolve(case, overdue=False, extension=None, paused_since=None)
        case = _record(
            case,
            action,
            "case.merged",
            state,
            rules,
            unit_id=action.unit_id,
            detail=f"into {action.into_case_id}: {note}".strip(": "),
        )
        case = _cancel(case, *CLOCKS, always=True)  # whatever it knows: it ends here
        if awaiting:  # the citizen's next message no longer answers this case
            case = _effect(case, _await_key(case), {"case_id": None})
    else:  # NOTE, REASSIGN (the router re-dispatches; the tracker keeps the note)
        case = _record(
            case, action, f"case.{kind.value}", state, rules, unit_id=action.unit_id, detail=note
        )
    return _done(case, action)


# -- calling back (回访) ---------------------------------------------------------------------------


def _callback_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    step = fired.payload.get("step")
    cal, limits, cls, cat = rules.calendar, rules.limits, case.urgency_class, case.category
    if step == "ask" and case.state is S.RESOLVED:
        state = check(case, "ask_callback")
        case = _record(case, fired, "case.callback_asked", state, rules)
        case = _reply(
            case,
            fired,
            ReplyPurpose.CALLBACK_QUESTION,
            rules,
            channel=ReplyChannel.PRIVATE_MESSAGE,
            hop=case.reopened,
        )
        case = _effect(case, _await_key(case), {"case_id": case.case_id})
        due = limits.deadline(Kind.CALLBACK_ANSWER, cls, cat, fired.occurred_at, cal)
        return _schedule(case, "callback", due, "answer")
    if step == "answer" and case.state is S.CALLBACK_PENDING:
        case = evolve(
            case, satisfaction=Satisfaction.NO_ANSWER.value, closed_at=_iso(fired.occurred_at)
        )
        case = _record(
            case,
            fired,
            "case.closed",
            check(case, "close"),
            rules,
            detail="no answer to the callback",
        )
        return _effect(case, _await_key(case), {"case_id": None})
    return case


def _await_key(case: Case) -> str:
    return f"await:{case.platform or 'weibo'}:{case.author_id}"


def awaiting_key(platform: str, author_id: str) -> str:
    """The effect key (and index id) of a citizen whose next message may answer a callback."""
    return f"await:{platform}:{author_id}"


def _resume(case: Case, message: AppealNormalized, rules: Rules) -> Case:
    """The citizen answered the office: the feedback clock runs again, its deadline moved by
    the time it stood still (working time for working-time limits)."""
    assert case.paused_since is not None
    since, now = _at(case.paused_since), message.occurred_at
    case = evolve(case, paused_since=None)
    case = _record(
        case,
        message,
        "case.resumed",
        case.state,
        rules,
        unit_id=case.assigned_unit,
        detail=f"the citizen answered: {message.masked_text}",
    )
    case = _effect(case, _await_key(case), {"case_id": None})
    if case.deadline is None:
        return case
    limit = rules.limits.limits(case.urgency_class, case.category).durations[Kind.FEEDBACK]
    old, cal = _at(case.deadline), rules.calendar
    if limit.working:
        moved = cal.add_working(old, cal.working_between(since, max(now, since)))
    else:
        moved = old + max(now - since, dt.timedelta(0))
    return _start_feedback(case, rules, now, moved)


def record_citizen_reply(case: Case, message: AppealNormalized, *, rules: Rules) -> Case | None:
    """The citizen wrote while the case waits for them: the answer to the office's question
    (the clock runs again), or to the callback question if it reads as one. None when the case
    is not waiting for it (the message is then an ordinary post)."""
    if case.has_processed(message.event_id):
        return case
    if case.paused_since is not None and case.state in WORKING:
        return _done(_resume(case, message, rules), message)
    if case.state is not S.CALLBACK_PENDING:
        return None
    answer = parse_satisfaction(message.text)
    if answer is None:
        return None
    case = evolve(case, satisfaction=answer.value)
    case = _effect(case, _await_key(case), {"case_id": None})
    case = _cancel(case, "callback")
    if answer is Satisfaction.DISSATISFIED:
        case = evolve(case, reopened=case.reopened + 1, resolved_at=None, closed_at=None)
        case = _record(
            case,
            message,
            "case.reopened",
            check(case, "reopen"),
            rules,
            unit_id=case.assigned_unit,
            detail=f"不满意: {message.masked_text}",
        )
        deadline = rules.limits.deadline(
            Kind.FEEDBACK, case.urgency_class, case.category, message.occurred_at, rules.calendar
        )
        case = _start_feedback(case, rules, message.occurred_at, deadline)
        case = _supervise(case, message, rules, 1, "回访不满意，重新办理")
    else:
        case = evolve(case, closed_at=_iso(message.occurred_at))
        case = _record(
            case,
            message,
            "case.closed",
            check(case, "close"),
            rules,
            detail=f"callback: {answer.value}",
        )
    return _done(case, message)
