"""Consumer groups for tests and benchmarks that share a stack with earlier runs."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from fengqiao.watch import topic_partitions


async def start_group_at_end(bootstrap: str, group_id: str, topic: str) -> None:
    """Commit `group_id`'s offsets on `topic` at the topic's end, so a service started with that
    group reads only what is published from now on (not every earlier run's messages)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        found = await topic_partitions(consumer, topic)
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in partitions})
    finally:
        await consumer.stop()
