"""The case: its state machine, its timeline, and what it asks others to do.

Pure: every function takes the case and a message (and `now` where it needs one) and returns the
new case; the messages it wants published are put in the case's outbox, written with the state
in one document, so a crash can never lose them or apply a message twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from contracts import (
    AppealNormalized,
    CaseEventRecorded,
    CaseState,
    CoordinationRequested,
    DispatchOrdered,
    Envelope,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    SupervisionOrdered,
    derived_event_id,
)
from contracts.topics import CASE_EVENTS, REPLIES_REQUESTED

S = CaseState

# action → the states it may start from, and the state it leads to (None: state unchanged).
TRANSITIONS: dict[str, tuple[frozenset[CaseState], CaseState | None]] = {
    "acknowledge": (frozenset({S.RECEIVED}), S.ACKNOWLEDGED),
    "dispatch": (
        frozenset({S.RECEIVED, S.ACKNOWLEDGED, S.DISPATCHED, S.RETURNED, S.COORDINATING}),
        S.DISPATCHED,
    ),
    "coordinate": (frozenset({S.RECEIVED, S.ACKNOWLEDGED, S.DISPATCHED}), S.COORDINATING),
}


class InvalidTransition(Exception):
    """An action that the case's state does not allow."""

    def __init__(self, case_id: str, state: CaseState, action: str) -> None:
        super().__init__(f"case {case_id}: cannot {action} in state {state.value}")
        self.case_id, self.state, self.action = case_id, state, action


@dataclass(frozen=True)
class Outgoing:
    """A message waiting to be published, with its topic."""

    topic: str
    message: Envelope


@dataclass(frozen=True)
class TimelineEntry:
    at: str
    event: str
    state: str
    unit_id: str | None
    detail: str | None
    event_id: str


@dataclass(frozen=True)
class Case:
    """A case as the tracker keeps it."""

    case_id: str
    state: CaseState = S.RECEIVED
    opened: bool = False
    account: str | None = None
    author_id: str | None = None
    masked_text: str | None = None
    reply_to: dict[str, Any] | None = None
    chain: tuple[str, ...] = ()
    hops: tuple[dict[str, Any], ...] = ()
    assigned_unit: str | None = None
    category: str | None = None
    urgency: str | None = None
    acknowledged: bool = False
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: tuple[TimelineEntry, ...] = ()
    processed: frozenset[str] = frozenset()
    outbox: tuple[Outgoing, ...] = ()
    version: int = 0

    def has_processed(self, event_id: str) -> bool:
        return event_id in self.processed


def new_case(case_id: str) -> Case:
    return Case(case_id=case_id)


def _transition(case: Case, action: str) -> CaseState:
    allowed, target = TRANSITIONS[action]
    if case.state not in allowed:
        raise InvalidTransition(case.case_id, case.state, action)
    return target or case.state


def _record(
    case: Case,
    cause: Envelope,
    event: str,
    state: CaseState,
    *,
    producer: str,
    unit_id: str | None = None,
    detail: str | None = None,
) -> Case:
    """The case moved to `state`; add the timeline entry and the case.events message."""
    msg = CaseEventRecorded(
        event_id=derived_event_id("case.event", cause.event_id, event),
        occurred_at=cause.occurred_at,
        producer=producer,
        case_id=case.case_id,
        event=event,
        state=state,
        previous_state=case.state,
        unit_id=unit_id,
        caused_by=cause.event_id,
        detail=detail,
    )
    entry = TimelineEntry(
        at=cause.occurred_at.isoformat(),
        event=event,
        state=state.value,
        unit_id=unit_id,
        detail=detail,
        event_id=msg.event_id,
    )
    return replace(
        case,
        state=state,
        timeline=(*case.timeline, entry),
        outbox=(*case.outbox, Outgoing(CASE_EVENTS.name, msg)),
    )


def _done(case: Case, cause: Envelope) -> Case:
    return replace(case, processed=case.processed | {cause.event_id}, version=case.version + 1)


