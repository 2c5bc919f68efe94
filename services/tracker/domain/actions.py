"""What the units do (unit.actions): who may do what (`authorize`, `validate_action`), and one
handler per kind of action (`act` picks it from `_HANDLERS`)."""

from __future__ import annotations

from collections.abc import Callable

from fengqiao.contracts import (
    CaseState,
    ReplyPurpose,
    UnitActed,
    UnitActionKind,
    redispatch_event_id,
)
from fengqiao.services.tracker.domain.callbacks import await_citizen
from fengqiao.services.tracker.domain.case import (
    Case,
    InvalidTransition,
    NotAllowed,
    Rules,
    S,
    check,
    done,
    evolve,
    instant,
    iso,
)
from fengqiao.services.tracker.domain.clocks import cancel, schedule, start_feedback
from fengqiao.services.tracker.domain.effects import CLOCKS, Clock, Step
from fengqiao.services.tracker.domain.outgoing import record, reply
from fengqiao.services.tracker.timelimits import Kind

A = UnitActionKind
_OPERATORS = frozenset({A.REASSIGN, A.MERGE})  # router and tracker /ops, on behalf of a unit


def authorize(case: Case, unit_id: str, action: UnitActionKind) -> None:
    """`NotAllowed` unless `unit_id` may do `action` on the case: the lead unit works on it, the
    tiers above it rule on extensions, any unit that sees it may add a note."""
    if action in _OPERATORS and not case.chain:
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
    if action in _OPERATORS:
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
        _check_extension_request(case, action)
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


def _check_extension_request(case: Case, action: UnitActed) -> None:
    if case.extension is not None:
        raise NotAllowed(f"case {case.case_id}: an extension request is already pending")
    if action.requested_deadline is None:
        raise NotAllowed("an extension request needs requested_deadline")
    if case.deadline is None or action.occurred_at >= instant(case.deadline):
        raise NotAllowed(
            f"case {case.case_id}: extensions are asked before the deadline "
            f"({case.deadline or 'none yet'})"
        )
    if action.requested_deadline <= instant(case.deadline):
        raise NotAllowed("requested_deadline must be after the current deadline")


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
        detail = f"{reason} (re-dispatched already)".strip()
        case = _recorded(case, action, "case.returned", case.state, rules, detail)
        return done(case, action)
    try:
        validate_action(case, action)
    except (NotAllowed, InvalidTransition) as exc:
        detail = f"{action.action.value}: {exc}"
        case = _recorded(case, action, "unit.action_refused", case.state, rules, detail)
        return done(case, action)
    state = check(case, action.action.value)
    handler = _HANDLERS.get(action.action, _noted)
    return done(handler(case, action, state, rules), action)


def _recorded(
    case: Case, action: UnitActed, event: str, state: CaseState, rules: Rules, detail: str | None
) -> Case:
    """The action goes on the timeline, in the acting unit's and person's name."""
    return record(
        case, action, event, state, rules,
        unit_id=action.unit_id, detail=detail, person=action.person,
    )  # fmt: skip


# -- one handler per kind: (case, the action, the state it leads to, rules) → the case ------------


