"""Topics are created by the services themselves, idempotently, with the partitions in contracts."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from fengqiao.contracts import TOPICS, all_topic_names
from fengqiao.runtime.messaging import ensure_topics
from fengqiao.runtime.settings import StackSettings


async def test_every_topic_exists_with_its_partitions(stack: StackSettings) -> None:
    await ensure_topics(stack.kafka_bootstrap)
    assert await ensure_topics(stack.kafka_bootstrap) == []  # second time: nothing to do
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(all_topic_names())
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in described}
    for topic in TOPICS:
        assert partitions[topic.name] == topic.partitions
        assert partitions[topic.dlq] == 1


async def test_broker_does_not_create_topics_on_its_own(stack: StackSettings, run_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        try:
            await producer.send_and_wait(f"no-such-topic-{run_id}", b"x")
            created = True
        except KafkaError:
            created = False
    finally:
        await producer.stop()
    assert not created
