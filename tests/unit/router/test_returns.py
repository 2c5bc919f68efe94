"""退单 and 终审: rulings on returns and reassignments, and coordination requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fengqiao.contracts import (
    DispatchOrdered,
    Evidence,
    UnitActed,
    UnitActionKind,
)
from fengqiao.services.router.coordination import load_coordination
from fengqiao.services.router.directory import load_directory
from fengqiao.services.router.returns import (
    RoutingError,
    load_return_rules,
    record_dispatch,
    rule_on,
)
from fengqiao.testing.factories import dispatch_message

NOW = datetime(2026, 9, 1, 10, tzinfo=UTC)
DIRECTORY = load_directory()
RULES = load_return_rules()


def order(
    hop: int,
    src: str,
    dst: str,
    *,
    final: bool,
    category: str = "wage_arrears",
    evidence: tuple[Evidence, ...] = (),
) -> DispatchOrdered:
    return dispatch_message(
        event_id=f"o{hop}",
        occurred_at=NOW,
        hop=hop,
        from_unit=src,
        to_unit=dst,
        to_tier=DIRECTORY[dst].tier,
        final=final,
        category=category,
        evidence=list(evidence),
        confidence=0.9,
    )


def first_dispatch() -> list[DispatchOrdered]:
    evidence = (
        Evidence(kind="text_place", value="博乐市", unit_id="652701", weight=1.0),
        Evidence(kind="text_place", value="精河县", unit_id="652722", weight=0.9),
    )
    return [
        order(1, "xj", "652700", final=False, evidence=evidence),
        order(2, "652700", "652701", final=True, evidence=evidence),
    ]


def action(
    kind: UnitActionKind,
    unit: str,
    *,
    reason: str | None = None,
    target: str | None = None,
    event_id: str = "a1",
) -> UnitActed:
    return UnitActed(
        event_id=event_id,
        occurred_at=NOW,
        producer="tracker",
        case_id="c-1",
        unit_id=unit,
        action=kind,
        reason_code=reason,
        target_unit=target,
    )


def test_not_our_jurisdiction_goes_to_the_next_unit_the_evidence_named() -> None:
    record = record_dispatch(first_dispatch(), "appeal-1")
    new, orders = rule_on(
        record,
        action(UnitActionKind.RETURN, "652701", reason="not_our_jurisdiction"),
        DIRECTORY,
        RULES,
        producer="router",
    )
    assert [(o.hop, o.from_unit, o.to_unit, o.final, o.round) for o in orders] == [
        (3, "652700", "652722", True, 2)
    ]
    assert "终审 by 652700" in (orders[0].reason or "")
    assert new.holder == "652722"
    assert new.returns == (("652701", "not_our_jurisdiction"),)


def test_a_return_with_no_other_candidate_stays_with_the_tier_above() -> None:
    record = record_dispatch(
        [*first_dispatch()[:1], first_dispatch()[1].model_copy(update={"evidence": []})], "appeal-1"
    )
    _, orders = rule_on(
        record,
        action(UnitActionKind.RETURN, "652701", reason="not_our_jurisdiction"),
        DIRECTORY,
        RULES,
        producer="router",
    )
    [kept] = orders
    assert (kept.from_unit, kept.to_unit, kept.final) == ("652700", "652700", True)
    assert "kept" in (kept.reason or "")


def test_bouncing_stops_after_max_returns() -> None:
    record = record_dispatch(first_dispatch(), "appeal-1")
    record, _ = rule_on(
        record,
        action(UnitActionKind.RETURN, "652701", reason="not_our_jurisdiction", event_id="a1"),
        DIRECTORY,
        RULES,
        producer="router",
    )
    record, orders = rule_on(
        record,
        action(UnitActionKind.RETURN, "652722", reason="not_our_jurisdiction", event_id="a2"),
        DIRECTORY,
        RULES,
        producer="router",
    )
    assert orders[-1].to_unit == "652700"  # no untried candidate left: the prefecture keeps it
    assert len(record.returns) == 2


def test_reassignment_by_hand_goes_through_the_common_tier() -> None:
    record = record_dispatch(first_dispatch(), "appeal-1")
    new, orders = rule_on(
        record,
        action(UnitActionKind.REASSIGN, "xj", target="650109"),
        DIRECTORY,
        RULES,
        producer="router",
    )
    assert [(o.from_unit, o.to_unit) for o in orders] == [("xj", "650100"), ("650100", "650109")]
    assert [o.hop for o in orders] == [3, 4]
    assert new.holder == "650109"


def test_replaying_an_action_changes_nothing() -> None:
    record = record_dispatch(first_dispatch(), "appeal-1")
    returned = action(UnitActionKind.RETURN, "652701", reason="duplicate")
    new, orders = rule_on(record, returned, DIRECTORY, RULES, producer="router")
    again, more = rule_on(new, returned, DIRECTORY, RULES, producer="router")
    assert orders
    assert more == []
    assert again is new


def test_only_the_holder_may_return_it() -> None:
    record = record_dispatch(first_dispatch(), "appeal-1")
    with pytest.raises(RoutingError, match="652722 returned it but 652701 holds it"):
        rule_on(
            record,
            action(UnitActionKind.RETURN, "652722", reason="duplicate"),
            DIRECTORY,
            RULES,
            producer="router",
        )


def test_wage_arrears_bring_labour_inspection_as_co_handler() -> None:
    [request] = load_coordination().requests(
        first_dispatch()[-1], "工地拖欠工资", DIRECTORY, producer="router"
    )
    assert (request.partner_kind, request.role) == ("labour_inspection", "co_handler")
    assert request.from_unit == "652701"
    assert request.partner_name


def test_a_crime_report_goes_to_the_police_who_lead() -> None:
    final = first_dispatch()[-1].model_copy(update={"category": "crime_report"})
    [request] = load_coordination().requests(final, "被骗了要报案", DIRECTORY, producer="router")
    assert (request.partner_kind, request.role) == ("police", "lead")


def test_other_agency_matters_pick_the_agency_by_words() -> None:
    final = first_dispatch()[-1].model_copy(update={"category": "other_agency"})
    [request] = load_coordination().requests(final, "小区暖气不热", DIRECTORY, producer="router")
    assert request.partner_kind == "housing"
    [fallback] = load_coordination().requests(final, "别的事情", DIRECTORY, producer="router")
    assert fallback.partner_kind == "civil_affairs"