def open_case(case: Case, appeal: AppealNormalized, *, producer: str) -> Case:
    """A new appeal: open the case and ask for the public acknowledgment.

    A dispatch may reach the tracker before the appeal it came from (they travel on different
    topics), so opening never moves the state: it fills in what the appeal tells.
    """
    if case.has_processed(appeal.event_id):
        return case
    if case.opened:  # the same post again (a platform re-send): nothing new
        return _done(case, appeal)
    case = replace(
        case,
        opened=True,
        account=appeal.account,
        author_id=appeal.author.id,
        masked_text=appeal.masked_text,
        reply_to=appeal.reply_to.model_dump(),
    )
    case = _record(
        case, appeal, "case.opened", case.state, producer=producer, detail=f"via {appeal.account}"
    )
    request = ReplyRequested(
        event_id=derived_event_id("reply", appeal.event_id, ReplyPurpose.ACKNOWLEDGMENT.value),
        occurred_at=appeal.occurred_at,
        producer=producer,
        case_id=case.case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        hop=0,
        channel=ReplyChannel.COMMENT,
        target=appeal.reply_to,
        template_id="acknowledgment",
        variables={"account": appeal.account, "case_ref": case.case_id[-8:]},
    )
    case = replace(case, outbox=(*case.outbox, Outgoing(REPLIES_REQUESTED.name, request)))
    return _done(case, appeal)


def record_dispatch(case: Case, order: DispatchOrdered, *, producer: str) -> Case:
    """One hop of the dispatch reached the tracker."""
    if case.has_processed(order.event_id):
        return case
    # A coordination request may arrive before the orders (another topic): a case waiting
    # for a partner agency keeps waiting when its dispatch is recorded.
    state = case.state if case.state is S.COORDINATING else _transition(case, "dispatch")
    hop = {
        "hop": order.hop,
        "from_unit": order.from_unit,
        "to_unit": order.to_unit,
        "final": order.final,
        "mode": order.mode.value,
        "at": order.occurred_at.isoformat(),
    }
    hops = tuple(
        sorted((*[h for h in case.hops if h["hop"] != order.hop], hop), key=lambda h: h["hop"])
    )
    case = replace(
        case,
        hops=hops,
        chain=tuple(order.chain),
        category=order.category,
        urgency=order.urgency.value,
        assigned_unit=order.lead_unit,
    )
    case = _record(
        case,
        order,
        "case.dispatched",
        state,
        producer=producer,
        unit_id=order.to_unit,
        detail=f"hop {order.hop}: {order.from_unit} → {order.to_unit}",
    )
    return _done(case, order)


def record_reply(case: Case, sent: ReplySent, *, producer: str) -> Case:
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
    case = replace(case, replies=replies)
    acknowledged_now = (
        sent.purpose is ReplyPurpose.ACKNOWLEDGMENT
        and sent.status == "sent"
        and not case.acknowledged
    )
    if acknowledged_now:
        case = replace(case, acknowledged=True)
        state = _transition(case, "acknowledge") if case.state is S.RECEIVED else case.state
        case = _record(
            case,
            sent,
            "case.acknowledged",
            state,
            producer=producer,
            detail=f"reply {sent.platform_message_id}",
        )
    elif sent.status != "sent":
        case = _record(
            case,
            sent,
            f"reply.{sent.status}",
            case.state,
            producer=producer,
            detail=f"{sent.purpose.value}: {sent.error or ''}"[:500],
        )
    return _done(case, sent)


def record_coordination(case: Case, request: CoordinationRequested, *, producer: str) -> Case:
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
        producer=producer,
        unit_id=request.from_unit,
        detail=detail,
    )
    return _done(case, request)


def record_supervision(case: Case, order: SupervisionOrdered, *, producer: str) -> Case:
    """纵督促: an upper tier ordered a lower one to act; it goes on the timeline."""
    if case.has_processed(order.event_id):
        return case
    detail = f"{order.from_unit} → {order.to_unit} (level {order.level}): {order.reason}"
    case = _record(
        case,
        order,
        "case.supervision_ordered",
        case.state,
        producer=producer,
        unit_id=order.to_unit,
        detail=detail[:2000],
    )
    return _done(case, order)
