"""A clock of a case ran out (`on_timer`): what each clock's firing does. A firing that no
longer matches the case (it moved on, the deadline was extended) changes nothing."""

from __future__ import annotations

from collections.abc import Callable

from fengqiao.services.tracker.domain.callbacks import callback_fired
from fengqiao.services.tracker.domain.case import (
    OPEN_STATES,
    WORKING,
    Case,
    Rules,
    S,
    done,
    evolve,
    instant,
    iso,
)
from fengqiao.services.tracker.domain.clocks import (
    TimerFired,
    feedback_reminders,
    next_escalation,
    schedule,
)
from fengqiao.services.tracker.domain.effects import Clock, Step
from fengqiao.services.tracker.domain.outgoing import record, supervise


def _feedback_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    p = fired.step
    if case.state not in OPEN_STATES or p.deadline != case.deadline or not case.deadline:
        return case  # resolved, or the deadline moved (an extension): this firing is stale
    due, deadline = case.deadline, instant(case.deadline)
    local = f"{rules.calendar.local(deadline):%Y-%m-%d %H:%M}"
    if p.step is Step.REMIND:
        case = record(
            case,
            fired,
            "case.reminded",
            case.state,
            rules,
            unit_id=case.assigned_unit,
            detail=f"deadline {local}",
        )
        start = instant(p.start or case.received_at or due)
        later = feedback_reminders(case, rules, start, deadline, after=instant(p.due_at))
        if later:
            return schedule(
                case,
                Clock.FEEDBACK,
                later[0],
                Step.REMIND,
                deadline=case.deadline,
                start=iso(start),
            )
        return schedule(case, Clock.FEEDBACK, deadline, Step.DUE, deadline=case.deadline)
    if p.step is Step.DUE:
        case = evolve(case, overdue=True)
        case = record(
            case,
            fired,
            "case.chased",  # 催办
            case.state,
            rules,
            unit_id=case.assigned_unit,
            detail=f"overdue since {local}",
        )
        at = next_escalation(case, rules, deadline)
        return schedule(case, Clock.FEEDBACK, at, Step.ESCALATE, deadline=case.deadline, level=1)
    if p.step is Step.ESCALATE:
        level = p.level or 1
        case = supervise(case, fired, rules, level, "办理超期，请督促办理并反馈")
        if level + 1 < len(case.chain):
            at = next_escalation(case, rules, fired.occurred_at)
            return schedule(
                case, Clock.FEEDBACK, at, Step.ESCALATE, deadline=case.deadline, level=level + 1
            )
    return case


def _sign_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    p = fired.step
    waiting = case.state in {S.DISPATCHED, S.REOPENED} and case.signed_at is None
    if not waiting or p.hop != _final_hop(case):
        return case
    level = p.level or 1
    if level == 1:
        case = record(
            case, fired, "case.signing_overdue", case.state, rules, unit_id=case.assigned_unit
        )
    case = supervise(case, fired, rules, level, "派单未按时签收，请即签收办理")
    if level + 1 < len(case.chain):
        at = next_escalation(case, rules, fired.occurred_at)
        return schedule(case, Clock.SIGN, at, Step.ESCALATE, hop=p.hop, level=level + 1)
    return case


def _final_hop(case: Case) -> int | None:
    finals = [h["hop"] for h in case.hops if h["final"]]
    return max(finals) if finals else None


def _ack_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    if case.acknowledged:
        return case
    return record(case, fired, "case.acknowledgment_overdue", case.state, rules)


def _progress_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    if case.first_progress_at is not None or case.state not in WORKING:
        return case
    return record(
        case,
        fired,
        "case.progress_overdue",
        case.state,
        rules,
        unit_id=case.assigned_unit,
        detail="催办: no progress reported in time",
    )


_FIRED: dict[Clock, Callable[[Case, TimerFired, Rules], Case]] = {
    Clock.ACK: _ack_fired,
    Clock.SIGN: _sign_fired,
    Clock.PROGRESS: _progress_fired,
    Clock.FEEDBACK: _feedback_fired,
    Clock.CALLBACK: callback_fired,
}


def on_timer(case: Case, fired: TimerFired, rules: Rules) -> Case:
    """A clock of the case ran out."""
    if case.has_processed(fired.event_id):
        return case
    changed = _FIRED[fired.clock](case, fired, rules)
    return case if changed is case else done(changed, fired)
