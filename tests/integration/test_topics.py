"""Topics are created by the services themselves, idempotently, with the partitions in contracts."""

from __future__ import annotations

import pytest
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


async def test_topics_get_min_insync_replicas_from_the_settings(
    stack: StackSettings, run_id: str
) -> None:
    from aiokafka.admin import NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from fengqiao.runtime.messaging import topic_specs

    [spec] = topic_specs(replication=1, names=["appeals"], min_insync=2)
    name = f"insync-{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=spec.topic_configs)])
        [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        await admin.delete_topics([name])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in answer.resources[0][4]}
    assert configs["min.insync.replicas"] == "2"  # the broker's default is 1


def test_min_insync_replicas_cannot_exceed_the_replication() -> None:
    from pydantic import ValidationError

    from fengqiao.runtime.messaging import topic_specs

    with pytest.raises(ValidationError, match="exceeds FENGQIAO_TOPIC_REPLICATION=1"):
        StackSettings(topic_min_insync_replicas=2)
    assert StackSettings(topic_replication=3, topic_min_insync_replicas=2)
    [plain] = topic_specs(names=["appeals"])
    [strict] = topic_specs(names=["appeals"], min_insync=2)
    assert not plain.topic_configs and strict.topic_configs == {"min.insync.replicas": "2"}
