"""Urgent lanes through the services' own subscribers and publishers: intake marks a post in
danger for posts.raw's lane; a service reads a topic's lane with the topic and publishes what it
makes of an urgent message in the next topic's lane."""

from __future__ import annotations

from datetime import UTC, datetime

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from fengqiao.contracts import (
    APPEALS,
    DISPATCH_ORDERS,
    LANES,
    DispatchOrdered,
    RawPostReceived,
)
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.sink import KafkaPostSink
from fengqiao.services.intake.lanes import danger_hint
from fengqiao.services.intake.triage import load_triager
from fengqiao.services.router import handlers
from fengqiao.services.router.app import build_router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing.factories import appeal_message, raw_post_message, triage_message

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


class Published:
    def __init__(self) -> None:
        self.posts: list[RawPostReceived] = []

    async def publish(self, message: RawPostReceived) -> None:
        self.posts.append(message)


async def test_intake_marks_a_post_in_danger_for_the_urgent_lane() -> None:
    published = Published()
    sink = KafkaPostSink(published, urgent=danger_hint(load_triager().danger))
    await sink.put(raw_post_message("救命！有人拿刀要砍我，我被关在屋里了", "p1"))
    await sink.put(raw_post_message("包工头拖欠工资三万多元一直不给，请帮忙讨薪", "p2"))
    assert [p.urgent_hint for p in published.posts] == [True, False]


def probe(broker: KafkaBroker) -> dict[str, list[DispatchOrdered]]:
    seen: dict[str, list[DispatchOrdered]] = {DISPATCH_ORDERS.name: [], "lane": []}

    @broker.subscriber(DISPATCH_ORDERS.name, group_id="probe")
    async def on_order(order: DispatchOrdered) -> None:
        seen[DISPATCH_ORDERS.name].append(order)

    @broker.subscriber(LANES[DISPATCH_ORDERS.name].name, group_id="probe")
    async def on_urgent_order(order: DispatchOrdered) -> None:
        seen["lane"].append(order)

    return seen


async def test_the_router_reads_the_appeals_lane_and_dispatches_in_the_orders_lane() -> None:
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    handlers.register(
        runtime.broker,
        build_router(RouterSettings()),
        producer="router",
        group_id="router",
        registry=CollectorRegistry(),
    )
    seen = probe(runtime.broker)
    urgent = appeal_message(
        "博乐市有人拿刀要砍我，救命", case_id="c-u", triage=triage_message(urgent=True)
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(urgent, LANES[APPEALS.name].name)
        await broker.publish(appeal_message(case_id="c-o", event_id="appeal-2"), APPEALS.name)
    assert {o.case_id for o in seen["lane"]} == {"c-u"}
    assert {o.case_id for o in seen[DISPATCH_ORDERS.name]} == {"c-o"}
