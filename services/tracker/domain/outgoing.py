"""What the case tells others: its timeline entries and case.events, replies to the citizen,
supervision orders. Each goes into the case's outbox, published once the case is stored."""

from __future__ import annotations

from fengqiao.contracts import (
    AppealNormalized,
    CaseEventRecorded,
    CaseState,
    Envelope,
    Outgoing,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
    SupervisionOrdered,
    Urgency,
    channel_for,
    derived_event_id,
)
from fengqiao.contracts.topics import CASE_EVENTS, REPLIES_REQUESTED, SUPERVISION_ORDERS
from fengqiao.services.tracker.domain.case import (
    Case,
    Cause,
    Rules,
    S,
    TimelineEntry,
    check,
    evolve,
    iso,
    with_timeline,
)


def record(
    case: Case,
    cause: Cause,
    event: str,
    state: CaseState,
    rules: Rules,
    *,
    unit_id: str | None = None,
    detail: str | None = None,
    person: str | None = None,
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
        person=person,
        caused_by=cause.event_id,
        detail=detail[:2000] if detail else None,
    )
    entry = TimelineEntry(
        at=iso(cause.occurred_at),
        event=event,
        state=state.value,
        unit_id=unit_id,
        detail=msg.detail,
        event_id=msg.event_id,
        person=person,
    )
    case = with_timeline(case, (*case.timeline, entry), rules.bounds)
    return evolve(case, state=state, outbox=(*case.outbox, Outgoing(CASE_EVENTS.name, msg)))


def send(case: Case, message: Envelope, topic: str) -> Case:
    return evolve(case, outbox=(*case.outbox, Outgoing(topic, message)))


def reply(
    case: Case,
    cause: Cause,
    purpose: ReplyPurpose,
    rules: Rules,
    *,
    channel: ReplyChannel | None = None,
    hop: int = 0,
    **variables: str,
) -> Case:
    """Ask the notifier to tell the citizen (or the public) something, in masked words only:
    on `channel`, by default the one the citizen used (a comment for a post or a comment, a
    private message for a private message). A platform that answers through the request's
    status (Open311: case.events are its status) is sent nothing."""
    if case.reply_to is None:  # the appeal has not reached the tracker yet: nobody to tell
        return case
    target = ReplyTarget.model_validate(case.reply_to)
    used = channel_for(target)
    if used is None:
        return _answered_by_status(case, cause, purpose, rules)
    channel = channel or used
    category, urgent = _sensitivity(case, cause)
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
        category=category,
        urgent=urgent,
        confidence=case.routing_confidence,
    )
    return send(case, request, REPLIES_REQUESTED.name)


def _answered_by_status(case: Case, cause: Cause, purpose: ReplyPurpose, rules: Rules) -> Case:
    """The citizen follows the request's status, which every case event updates; the
    acknowledgment is the status itself (the request was answered with its id on arrival)."""
    if purpose is not ReplyPurpose.ACKNOWLEDGMENT or case.acknowledged:
        return case
    case = evolve(case, acknowledged=True)
    state = check(case, "acknowledge") if case.state is S.RECEIVED else case.state
    return record(
        case,
        cause,
        "case.acknowledged",
        state,
        rules,
        detail="received; this request's status follows the case",
    )


def _sensitivity(case: Case, cause: Cause) -> tuple[str | None, bool]:
    """The category and urgency the notifier's approval rules hold replies by: the dispatch's
    once the case has one, before that (the acknowledgment) intake's triage of the appeal. (The
    rules also hold by the routing's confidence, `Case.routing_confidence`.)"""
    triage = cause.triage if isinstance(cause, AppealNormalized) else None
    category = case.category or (triage.category if triage is not None else None)
    urgent = case.urgency == Urgency.URGENT.value or (
        triage is not None and (triage.urgent or triage.possibly_urgent)
    )
    return category, urgent


def _unit_name(case: Case) -> str:
    return (case.assigned_handle or "").lstrip("@") or case.assigned_unit or ""


def supervise(case: Case, cause: Cause, rules: Rules, level: int, reason: str) -> Case:
    """纵督促: the unit `level` tiers above the lead unit orders it to act. The case unchanged
    when there is no tier that high (the case is at the top)."""
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
    case = record(
        case,
        cause,
        "case.escalated",
        case.state,
        rules,
        unit_id=supervisor,
        detail=f"level {level}: {supervisor} → {case.assigned_unit}: {reason}",
    )
    return send(case, order, SUPERVISION_ORDERS.name)
