"""A message a consumer cannot process goes to <topic>.dlq with its origin; the consumer goes on."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from fengqiao.contracts import APPEALS, DISPATCH_ORDERS, AppealNormalized, Author, new_event_id
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.app import build
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message
from fengqiao.watch import TopicWatcher


def appeal(case_id: str, text: str) -> AppealNormalized:
    return appeal_message(
        text,
        event_id=new_event_id(),
        occurred_at=datetime.now(UTC),
        producer="itest",
        case_id=case_id,
        post_event_id="p",
        author=Author(id="u"),
        posted_at=datetime.now(UTC),
    )


async def test_broken_message_is_dead_lettered_and_the_next_one_routed(
    stack: StackSettings, run_id: str
) -> None:
    _, app = build(RouterSettings(stack=stack))
    dlq = APPEALS.dlq
    async with (
        TopicWatcher(stack.kafka_bootstrap, [dlq, DISPATCH_ORDERS.name]) as watcher,
        serving(app),
    ):
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            key = f"c-broken-{run_id}".encode()
            await producer.send_and_wait(APPEALS.name, b'{"type": "appeal.normalized"', key=key)
            good = appeal(f"c-good-{run_id}", "伽师县拖欠工资")
            await producer.send_and_wait(
                APPEALS.name, good.model_dump_json().encode(), key=good.case_id.encode()
            )
        finally:
            await producer.stop()
        await watcher.wait_for(
            lambda w: (
                bool(w.of(dlq, lambda d: d.origin_key == key.decode()))
                and any(o.case_id == good.case_id and o.final for o in w.of(DISPATCH_ORDERS.name))
            ),
            timeout=60,
            what="the dead letter and the good message's dispatch",
        )
    [letter] = watcher.of(dlq, lambda d: d.origin_key == key.decode())
    assert letter.origin_topic == APPEALS.name
    assert letter.consumer == "router"
    assert letter.payload == '{"type": "appeal.normalized"'
    assert letter.origin_offset >= 0
    final = next(
        o for o in watcher.of(DISPATCH_ORDERS.name) if o.case_id == good.case_id and o.final
    )
    assert final.chain == ["xj", "653100", "653129"]
