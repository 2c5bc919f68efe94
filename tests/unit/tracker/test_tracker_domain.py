"""The case: opening, dispatch, replies, the outbox, idempotency, invalid transitions."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fengqiao.contracts import (
    AppealNormalized,
    CaseEventRecorded,
    CaseState,
    DispatchMode,
    DispatchOrdered,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    Triage,
    Urgency,
    derived_event_id,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.domain import (
    Case,
    InvalidTransition,
    Rules,
    check,
    new_case,
    open_case,
    record_dispatch,
    record_reply,
)
from fengqiao.testing.factories import appeal_message, triage_message

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
P = "tracker"
RULES = Rules.default()
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")


def appeal(event_id: str = "appeal-1", **overrides: Any) -> AppealNormalized:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "case_id": "c-0123456789abcdef",
        "original_text": "电话13812345678，博乐市拖欠工资",
        "text": "电话13812345678,博乐市拖欠工资",
        "masked_text": "电话138****5678,博乐市拖欠工资",
        "pii_kinds": ["phone"],
        "reply_to": TARGET,
    }
    return appeal_message(**{**fields, **overrides})


def order(hop: int = 1, *, to_unit: str = "652700", final: bool = False) -> DispatchOrdered:
    return DispatchOrdered(
        event_id=f"order-{hop}",
        occurred_at=AT + timedelta(minutes=hop),
        producer="router",
        case_id="c-0123456789abcdef",
        hop=hop,
        from_unit=["xj", "652700"][hop - 1],
        to_unit=to_unit,
        to_tier="prefecture" if hop == 1 else "county",
        final=final,
        chain=["xj", "652700", "652701"],
        mode=DispatchMode.PUBLIC_MENTION,
        lead_unit="652701",
        category="wage_arrears",
        urgency=Urgency.GENERAL,
        confidence=1.0,
    )


def sent(
    status: str = "sent",
    *,
    purpose: ReplyPurpose = ReplyPurpose.ACKNOWLEDGMENT,
    event_id: str = "sent-1",
    error: str | None = None,
) -> ReplySent:
    return ReplySent(
        event_id=event_id,
        occurred_at=AT + timedelta(minutes=5),
        producer="notifier",
        case_id="c-0123456789abcdef",
        request_event_id="req-1",
        idempotency_key=f"c-0123456789abcdef:{purpose.value}:0",
        purpose=purpose,
        status=status,  # type: ignore[arg-type]
        platform_message_id="m1" if status == "sent" else None,
        text="您好" if status == "sent" else None,
        error=error,
    )


def opened() -> Case:
    return open_case(new_case("c-0123456789abcdef"), appeal(), rules=RULES)


def events(case: Case) -> list[CaseEventRecorded]:
    return [o.message for o in case.outbox if isinstance(o.message, CaseEventRecorded)]


def requests(case: Case) -> list[ReplyRequested]:
    return [o.message for o in case.outbox if isinstance(o.message, ReplyRequested)]


# --------------------------------------------------------------------------- open


def test_a_new_case_is_received_and_empty() -> None:
    case = new_case("c-1")
    assert (case.state, case.opened, case.version, case.outbox) == (
        CaseState.RECEIVED,
        False,
        0,
        (),
    )


def test_the_acknowledgment_carries_what_replies_are_held_by() -> None:
    # The notifier holds replies by category and urgency for a reviewer; before the tracker
    # sent them, every hold rule let everything through (issue 18).
    def acknowledgment(triage: Triage) -> ReplyRequested:
        case = open_case(new_case("c-0123456789abcdef"), appeal(triage=triage), rules=RULES)
        [request] = requests(case)
        return request

    minors = acknowledgment(triage_message("minors"))
    assert (minors.category, minors.urgent) == ("minors", False)
    urgent = acknowledgment(triage_message("personal_safety", urgent=True))
    assert (urgent.category, urgent.urgent) == ("personal_safety", True)
    maybe = acknowledgment(triage_message("wage_arrears", review=("possibly_urgent",)))
    assert maybe.urgent


def test_after_dispatch_replies_carry_the_dispatch_s_category_and_urgency() -> None:
    urgent_order = order(2, to_unit="652701", final=True).model_copy(
        update={
            "urgency": Urgency.URGENT,
            "category": "personal_safety",
            "to_handle": "@博乐检察",
            "confidence": 0.55,
        }
    )
    case = record_dispatch(opened(), urgent_order, rules=RULES)
    notices = [r for r in requests(case) if r.purpose is not ReplyPurpose.ACKNOWLEDGMENT]
    assert notices
    assert all(
        (r.category, r.urgent, r.confidence) == ("personal_safety", True, 0.55) for r in notices
    )
    [ack] = [r for r in requests(case) if r.purpose is ReplyPurpose.ACKNOWLEDGMENT]
    assert ack.confidence is None  # asked for before the case was routed


def test_opening_fills_in_what_the_appeal_tells() -> None:
    case = opened()
    assert case.opened
    assert case.state is CaseState.RECEIVED
    assert (case.account, case.author_id) == ("@新疆检察", "u1")
    assert case.masked_text == "电话138****5678,博乐市拖欠工资"
    assert case.reply_to == TARGET.model_dump()
    assert case.processed == frozenset({"appeal-1"})
    assert case.version == 1


def test_opening_requests_exactly_one_acknowledgment() -> None:
    [request] = requests(opened())
    assert request.purpose is ReplyPurpose.ACKNOWLEDGMENT
    assert request.channel is ReplyChannel.COMMENT
    assert request.hop == 0
    assert request.target == TARGET
    assert request.template_id == "acknowledgment"
    assert request.variables == {"account": "@新疆检察", "case_ref": "89abcdef", "unit_name": ""}
    assert request.event_id == derived_event_id("reply", "appeal-1", "acknowledgment")
    assert request.idempotency_key == "c-0123456789abcdef:acknowledgment:0"


def test_opening_records_the_event_in_the_timeline_and_the_outbox() -> None:
    case = opened()
    [event] = events(case)
    assert (event.event, event.state, event.previous_state) == (
        "case.opened",
        CaseState.RECEIVED,
        CaseState.RECEIVED,
    )
    assert event.caused_by == "appeal-1"
    assert event.detail == "via @新疆检察"
    assert event.event_id == derived_event_id("case.event", "appeal-1", "case.opened")
    [entry] = case.timeline
    assert (entry.event, entry.state, entry.event_id, entry.at) == (
        "case.opened",
        "received",
        event.event_id,
        AT.isoformat(),
    )


def test_the_outbox_never_holds_unmasked_text() -> None:
    for out in opened().outbox:
        assert "13812345678" not in out.message.model_dump_json()


def test_a_second_appeal_for_the_same_case_is_only_counted() -> None:
    first = opened()
    second = open_case(first, appeal("appeal-2", masked_text="别的"), rules=RULES)
    assert second.processed == frozenset({"appeal-1"})
    assert second.repeat_ids == ("appeal-2",) and second.has_processed("appeal-2")
    assert second.repeats["count"] == second.repeats["again"] == 1
    assert second.version == first.version + 1
    unchanged = replace(second, repeats={}, repeat_ids=(), version=first.version)
    assert unchanged == first
    assert len(requests(second)) == 1


def test_reapplying_a_processed_appeal_returns_the_same_object() -> None:
    case = opened()
    assert open_case(case, appeal(), rules=RULES) is case


# --------------------------------------------------------------------------- dispatch


def test_a_dispatch_moves_the_case_to_dispatched_and_records_the_hop() -> None:
    case = record_dispatch(opened(), order(1), rules=RULES)
    assert case.state is CaseState.DISPATCHED
    assert case.hops == (
        {
            "hop": 1,
            "round": 1,
            "from_unit": "xj",
            "to_unit": "652700",
            "final": False,
            "mode": "public_mention",
            "at": (AT + timedelta(minutes=1)).isoformat(),
        },
    )
    assert case.chain == ("xj", "652700", "652701")
    assert (case.assigned_unit, case.category, case.urgency) == (
        "652701",
        "wage_arrears",
        "general",
    )
    event = events(case)[-1]
    assert (event.event, event.state, event.previous_state, event.unit_id) == (
        "case.dispatched",
        CaseState.DISPATCHED,
        CaseState.RECEIVED,
        "652700",
    )
    assert event.detail == "hop 1: xj → 652700"


def test_hops_are_kept_in_order_whatever_order_they_arrive_in() -> None:
    case = record_dispatch(opened(), order(2, to_unit="652701", final=True), rules=RULES)
    case = record_dispatch(case, order(1), rules=RULES)
    assert [h["hop"] for h in case.hops] == [1, 2]
    assert [e.event for e in case.timeline] == ["case.opened", "case.dispatched", "case.dispatched"]


def test_a_dispatch_before_the_appeal_works() -> None:
    case = record_dispatch(new_case("c-0123456789abcdef"), order(1), rules=RULES)
    assert case.state is CaseState.DISPATCHED
    assert not case.opened
    case = open_case(case, appeal(), rules=RULES)
    assert case.opened
    assert case.state is CaseState.DISPATCHED  # opening never moves the state back
    assert case.masked_text == "电话138****5678,博乐市拖欠工资"
    assert len(requests(case)) == 1
    assert events(case)[-1].state is CaseState.DISPATCHED


def test_reapplying_a_processed_dispatch_returns_the_same_object() -> None:
    case = record_dispatch(opened(), order(1), rules=RULES)
    assert record_dispatch(case, order(1), rules=RULES) is case


@pytest.mark.parametrize("state", [CaseState.CLOSED, CaseState.RESOLVED, CaseState.MERGED])
def test_a_dispatch_of_a_finished_case_is_recorded_and_changes_nothing(state: CaseState) -> None:
    case = replace(opened(), state=state)
    after = record_dispatch(case, order(1), rules=RULES)
    assert after.state is state and after.hops == case.hops
    assert after.timeline[-1].event == "case.dispatch_ignored"
    assert after.timeline[-1].detail == f"hop 1 to 652700 arrived in state {state.value}"


@pytest.mark.parametrize("state", [CaseState.ACCEPTED, CaseState.IN_PROGRESS, CaseState.EXTENDED])
def test_a_case_at_work_may_be_dispatched_again(state: CaseState) -> None:
    case = replace(opened(), state=state)
    assert record_dispatch(case, order(1), rules=RULES).state is CaseState.DISPATCHED


def test_an_invalid_transition_names_case_state_and_action() -> None:
    case = replace(opened(), state=CaseState.CLOSED)
    with pytest.raises(InvalidTransition) as caught:
        check(case, "accept")
    assert str(caught.value) == "case c-0123456789abcdef: cannot accept in state closed"
    assert (caught.value.case_id, caught.value.state, caught.value.action) == (
        "c-0123456789abcdef",
        CaseState.CLOSED,
        "accept",
    )


# --------------------------------------------------------------------------- replies


def test_a_sent_acknowledgment_moves_received_to_acknowledged() -> None:
    case = record_reply(opened(), sent(), rules=RULES)
    assert case.state is CaseState.ACKNOWLEDGED
    assert case.acknowledged
    assert case.replies == {
        "c-0123456789abcdef:acknowledgment:0": {
            "purpose": "acknowledgment",
            "status": "sent",
            "platform_message_id": "m1",
            "text": "您好",
            "error": None,
        }
    }
    event = events(case)[-1]
    assert (event.event, event.previous_state, event.state, event.detail) == (
        "case.acknowledged",
        CaseState.RECEIVED,
        CaseState.ACKNOWLEDGED,
        "reply m1",
    )


def test_an_acknowledgment_after_the_dispatch_keeps_the_case_dispatched() -> None:
    case = record_dispatch(opened(), order(1), rules=RULES)
    case = record_reply(case, sent(), rules=RULES)
    assert case.state is CaseState.DISPATCHED
    assert case.acknowledged
    assert events(case)[-1].event == "case.acknowledged"


def test_a_dispatch_after_the_acknowledgment() -> None:
    case = record_reply(opened(), sent(), rules=RULES)
    case = record_dispatch(case, order(1), rules=RULES)
    assert case.state is CaseState.DISPATCHED
    assert events(case)[-1].previous_state is CaseState.ACKNOWLEDGED


def test_a_second_acknowledgment_is_recorded_without_a_second_event() -> None:
    case = record_reply(opened(), sent(), rules=RULES)
    again = record_reply(case, sent(event_id="sent-2"), rules=RULES)
    assert again.timeline == case.timeline
    assert again.outbox == case.outbox


@pytest.mark.parametrize("status", ["failed", "held"])
def test_a_reply_that_was_not_sent_is_recorded_in_the_timeline(status: str) -> None:
    case = record_reply(opened(), sent(status, error="HTTP 503"), rules=RULES)
    assert case.state is CaseState.RECEIVED
    assert not case.acknowledged
    assert case.replies["c-0123456789abcdef:acknowledgment:0"]["status"] == status
    entry = case.timeline[-1]
    assert (entry.event, entry.state, entry.detail) == (
        f"reply.{status}",
        "received",
        "acknowledgment: HTTP 503",
    )
    assert events(case)[-1].event == f"reply.{status}"


def test_reapplying_a_processed_reply_returns_the_same_object() -> None:
    case = record_reply(opened(), sent(), rules=RULES)
    assert record_reply(case, sent(), rules=RULES) is case


def test_the_outbox_accumulates_until_cleared() -> None:
    case = record_reply(record_dispatch(opened(), order(1), rules=RULES), sent(), rules=RULES)
    assert [type(o.message).__name__ for o in case.outbox] == [
        "CaseEventRecorded",
        "ReplyRequested",
        "CaseEventRecorded",
        "CaseEventRecorded",
    ]
    assert [o.topic for o in case.outbox] == [
        "case.events",
        "replies.requested",
        "case.events",
        "case.events",
    ]
    assert len({o.message.event_id for o in case.outbox}) == 4


def test_a_changed_case_is_a_new_case_with_only_those_values_changed() -> None:
    case = opened()
    changed = domain.evolve(case, state=CaseState.ACKNOWLEDGED, version=case.version + 5)
    assert changed == replace(case, state=CaseState.ACKNOWLEDGED, version=case.version + 5)
    assert changed is not case and case.state is CaseState.RECEIVED  # the old one as it was
    assert changed.timeline is case.timeline
    with pytest.raises(FrozenInstanceError):
        changed.state = CaseState.CLOSED  # type: ignore[misc]
    with pytest.raises(TypeError, match="Case has no field 'stat'"):
        domain.evolve(case, stat=CaseState.CLOSED)  # type: ignore[call-arg]