def _accept(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    at = action.occurred_at
    in_time = case.sign_due is None or at <= instant(case.sign_due)
    case = evolve(case, signed_at=iso(at), signed_in_time=in_time)
    case = _recorded(case, action, "case.accepted", state, rules, None)
    case = cancel(case, Clock.SIGN)
    due = rules.limits.deadline(
        Kind.FIRST_PROGRESS, case.urgency_class, case.category, at, rules.calendar
    )
    return schedule(case, Clock.PROGRESS, due, Step.DUE)


def _progress(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    note = action.note or ""
    first = case.first_progress_at is None
    case = evolve(case, first_progress_at=case.first_progress_at or iso(action.occurred_at))
    case = _recorded(case, action, "case.progress", state, rules, note)
    if first:
        case = cancel(case, Clock.PROGRESS)
    if note:
        case = reply(case, action, ReplyPurpose.PROGRESS, rules, note=note[:100])
    return case


def _resolve(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    at = action.occurred_at
    case = evolve(
        case,
        resolved_at=iso(at),
        resolved_in_time=case.deadline is None or at <= instant(case.deadline),
        outcome=action.outcome,
        amount_recovered=action.amount_recovered,
        overdue=False,
        extension=None,
        paused_since=None,
    )
    case = _recorded(case, action, "case.resolved", state, rules, action.outcome)
    case = cancel(case, Clock.FEEDBACK, Clock.PROGRESS, Clock.SIGN)
    case = reply(case, action, ReplyPurpose.RESOLUTION, rules, outcome=action.outcome or "")
    ask = rules.limits.deadline(
        Kind.CALLBACK_ASK, case.urgency_class, case.category, at, rules.calendar
    )
    return schedule(case, Clock.CALLBACK, ask, Step.ASK)


def _return(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    case = evolve(case, returns=case.returns + 1, signed_at=None)
    detail = f"{action.reason_code or ''} {action.note or ''}".strip()
    case = _recorded(case, action, "case.returned", state, rules, detail)
    return cancel(case, Clock.SIGN, Clock.PROGRESS)


def _request_extension(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    assert action.requested_deadline is not None
    note = action.note or ""
    extension = {
        "unit": action.unit_id,
        "requested_deadline": iso(action.requested_deadline),
        "note": note,
        "at": iso(action.occurred_at),
    }
    case = evolve(case, extension=extension)
    until = f"{rules.calendar.local(action.requested_deadline):%Y-%m-%d %H:%M}"
    return _recorded(
        case, action, "case.extension_requested", state, rules, f"until {until}: {note}"
    )


def _approve_extension(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    assert case.extension is not None
    granted = action.requested_deadline or instant(case.extension["requested_deadline"])
    local = f"{rules.calendar.local(granted):%Y-%m-%d %H:%M}"
    case = evolve(case, extension=None, extensions=case.extensions + 1, escalation_level=0)
    case = _recorded(case, action, "case.extended", state, rules, f"new deadline {local}")
    case = start_feedback(case, rules, action.occurred_at, granted)
    return reply(case, action, ReplyPurpose.EXTENSION_NOTICE, rules, new_deadline=local)


def _refuse_extension(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    case = evolve(case, extension=None)
    return _recorded(case, action, "case.extension_refused", state, rules, action.note or "")


def _await_citizen(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    note = action.note or ""
    case = evolve(case, paused_since=iso(action.occurred_at))
    detail = f"waiting for the citizen: {note}"
    case = _recorded(case, action, "case.paused", state, rules, detail)
    case = cancel(case, Clock.FEEDBACK)
    case = await_citizen(case, True)
    return reply(case, action, ReplyPurpose.PROGRESS, rules, note=note[:100])


def _merge(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    awaiting = case.state is S.CALLBACK_PENDING or case.paused_since is not None
    case = evolve(case, overdue=False, extension=None, paused_since=None)
    detail = f"into {action.into_case_id}: {action.note or ''}".strip(": ")
    case = _recorded(case, action, "case.merged", state, rules, detail)
    case = cancel(case, *CLOCKS, always=True)  # whatever it knows: it ends here
    if awaiting:  # the citizen's next message no longer answers this case
        case = await_citizen(case, False)
    return case


def _noted(case: Case, action: UnitActed, state: CaseState, rules: Rules) -> Case:
    """NOTE, REASSIGN (the router re-dispatches; the tracker keeps the note)."""
    event = f"case.{action.action.value}"
    return _recorded(case, action, event, state, rules, action.note or "")


_HANDLERS: dict[UnitActionKind, Callable[[Case, UnitActed, CaseState, Rules], Case]] = {
    A.ACCEPT: _accept,
    A.PROGRESS: _progress,
    A.RESOLVE: _resolve,
    A.RETURN: _return,
    A.REQUEST_EXTENSION: _request_extension,
    A.APPROVE_EXTENSION: _approve_extension,
    A.REFUSE_EXTENSION: _refuse_extension,
    A.AWAIT_CITIZEN: _await_citizen,
    A.MERGE: _merge,
    A.NOTE: _noted,
    A.REASSIGN: _noted,
}
