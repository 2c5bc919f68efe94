"""Router's unit.actions subscriber through the in-memory broker: returns and reassignments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    Author,
    CoordinationRequested,
    DeadLetter,
    DispatchOrdered,
    ReplyTarget,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router import handlers
from fengqiao.services.router.adapters.records import InMemoryRecordStore
from fengqiao.services.router.app import build_router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing.factories import triage_message

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
ROUTER = build_router(RouterSettings())


def appeal(text: str) -> AppealNormalized:
    return AppealNormalized(
        event_id="appeal-1",
        occurred_at=AT,
        producer="intake",
        case_id="c-1",
        post_event_id="raw-1",
        platform="weibo",
        channel="webhook",
        account="@新疆检察",
        author=Author(id="u1"),
        posted_at=AT,
        original_text=text,
        text=text,
        masked_text=text,
        lang="zh",
        is_appeal=True,
        reply_to=ReplyTarget(platform="weibo", account="@新疆检察"),
        triage=triage_message("wage_arrears"),  # intake's triage decides the category
    )


def act(kind: UnitActionKind, unit: str, event_id: str, **fields: object) -> UnitActed:
    return UnitActed(
        event_id=event_id,
        occurred_at=AT,
        producer="tracker",
        case_id="c-1",
        unit_id=unit,
        action=kind,
        **fields,
    )  # type: ignore[arg-type]


@pytest.fixture
def wired() -> tuple[Runtime, InMemoryRecordStore, dict[str, list[object]]]:
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    store = InMemoryRecordStore()
    handlers.register(
        runtime.broker,
        ROUTER,
        producer="router",
        group_id="router",
        registry=runtime.registry,
        store=store,
    )
    seen: dict[str, list[object]] = {"orders": [], "asks": [], "letters": []}

    @runtime.broker.subscriber(DISPATCH_ORDERS.name, group_id="probe-o")
    async def orders(order: DispatchOrdered) -> None:
        seen["orders"].append(order)

    @runtime.broker.subscriber(COORDINATION_REQUESTS.name, group_id="probe-c")
    async def asks(ask: CoordinationRequested) -> None:
        seen["asks"].append(ask)

    @runtime.broker.subscriber(UNIT_ACTIONS.dlq, group_id="probe-d")
    async def letters(letter: DeadLetter) -> None:
        seen["letters"].append(letter)

    return runtime, store, seen


async def test_wage_arrears_are_dispatched_with_labour_inspection_asked_to_help(wired) -> None:
    runtime, store, seen = wired
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(appeal("博乐市工地拖欠工资三个月"), APPEALS.name)
    assert [o.to_unit for o in seen["orders"]] == ["652700", "652701"]
    [ask] = seen["asks"]
    assert (ask.partner_kind, ask.role, ask.from_unit) == (
        "labour_inspection",
        "co_handler",
        "652701",
    )
    assert (await store.get("c-1")).holder == "652701"  # type: ignore[union-attr]


async def test_a_return_is_redispatched_once_even_if_delivered_twice(wired) -> None:
    runtime, store, seen = wired
    returned = act(UnitActionKind.RETURN, "652701", "a-1", reason_code="duplicate")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(appeal("博乐市工地拖欠工资"), APPEALS.name)
        await br.publish(returned, UNIT_ACTIONS.name)
        await br.publish(returned, UNIT_ACTIONS.name)
    rounds = [o for o in seen["orders"] if o.round == 2]  # type: ignore[attr-defined]
    # The first delivery rules; the second publishes the same orders (same ids) again.
    assert {o.event_id for o in rounds} == {rounds[0].event_id}  # type: ignore[attr-defined]
    assert rounds[0].to_unit == "652700"  # type: ignore[attr-defined]  # the prefecture keeps it
    assert await store.returns_by_unit() == {"652701": 1}


async def test_a_reassignment_by_hand_dispatches_to_the_chosen_unit(wired) -> None:
    runtime, store, seen = wired
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(appeal("博乐市工地拖欠工资"), APPEALS.name)
        await br.publish(
            act(UnitActionKind.REASSIGN, "xj", "a-2", target_unit="650109"), UNIT_ACTIONS.name
        )
    final = [o for o in seen["orders"] if o.final][-1]  # type: ignore[attr-defined]
    assert final.to_unit == "650109"  # type: ignore[attr-defined]
    assert (await store.get("c-1")).holder == "650109"  # type: ignore[union-attr]


async def test_an_action_on_an_unknown_case_is_a_dead_letter(wired) -> None:
    runtime, _, seen = wired
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(
            act(UnitActionKind.RETURN, "652701", "a-3", reason_code="other"), UNIT_ACTIONS.name
        )
    [letter] = seen["letters"]
    assert "no dispatch to rule on" in letter.error  # type: ignore[attr-defined]


async def test_an_appeal_with_fields_a_newer_intake_added_is_routed(wired) -> None:
    runtime, _, seen = wired
    body = appeal("博乐市工地拖欠工资三个月").model_dump(mode="json")
    body["colour"] = "red"
    body["author"]["nick"] = "x"
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(body, APPEALS.name)
    assert [o.to_unit for o in seen["orders"]] == ["652700", "652701"]
