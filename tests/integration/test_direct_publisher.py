"""`DirectPublisher` on the real Kafka: keyed like the broker's publishers, in the format FastStream
subscribers read, acknowledged before `publish` returns, counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from contracts import POSTS_RAW, RawPostReceived
from fengqiao.messaging import DirectPublisher
from fengqiao.settings import StackSettings


def raw_post(run_id: str) -> RawPostReceived:
    return RawPostReceived(
        occurred_at=datetime.now(UTC),
        producer="itest",
        platform="generic",
        channel="webhook",
        account="@新疆检察",
        source_id=f"direct:{run_id}",
        delivery_id=run_id,
        payload={"id": run_id, "text": "博乐市拖欠工资求助"},
    )


async def test_a_published_message_is_stored_keyed_and_readable(
    stack: StackSettings, run_id: str
) -> None:
    registry = CollectorRegistry()
    publisher = DirectPublisher(
        stack.kafka_bootstrap, POSTS_RAW, service="itest", registry=registry
    )
    message = raw_post(run_id)
    await publisher.start()
    try:
        await publisher.publish(message)  # returns once acknowledged
    finally:
        await publisher.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(POSTS_RAW.name, p) for p in range(POSTS_RAW.partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:  # the last few records of each partition hold ours
            consumer.seek(tp, max(ends[tp] - 50, 0))
        found = []
        batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
        for records in batches.values():
            found += [r for r in records if r.key == message.kafka_key().encode()]
    finally:
        await consumer.stop()
    assert len(found) == 1
    record = found[0]
    assert dict(record.headers)["content-type"] == b"application/json"
    assert RawPostReceived.model_validate_json(record.value) == message
    ok = registry.get_sample_value(
        "fengqiao_direct_published_total", {"topic": POSTS_RAW.name, "result": "ok"}
    )
    assert ok == 1


async def test_publishing_before_start_is_refused(stack: StackSettings, run_id: str) -> None:
    publisher = DirectPublisher(stack.kafka_bootstrap, POSTS_RAW, service="itest")
    with pytest.raises(RuntimeError, match=r"posts\.raw publisher is not started"):
        await publisher.publish(raw_post(run_id))
