"""A case's whole life in the domain: clocks, reminders, 催办, escalation, signing, extensions,
returns, resolution, the callback and its answers — and every refusal naming what is wrong."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from fengqiao.contracts import (
    DispatchOrdered,
    ReplyPurpose,
    ReplyRequested,
    SupervisionOrdered,
    UnitActionKind,
    derived_event_id,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.domain import (
    InvalidTransition,
    NotAllowed,
    Satisfaction,
    TimerFired,
    TimerStep,
    parse_satisfaction,
)
from fengqiao.testing.factories import dispatch_message
from tests.unit.tracker.cases import (
    CASE,
    PLAIN,
    T0,
    A,
    S,
    action,
    answer,
    asked,
    at,
    dispatched,
    events,
    fire,
    opened,
    resolved,
    sent,
    timer,
)

# --------------------------------------------------------------------------- opening and dispatch


def test_opening_starts_the_acknowledgment_clock() -> None:
    case = opened()
    assert at(case, "ack") == T0 + timedelta(hours=2)
    assert case.received_at == T0.isoformat()


def test_the_final_hop_starts_signing_and_feedback_and_announces_the_unit() -> None:
    case = dispatched()
    assert case.assigned_unit == "652701"
    assert at(case, "sign") == T0 + timedelta(minutes=2, hours=1)
    assert case.deadline == (T0 + timedelta(hours=10)).isoformat()  # from the receipt
    assert timer(case, "feedback")["payload"]["step"] == "remind"
    assert at(case, "feedback") == T0 + timedelta(hours=5)  # 50 %
    [announce] = [
        r for r in sent(case, ReplyRequested) if r.purpose is ReplyPurpose.DISPATCH_ANNOUNCEMENT
    ]
    assert announce.variables["to_handle"] == "@博乐检察"
    assert {k for k in case.effects if k.startswith("unit:")} == {
        "unit:xj",
        "unit:652700",
        "unit:652701",
    }


# --------------------------------------------------------------------------- supervision


def test_reminders_then_chasing_then_escalation_up_the_chain() -> None:
    case = dispatched()
    case = fire(case, "feedback")  # 50 %
    assert events(case)[-1] == "case.reminded"
    assert at(case, "feedback") == T0 + timedelta(hours=8)  # 80 %
    case = fire(case, "feedback")
    assert timer(case, "feedback")["payload"]["step"] == "due"
    assert at(case, "feedback") == T0 + timedelta(hours=10)
    case = fire(case, "feedback")
    assert events(case)[-1] == "case.chased" and case.overdue
    assert at(case, "feedback") == T0 + timedelta(hours=12)  # + grace
    case = replace(case, outbox=())
    case = fire(case, "feedback")
    [order] = sent(case, SupervisionOrdered)
    assert (order.from_unit, order.to_unit, order.level) == ("652700", "652701", 1)
    case = replace(case, outbox=())
    case = fire(case, "feedback")
    [order] = sent(case, SupervisionOrdered)
    assert (order.from_unit, order.to_unit, order.level) == ("xj", "652701", 2)
    assert case.escalation_level == 2
    # The region is the top: nothing further to schedule.
    assert timer(case, "feedback")["payload"]["level"] == 2


def test_a_firing_delivered_twice_changes_the_case_once() -> None:
    case = dispatched()
    t = timer(case, "feedback")
    fired = TimerFired(TimerStep.from_payload(t["payload"]), datetime.fromisoformat(t["due_at"]))
    once = domain.on_timer(case, fired, PLAIN)
    later = replace(fired, occurred_at=fired.occurred_at + timedelta(minutes=5))  # lease ran out
    assert domain.on_timer(once, later, PLAIN) is once


def test_an_unsigned_order_is_supervised_by_the_tier_above() -> None:
    case = dispatched()
    case = fire(case, "sign")
    assert "case.signing_overdue" in events(case)
    [order] = sent(case, SupervisionOrdered)
    assert (order.from_unit, order.to_unit) == ("652700", "652701")
    assert timer(case, "sign")["payload"]["level"] == 2


def test_signing_stops_the_signing_clock_and_starts_first_progress() -> None:
    case = dispatched()
    case = domain.act(case, action(A.ACCEPT), rules=PLAIN)
    assert case.state is S.ACCEPTED and case.signed_in_time is True
    assert timer(case, "sign") == {"due_at": None}
    assert at(case, "progress") == T0 + timedelta(minutes=30, hours=4)
    signed = fire(dispatched(), "sign")  # a late signing is recorded as late
    signed = domain.act(signed, action(A.ACCEPT, minutes=90), rules=PLAIN)
    assert signed.signed_in_time is False


def test_a_stale_firing_changes_nothing() -> None:
    case = dispatched()
    stale = timer(case, "sign")
    case = domain.act(case, action(A.ACCEPT), rules=PLAIN)
    fired = TimerFired(TimerStep.from_payload(stale["payload"]), T0 + timedelta(hours=1, minutes=2))
    assert domain.on_timer(case, fired, PLAIN) is case


# --------------------------------------------------------------------------- extensions


def test_an_extension_asked_in_time_and_approved_by_the_tier_above_moves_the_deadline() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    new = T0 + timedelta(hours=30)
    case = domain.act(
        case, action(A.REQUEST_EXTENSION, minutes=60, requested_deadline=new), rules=PLAIN
    )
    assert events(case)[-1] == "case.extension_requested" and case.extension is not None
    refused = domain.act(case, action(A.APPROVE_EXTENSION, unit="652701", minutes=70), rules=PLAIN)
    assert events(refused)[-1] == "unit.action_refused"  # the unit cannot approve its own
    old_payload = timer(case, "feedback")["payload"]
    case = domain.act(case, action(A.APPROVE_EXTENSION, unit="652700", minutes=70), rules=PLAIN)
    assert case.state is S.EXTENDED and case.deadline == new.isoformat()
    [notice] = [r for r in sent(case, ReplyRequested) if r.purpose is ReplyPurpose.EXTENSION_NOTICE]
    assert notice.variables["new_deadline"] == "2026-12-02 16:00"  # Asia/Shanghai
    # The old clock's firing is stale now.
    fired = TimerFired(TimerStep.from_payload(old_payload), T0 + timedelta(hours=5))
    assert domain.on_timer(case, fired, PLAIN) is case


def test_an_extension_after_the_deadline_is_refused() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    late = action(A.REQUEST_EXTENSION, minutes=11 * 60, requested_deadline=T0 + timedelta(days=2))
    with pytest.raises(NotAllowed, match="before the deadline"):
        domain.validate_action(case, late)


# --------------------------------------------------------------------------- who may do what


@pytest.mark.parametrize(
    ("unit", "kind", "allowed"),
    [
        ("652701", A.ACCEPT, True),
        ("652702", A.ACCEPT, False),  # a sibling county
        ("652700", A.ACCEPT, False),  # the parent works through its supervision, not for it
        ("652702", A.NOTE, False),
        ("652700", A.NOTE, True),
        ("xj", A.NOTE, True),
        ("650100", A.NOTE, False),  # another prefecture
    ],
)
def test_only_the_lead_unit_works_on_a_case_and_only_its_chain_sees_it(
    unit: str, kind: UnitActionKind, allowed: bool
) -> None:
    case = dispatched()
    if allowed:
        domain.authorize(case, unit, kind)
    else:
        with pytest.raises(NotAllowed):
            domain.authorize(case, unit, kind)


def test_an_invalid_transition_names_the_case_the_state_and_the_action() -> None:
    case = dispatched()
    with pytest.raises(InvalidTransition, match=r"case c-1: cannot resolve in state dispatched"):
        domain.validate_action(case, action(A.RESOLVE, outcome="done"))


# ------------------------------------------------------------------- return, resolve, callback


def redispatch(event_id: str) -> DispatchOrdered:
    """Hop 3, round 2: the prefecture re-dispatches a returned case to 652702."""
    return dispatch_message(
        event_id=event_id,
        case_id=CASE,
        hop=3,
        round=2,
        from_unit="652700",
        to_unit="652702",
        to_tier="county",
        final=True,
        chain=["xj", "652700", "652702"],
        lead_unit="652702",
        reason="终审: 改派",
        occurred_at=T0 + timedelta(hours=1),
    )


def test_a_returned_order_is_dispatched_again() -> None:
    case = domain.act(dispatched(), action(A.RETURN, reason_code="not_ours"), rules=PLAIN)
    assert case.state is S.RETURNED and case.returns == 1
    again = redispatch("order-3")
    case = domain.record_dispatch(case, again, rules=PLAIN)
    assert case.state is S.DISPATCHED and case.assigned_unit == "652702"
    assert timer(case, "sign")["payload"]["hop"] == 3


def test_a_return_whose_re_dispatch_arrived_first_counts_and_keeps_the_new_unit() -> None:
    """The router re-dispatches on the return (dispatch.orders) and that order can reach the
    tracker before the return itself (unit.actions): the return is not refused."""
    returned = action(A.RETURN, reason_code="not_ours")
    again = redispatch(derived_event_id("redispatch", returned.event_id, "3"))
    case = domain.record_dispatch(dispatched(), again, rules=PLAIN)
    case = domain.act(case, returned, rules=PLAIN)
    assert case.state is S.DISPATCHED and case.assigned_unit == "652702" and case.returns == 1
    assert [e.event for e in case.timeline[-2:]] == ["case.dispatched", "case.returned"]
    assert case.timeline[-1].detail == "not_ours (re-dispatched already)"
    assert timer(case, "sign")["payload"]["hop"] == 3  # the new unit's clock runs on
    assert domain.act(case, returned, rules=PLAIN) is case  # delivered again: nothing
    # A return from a unit no re-dispatch followed is still refused once the case moved on.
    other = action(A.RETURN, unit="652701", minutes=90, reason_code="not_ours")
    refused = domain.act(case, other, rules=PLAIN)
    assert refused.timeline[-1].event == "unit.action_refused" and refused.returns == 1


def test_resolving_tells_the_citizen_and_schedules_the_callback() -> None:
    case = resolved()
    assert case.state is S.RESOLVED and case.resolved_in_time is True
    assert case.amount_recovered == 3000
    purposes = [r.purpose for r in sent(case, ReplyRequested)]
    assert ReplyPurpose.PROGRESS in purposes and ReplyPurpose.RESOLUTION in purposes
    assert timer(case, "feedback") == {"due_at": None}
    assert at(case, "callback") == T0 + timedelta(hours=3)


@pytest.mark.parametrize("text", ["1", "满意", "非常满意，谢谢！", "２"])
def test_a_satisfied_answer_closes_the_case(text: str) -> None:
    case = answer(asked(), text)
    assert case is not None and case.state is S.CLOSED
    assert case.satisfaction in {Satisfaction.SATISFIED.value, Satisfaction.BASICALLY.value}
    assert case.effects["await:weibo:u1"] == domain.AwaitCitizen("weibo", "u1", None)


@pytest.mark.parametrize("text", ["3", "不满意", "根本没有解决"])
def test_a_dissatisfied_answer_reopens_and_escalates(text: str) -> None:
    case = answer(replace(asked(), outbox=()), text)
    assert case is not None and case.state is S.REOPENED and case.reopened == 1
    [order] = sent(case, SupervisionOrdered)
    assert (order.from_unit, order.to_unit) == ("652700", "652701")
    assert timer(case, "feedback")["payload"]["step"] in {"remind", "due"}
    # The unit works on it again and resolves it; the callback is asked again (hop 1).
    case = domain.act(case, action(A.RESOLVE, minutes=600, outcome="已补发"), rules=PLAIN)
    case = fire(case, "callback")
    [again] = [r for r in sent(case, ReplyRequested) if r.purpose is ReplyPurpose.CALLBACK_QUESTION]
    assert again.hop == 1


def test_an_unclear_message_is_not_an_answer() -> None:
    assert answer(asked(), "请问下一步怎么办") is None


def test_no_answer_closes_the_case_and_is_counted_apart() -> None:
    case = fire(asked(), "callback")
    assert case.state is S.CLOSED and case.satisfaction == Satisfaction.NO_ANSWER.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Satisfaction.SATISFIED),
        ("2", Satisfaction.BASICALLY),
        ("3", Satisfaction.DISSATISFIED),
        ("满意", Satisfaction.SATISFIED),
        ("基本满意", Satisfaction.BASICALLY),
        ("不满意", Satisfaction.DISSATISFIED),
        ("不太满意，钱还没到", Satisfaction.DISSATISFIED),
        ("问题已解决，感谢检察官", Satisfaction.SATISFIED),
        ("12", None),
        ("", None),
    ],
)
def test_callback_answers_are_read(text: str, expected: Satisfaction | None) -> None:
    assert parse_satisfaction(text) == expected


# --------------------------------------------------------------------------- merging duplicates


def test_a_duplicate_merged_by_an_operator_ends_with_its_clocks_stopped() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    merge = action(A.MERGE, unit="xj", minutes=40, into_case_id="c-2", note="同一诉求")
    case = domain.act(case, merge, rules=PLAIN)
    assert case.state is S.MERGED and events(case)[-1] == "case.merged"
    assert case.timeline[-1].detail == "into c-2: 同一诉求"
    assert all(timer(case, clock) == {"due_at": None} for clock in domain.CLOCKS)
    assert "await:weibo:u1" not in case.effects  # it was not waiting for the citizen
    # Nothing more happens to it: a unit's action is refused, a late clock changes nothing.
    later = domain.act(case, action(A.PROGRESS, minutes=50, note="x"), rules=PLAIN)
    assert later.state is S.MERGED and events(later)[-1] == "unit.action_refused"
    with pytest.raises(InvalidTransition, match=f"case {CASE}: cannot merge in state merged"):
        domain.check(case, A.MERGE.value)


def test_merging_a_case_that_waits_for_the_citizen_stops_waiting() -> None:
    case = domain.act(
        asked(), action(A.MERGE, unit="xj", minutes=300, into_case_id="c-2"), rules=PLAIN
    )
    assert case.state is S.MERGED
    assert case.effects["await:weibo:u1"] == domain.AwaitCitizen("weibo", "u1", None)


@pytest.mark.parametrize("into", [None, CASE])
def test_a_merge_needs_another_case(into: str | None) -> None:
    merge = action(A.MERGE, unit="xj", into_case_id=into)
    with pytest.raises(NotAllowed, match="merge needs into_case_id, another case"):
        domain.validate_action(dispatched(), merge)


def test_a_closed_case_is_not_merged() -> None:
    closed = fire(asked(), "callback")
    merge = action(A.MERGE, unit="xj", minutes=900, into_case_id="c-2")
    with pytest.raises(InvalidTransition, match="cannot merge in state closed"):
        domain.validate_action(closed, merge)


def test_an_operators_reassignment_is_kept_as_a_note_not_refused() -> None:
    case = domain.act(
        dispatched(), action(A.REASSIGN, unit="xj", target_unit="652702", note="改派"), rules=PLAIN
    )
    assert events(case)[-1] == "case.reassign"
    assert case.state is S.DISPATCHED
