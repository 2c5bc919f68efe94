"""Router's subscriber through FastStream's in-memory broker: appeals in, dispatch orders out.

The routing domain (directory, places, rules) is loaded once per module and registered on a
fresh runtime per test, as `fengqiao.services.router.app.build` does; one test goes through `build`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from fengqiao.contracts import (
    APPEALS,
    DISPATCH_ORDERS,
    AppealNormalized,
    DeadLetter,
    DispatchOrdered,
    Outgoing,
    ReplyTarget,
)
from fengqiao.runtime.messaging import DirectProducer
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router import handlers
from fengqiao.services.router.adapters.records import MongoRecordStore
from fengqiao.services.router.app import build, build_router
from fengqiao.services.router.domain import Router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing.factories import appeal_message

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)


def appeal(text: str = "博乐市的工地拖欠工资，求助", **overrides: Any) -> AppealNormalized:
    target = ReplyTarget(platform="weibo", account="@新疆检察", post_id="p1")
    return appeal_message(text, **{"reply_to": target, **overrides})


class Probe:
    def __init__(self, broker: KafkaBroker) -> None:
        self.orders: list[DispatchOrdered] = []
        self.letters: list[DeadLetter] = []

        @broker.subscriber(DISPATCH_ORDERS.name, group_id="probe")
        async def on_order(order: DispatchOrdered) -> None:
            self.orders.append(order)

        @broker.subscriber(APPEALS.dlq, group_id="probe")
        async def on_letter(letter: DeadLetter) -> None:
            self.letters.append(letter)


@pytest.fixture(scope="module")
def domain_router() -> Router:
    return build_router(RouterSettings())


def runtime_for(router: Router) -> tuple[Runtime, Probe]:
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    handlers.register(
        runtime.broker, router, producer="router", group_id="router", registry=runtime.registry
    )
    return runtime, Probe(runtime.broker)


@pytest.fixture
def routed(domain_router: Router) -> tuple[Runtime, Probe]:
    return runtime_for(domain_router)


async def test_an_appeal_is_dispatched_hop_by_hop(routed: tuple[Runtime, Probe]) -> None:
    runtime, probe = routed
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(), APPEALS.name, key=b"c-1")
    assert [(o.hop, o.from_unit, o.to_unit, o.final) for o in probe.orders] == [
        (1, "xj", "652700", False),
        (2, "652700", "652701", True),
    ]
    assert {o.case_id for o in probe.orders} == {"c-1"}
    assert {o.producer for o in probe.orders} == {"router"}
    assert probe.letters == []


async def test_a_redelivered_appeal_repeats_the_same_order_ids(
    routed: tuple[Runtime, Probe],
) -> None:
    runtime, probe = routed
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(), APPEALS.name)
        await broker.publish(appeal(), APPEALS.name)
    first, again = probe.orders[:2], probe.orders[2:]
    assert [o.event_id for o in first] == [o.event_id for o in again]
    assert first == again


async def test_the_composition_root_takes_the_policy_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No store here, and an unreachable store is waited for: the dispatch's record is not kept.
    async def kept(*_: object) -> bool:
        return True

    monkeypatch.setattr(MongoRecordStore, "save", kept)
    runtime, _ = build(RouterSettings(policy="direct"))
    probe = Probe(runtime.broker)

    async def through_the_test_broker(_: DirectProducer, messages: Iterable[Outgoing]) -> None:
        # The app's direct producer is started with the app (not here): the test broker
        # delivers what it would publish.
        for outgoing in messages:
            await runtime.broker.publish(outgoing.message, outgoing.topic)

    monkeypatch.setattr(DirectProducer, "send_all", through_the_test_broker)
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(), APPEALS.name)
    [order] = probe.orders
    assert (order.to_unit, order.cc_units) == ("652701", ["652700"])


async def test_an_appeal_with_private_data_is_dispatched_privately(
    domain_router: Router,
) -> None:
    runtime, probe = runtime_for(dataclasses.replace(domain_router, policy="direct"))
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(pii_kinds=["phone"]), APPEALS.name)
    [order] = probe.orders
    assert order.mode == "private_message"


async def test_posts_that_are_not_appeals_are_not_dispatched(
    routed: tuple[Runtime, Probe],
) -> None:
    runtime, probe = routed
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal("为你们点赞", is_appeal=False), APPEALS.name)
    assert probe.orders == []
    assert probe.letters == []


async def test_a_follow_up_of_an_open_case_is_not_dispatched_again(
    routed: tuple[Runtime, Probe],
) -> None:
    runtime, probe = routed
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(follow_up_of="c-0"), APPEALS.name)
    assert probe.orders == []


async def test_a_message_off_contract_goes_to_dead_letters(
    routed: tuple[Runtime, Probe],
) -> None:
    runtime, probe = routed
    body = appeal().model_dump(mode="json")
    del body["case_id"]
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(body, APPEALS.name, key=b"c-1")
        await broker.publish(appeal(event_id="appeal-2"), APPEALS.name)
    [letter] = probe.letters
    assert letter.origin_topic == APPEALS.name
    assert letter.origin_key == "c-1"
    assert letter.consumer == "router"
    assert "case_id: Field required" in letter.error
    assert len(probe.orders) == 2  # the consumer moved on to the next message


async def test_decisions_are_counted(routed: tuple[Runtime, Probe]) -> None:
    runtime, _ = routed
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(appeal(), APPEALS.name)
        await broker.publish(
            appeal(
                "为博乐市检察院点赞，辛苦了！", event_id="praise-1", case_id="c-2", is_appeal=False
            ),
            APPEALS.name,
        )
    assert (
        runtime.registry.get_sample_value(
            "fengqiao_router_decisions_total", {"outcome": "dispatched"}
        )
        == 1.0
    )
    assert (
        runtime.registry.get_sample_value(
            "fengqiao_router_decisions_total", {"outcome": "not_appeal"}
        )
        == 1.0
    )
