"""What the other services' messages do to a case: an appeal opens it (intake), the router's
dispatch hops and coordination requests, the notifier's reports of sent replies, supervision
orders of others."""

from __future__ import annotations

from typing import Any

from fengqiao.contracts import (
    AppealNormalized,
    CoordinationRequested,
    DispatchMode,
    DispatchOrdered,
    ReplyPurpose,
    ReplySent,
    SupervisionOrdered,
)
from fengqiao.services.tracker.domain.callbacks import resume
from fengqiao.services.tracker.domain.case import (
    TRANSITIONS,
    WORKING,
    Case,
    Rules,
    S,
    check,
    done,
    evolve,
    iso,
    with_effects,
)
from fengqiao.services.tracker.domain.clocks import cancel, schedule, start_clocks_after_dispatch
from fengqiao.services.tracker.domain.effects import Clock, ShowToUnit, Step
from fengqiao.services.tracker.domain.outgoing import record, reply
from fengqiao.services.tracker.domain.repeats import repeated
from fengqiao.services.tracker.timelimits import Kind


def open_case(case: Case, appeal: AppealNormalized, *, rules: Rules) -> Case:
    """A new appeal: open the case, ask for the public acknowledgment, start its clock.

    A dispatch may reach the tracker before the appeal it came from (they travel on different
    topics), so opening never moves the state: it fills in what the appeal tells. Another post
    about the case (a repeat, a repost, a follow-up) is counted (`repeats`).
    """
    if case.has_processed(appeal.event_id):
        return case
    if case.opened:
        return _posted_again(case, appeal, rules)
    received = appeal.occurred_at
    case = evolve(
        case,
        opened=True,
        account=appeal.account,
        platform=appeal.platform,
        author_id=appeal.author.id,
        masked_text=appeal.masked_text,
        reply_to=appeal.reply_to.model_dump(),
        received_at=iso(received),
    )
    case = record(case, appeal, "case.opened", case.state, rules, detail=f"via {appeal.account}")
    case = reply(case, appeal, ReplyPurpose.ACKNOWLEDGMENT, rules)
    ack_due = rules.limits.deadline(
        Kind.ACKNOWLEDGMENT, case.urgency_class, case.category, received, rules.calendar
    )
    if not case.acknowledged:
        case = schedule(case, Clock.ACK, ack_due, Step.DUE)
    if case.assigned_unit is not None and case.deadline is None:
        case = start_clocks_after_dispatch(case, rules)
    return done(case, appeal)


def _posted_again(case: Case, appeal: AppealNormalized, rules: Rules) -> Case:
    """The citizen posted about an open case again: the answer the case waits for, a follow-up
    or a duplicate, or the same words through another account: counted (`repeats`)."""
    if case.paused_since is not None and appeal.follow_up_of and case.state in WORKING:
        return done(resume(case, appeal, rules), appeal)
    return repeated(case, appeal, rules)


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
        case = record(
            case,
            order,
            "case.dispatch_ignored",
            case.state,
            rules,
            unit_id=order.to_unit,
            detail=f"hop {order.hop} to {order.to_unit} arrived in state {case.state.value}",
        )
        return done(case, order)
    state = case.state if case.state is S.COORDINATING else target or case.state
    hops = tuple(
        sorted((*[h for h in case.hops if h["hop"] != order.hop], _hop(order)), key=_hop_number)
    )
    newest = max(h["hop"] for h in hops) == order.hop
    if newest:
        case = evolve(
            case,
            chain=tuple(order.chain),
            category=order.category,
            urgency=order.urgency.value,
            routing_confidence=order.confidence,
            assigned_unit=order.lead_unit,
            co_units=tuple(order.co_units),
        )
    case = evolve(case, hops=hops)
    if order.final and newest:
        case = evolve(case, assigned_handle=order.to_handle, signed_at=None, signed_in_time=None)
    case = record(
        case,
        order,
        "case.dispatched",
        state,
        rules,
        unit_id=order.to_unit,
        detail=f"hop {order.hop}: {order.from_unit} → {order.to_unit}"
        + (f" ({order.reason})" if order.reason else ""),
    )
    case = with_effects(case, *(ShowToUnit(unit) for unit in {*order.chain, *order.co_units}))
    if order.final and newest:
        case = _final_hop_reached(case, order, rules)
    return done(case, order)


def _hop(order: DispatchOrdered) -> dict[str, Any]:
    return {
        "hop": order.hop,
        "round": order.round,
        "from_unit": order.from_unit,
        "to_unit": order.to_unit,
        "final": order.final,
        "mode": order.mode.value,
        "at": iso(order.occurred_at),
    }


def _hop_number(hop: dict[str, Any]) -> int:
    number: int = hop["hop"]
    return number


def _final_hop_reached(case: Case, order: DispatchOrdered, rules: Rules) -> Case:
    """The lead unit has the order: its signing clock runs (the feedback clock too, once the
    appeal is known), and a public mention announces it."""
    cal, cls, cat = rules.calendar, case.urgency_class, case.category
    sign_due = rules.limits.deadline(Kind.SIGNING, cls, cat, order.occurred_at, cal)
    case = evolve(case, sign_due=iso(sign_due))
    case = schedule(case, Clock.SIGN, sign_due, Step.DUE, hop=order.hop, level=1)
    if case.received_at is not None and case.deadline is None:
        case = start_clocks_after_dispatch(case, rules)
    if order.mode is DispatchMode.PUBLIC_MENTION and order.to_handle:
        case = reply(
            case,
            order,
            ReplyPurpose.DISPATCH_ANNOUNCEMENT,
            rules,
            hop=order.hop,
            to_handle=order.to_handle,
        )
    return case


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
        detail = f"reply {sent.platform_message_id}"
        case = record(case, sent, "case.acknowledged", state, rules, detail=detail)
        case = cancel(case, Clock.ACK)
    elif sent.status != "sent":
        case = record(
            case,
            sent,
            f"reply.{sent.status}",
            case.state,
            rules,
            detail=f"{sent.purpose.value}: {sent.error or ''}"[:500],
        )
    return done(case, sent)


def record_coordination(case: Case, request: CoordinationRequested, *, rules: Rules) -> Case:
    """横协调: an outside agency is asked to lead (the case waits for it) or to help."""
    if case.has_processed(request.event_id):
        return case
    allowed, target = TRANSITIONS["coordinate"]
    waits = request.role == "lead" and case.state in allowed
    state = target if waits and target else case.state
    detail = f"{request.partner_name} ({request.partner_kind}, {request.role}): {request.rule}"
    case = record(
        case,
        request,
        "case.coordination_requested",
        state,
        rules,
        unit_id=request.from_unit,
        detail=detail,
    )
    if request.role == "lead":
        case = reply(
            case,
            request,
            ReplyPurpose.COORDINATION_NOTICE,
            rules,
            partner_name=request.partner_name,
        )
    return done(case, request)


def record_supervision(case: Case, order: SupervisionOrdered, *, rules: Rules) -> Case:
    """纵督促 ordered by someone else (an operator, another service): it goes on the timeline.
    The tracker's own supervision orders are recorded when it makes them."""
    if case.has_processed(order.event_id):
        return case
    if order.producer == rules.producer:
        return done(case, order)
    detail = f"{order.from_unit} → {order.to_unit} (level {order.level}): {order.reason}"
    case = record(
        case,
        order,
        "case.supervision_ordered",
        case.state,
        rules,
        unit_id=order.to_unit,
        detail=detail,
    )
    return done(case, order)
