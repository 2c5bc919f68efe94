"""Returns and reassignments on the real stack: a returned order is ruled on and re-dispatched,
the routing record is kept in the store, and returns are counted per unit."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from fengqiao.contracts import (
    APPEALS,
    DISPATCH_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    Author,
    UnitActed,
    UnitActionKind,
    new_event_id,
)
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.app import build
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message
from fengqiao.watch import TopicWatcher


async def send(bootstrap: str, topic: str, message: AppealNormalized | UnitActed) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, message.model_dump_json().encode(), key=message.case_id.encode()
        )
    finally:
        await producer.stop()


async def test_a_returned_order_is_redispatched_and_counted(
    stack: StackSettings, run_id: str
) -> None:
    case_id = f"c-ret-{run_id}"
    text = "博乐市的工地老板拖欠工资，工地其实在精河县，求助"
    appeal = appeal_message(
        text,
        event_id=new_event_id(),
        occurred_at=datetime.now(UTC),
        producer="itest",
        case_id=case_id,
        post_event_id="p",
        author=Author(id="u"),
        posted_at=datetime.now(UTC),
    )
    runtime, app = build(RouterSettings(stack=stack, database=f"itest_router_{run_id}"))
    async with TopicWatcher(stack.kafka_bootstrap, [DISPATCH_ORDERS.name]) as watcher, serving(app):
        await send(stack.kafka_bootstrap, APPEALS.name, appeal)
        await watcher.wait_for(
            lambda w: any(o.case_id == case_id and o.final for o in w.of(DISPATCH_ORDERS.name)),
            timeout=60,
            what="the first dispatch",
        )
        first = next(
            o for o in watcher.of(DISPATCH_ORDERS.name) if o.case_id == case_id and o.final
        )
        returned = UnitActed(
            occurred_at=datetime.now(UTC),
            producer="itest",
            case_id=case_id,
            unit_id=first.to_unit,
            action=UnitActionKind.RETURN,
            reason_code="not_our_jurisdiction",
        )
        await send(stack.kafka_bootstrap, UNIT_ACTIONS.name, returned)
        await send(stack.kafka_bootstrap, UNIT_ACTIONS.name, returned)  # delivered twice
        await watcher.wait_for(
            lambda w: any(
                o.case_id == case_id and o.round == 2 for o in w.of(DISPATCH_ORDERS.name)
            ),
            timeout=60,
            what="the re-dispatch",
        )
        redispatch = [
            o for o in watcher.of(DISPATCH_ORDERS.name) if o.case_id == case_id and o.round == 2
        ]
        transport_client = runtime.mongo
        assert transport_client is not None
        from fengqiao.services.router.adapters.records import MongoRecordStore

        store = MongoRecordStore(transport_client, f"itest_router_{run_id}")
        record = await store.get(case_id)
        counts = await store.returns_by_unit()
        await transport_client.drop_database(f"itest_router_{run_id}")
    assert [o.to_unit for o in redispatch][-1] != first.to_unit
    assert all(o.hop > first.hop for o in redispatch)
    assert "终审" in (redispatch[-1].reason or "")
    assert record is not None and record.holder == redispatch[-1].to_unit
    assert counts == {first.to_unit: 1}
