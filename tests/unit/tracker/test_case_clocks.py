"""A case's clocks in the domain: office hours, the clock standing still while the office waits
for the citizen, and cancelling only the clocks that may be running."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fengqiao.contracts import (
    Urgency,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.domain import (
    Case,
    NotAllowed,
    Rules,
)
from fengqiao.testing.factories import appeal_message, dispatch_message, final_hop_message
from tests.unit.tracker.cases import (
    CASE,
    PLAIN,
    T0,
    A,
    action,
    at,
    dispatched,
    events,
    timer,
)

# --------------------------------------------------------------------------- office hours


def test_reminders_of_a_general_case_wait_for_office_hours_but_urgent_ones_do_not() -> None:
    rules = Rules.default()
    # Received Friday 2026-12-04 17:30 Shanghai: the 7-working-day clock's reminders and the
    # deadline fall in office hours.
    friday = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    case = domain.open_case(
        domain.new_case(CASE), appeal_message(case_id=CASE, occurred_at=friday), rules=rules
    )
    order = dispatch_message(
        case_id=CASE,
        hop=1,
        final=True,
        to_unit="652700",
        lead_unit="652700",
        chain=["xj", "652700"],
        occurred_at=friday,
    )
    case = domain.record_dispatch(case, order, rules=rules)
    local = rules.calendar.local(at(case, "feedback"))
    assert rules.calendar.in_office_hours(local)
    urgent = dispatch_message(
        event_id="u",
        case_id="c-2",
        hop=1,
        final=True,
        to_unit="652700",
        lead_unit="652700",
        chain=["xj", "652700"],
        occurred_at=friday,
        urgency=Urgency.URGENT,
    )
    night = datetime(2026, 12, 4, 16, tzinfo=UTC)  # 00:00 in Shanghai
    case2 = domain.open_case(
        domain.new_case("c-2"),
        appeal_message(event_id="a2", case_id="c-2", occurred_at=night),
        rules=rules,
    )
    case2 = domain.record_dispatch(case2, replace_time(urgent, night), rules=rules)
    # 2 hours, reminders at 50 % and 80 %: at night, not deferred.
    assert at(case2, "feedback") == night + timedelta(hours=1)


def replace_time(order: Any, when: datetime) -> Any:
    return order.model_copy(update={"occurred_at": when})


# ------------------------------------------------------------------- waiting for the citizen


def test_the_clock_stands_still_while_the_office_waits_for_the_citizen() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    deadline = datetime.fromisoformat(case.deadline or "")
    asking = action(A.AWAIT_CITIZEN, minutes=60, note="请提供劳动合同照片")
    case = domain.act(case, asking, rules=PLAIN)
    assert case.paused_since is not None and timer(case, "feedback") == {"due_at": None}
    assert case.effects["await:weibo:u1"] == domain.AwaitCitizen("weibo", "u1", CASE)
    again = domain.validate_action
    with pytest.raises(NotAllowed, match="already waiting"):
        again(case, action(A.AWAIT_CITIZEN, minutes=61, note="?"))
    # Three hours later the citizen answers (any words): the deadline moves by three hours.
    reply = appeal_message(
        "照片已发", event_id="reply-1", case_id="c-x", occurred_at=T0 + timedelta(hours=4)
    )
    resumed = domain.record_citizen_reply(case, reply, rules=PLAIN)
    assert resumed is not None and resumed.paused_since is None
    assert resumed.deadline == (deadline + timedelta(hours=3)).isoformat()
    assert events(resumed)[-1] == "case.resumed"
    assert resumed.effects["await:weibo:u1"] == domain.AwaitCitizen("weibo", "u1", None)
    assert timer(resumed, "feedback")["payload"]["deadline"] == resumed.deadline


def test_asking_the_citizen_needs_the_question() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    with pytest.raises(NotAllowed, match="needs a note"):
        domain.validate_action(case, action(A.AWAIT_CITIZEN, minutes=60))


# ------------------------------------------------- cancelling only the clocks that may be running


def timers_asked(case: Case) -> dict[str, Any]:
    return {
        k.removeprefix("timer:"): v.value()
        for k, v in case.effects.items()
        if k.startswith("timer:")
    }


def test_the_case_knows_which_clocks_it_asked_to_run() -> None:
    case = dispatched()
    assert case.clocks == {
        clock: timer(case, clock)["due_at"] for clock in ("ack", "sign", "feedback")
    }
    case = domain.act(case, action(A.ACCEPT), rules=PLAIN)
    assert set(case.clocks) == {"ack", "feedback", "progress"}  # sign stopped


def test_a_clock_already_stopped_is_not_cancelled_again() -> None:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)  # stops sign
    case = domain.act(case, action(A.PROGRESS, minutes=60, note="已联系"), rules=PLAIN)
    assert timer(case, "progress") == {"due_at": None}  # the first report stops its clock
    case = replace(case, outbox=(), effects={})  # published and done, as the store does
    resolve = action(A.RESOLVE, minutes=120, outcome="工资已发放")
    case = domain.act(case, resolve, rules=PLAIN)
    # Only feedback still ran: sign and progress are not asked to stop a second time.
    assert set(timers_asked(case)) == {"feedback", "callback"}
    assert timer(case, "feedback") == {"due_at": None}
    assert set(case.clocks) == {"ack", "callback"}


def test_a_clock_never_started_is_not_cancelled() -> None:
    # The dispatch came first: no receipt, so no feedback clock yet.
    order = final_hop_message(event_id="order-2", case_id=CASE, occurred_at=T0)
    case = domain.record_dispatch(domain.new_case(CASE), order, rules=PLAIN)
    case = domain.act(case, action(A.ACCEPT), rules=PLAIN)
    assert "feedback" not in case.clocks
    case = replace(case, outbox=(), effects={})
    case = domain.act(case, action(A.AWAIT_CITIZEN, minutes=60, note="请提供合同"), rules=PLAIN)
    assert case.paused_since is not None and events(case)[-1] == "case.paused"
    assert timers_asked(case) == {}


def test_the_clocks_a_case_knows_are_stored_with_it() -> None:
    from fengqiao.services.tracker.adapters.cases import from_document, to_document

    case = dispatched()
    assert case.clocks and from_document(to_document(case)).clocks == case.clocks
