"""Coordination (横协调) and supervision (纵督促) on the case's timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from fengqiao.contracts import (
    CaseState,
    CoordinationRequested,
    DispatchOrdered,
    SupervisionOrdered,
)
from fengqiao.services.tracker import domain
from fengqiao.testing.factories import dispatch_message

RULES = domain.Rules.default("t")

NOW = datetime(2026, 9, 1, 10, tzinfo=UTC)


def coordination(role: str, event_id: str = "co-1") -> CoordinationRequested:
    return CoordinationRequested(
        event_id=event_id,
        occurred_at=NOW,
        producer="router",
        case_id="c-1",
        from_unit="652701",
        partner_kind="police",
        partner_name="博乐市公安局",
        partner_inferred=True,
        role=role,
        category="crime_report",
        rule="r",  # type: ignore[arg-type]
    )


def dispatch() -> DispatchOrdered:
    return dispatch_message(event_id="d-1", occurred_at=NOW, category="crime_report")


def test_a_partner_that_leads_makes_the_case_wait_whatever_the_arrival_order() -> None:
    first = domain.record_coordination(
        domain.record_dispatch(domain.new_case("c-1"), dispatch(), rules=RULES),
        coordination("lead"),
        rules=RULES,
    )
    second = domain.record_dispatch(
        domain.record_coordination(domain.new_case("c-1"), coordination("lead"), rules=RULES),
        dispatch(),
        rules=RULES,
    )
    assert first.state is second.state is CaseState.COORDINATING


def test_a_co_handler_leaves_the_state_and_is_on_the_timeline() -> None:
    case = domain.record_dispatch(domain.new_case("c-1"), dispatch(), rules=RULES)
    case = domain.record_coordination(case, coordination("co_handler"), rules=RULES)
    assert case.state is CaseState.DISPATCHED
    assert case.timeline[-1].event == "case.coordination_requested"
    assert "博乐市公安局" in (case.timeline[-1].detail or "")
    again = domain.record_coordination(case, coordination("co_handler"), rules=RULES)
    assert again is case


def test_supervision_goes_on_the_timeline() -> None:
    order = SupervisionOrdered(
        event_id="s-1",
        occurred_at=NOW,
        producer="tracker",
        case_id="c-1",
        from_unit="652700",
        to_unit="652701",
        reason="逾期未签收，请立即办理",
    )
    case = domain.record_supervision(domain.new_case("c-1"), order, rules=RULES)
    assert case.timeline[-1].event == "case.supervision_ordered"
    assert case.timeline[-1].unit_id == "652701"
