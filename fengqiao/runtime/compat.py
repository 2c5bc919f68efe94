"""Every use of a library's internals, in one place, each behind a small named function.

The libraries (aiokafka, FastStream, prometheus_client) have no public way to ask these things.
tests/unit/test_compat.py checks each one against the installed version, so an upgrade that
renames or removes an internal fails there, loudly, and not in production. An architecture test
keeps private attribute access out of every other module.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry


def subscriber_consumers(subscriber: Any) -> list[AIOKafkaConsumer]:
    """The aiokafka consumers of a FastStream subscriber: one, or `max_workers` of them (a
    concurrent subscriber keeps them in `consumer_subgroup`); none before it started."""
    subgroup = getattr(subscriber, "consumer_subgroup", None)
    if subgroup:
        return list(subgroup)
    consumer = getattr(subscriber, "consumer", None)
    return [consumer] if consumer is not None else []


def consumer_group(consumer: AIOKafkaConsumer) -> str | None:
    """The consumer group an aiokafka consumer was built with (None without one)."""
    group = getattr(consumer, "_group_id", None)  # None on an in-memory test broker's
    return group if isinstance(group, str) else None


def consumer_generation(consumer: AIOKafkaConsumer) -> int:
    """The group generation the consumer has joined: > 0 once it is a member, even one with
    no partition; -1 before it joined (or without a group)."""
    coordinator = getattr(consumer, "_coordinator", None)
    generation = getattr(coordinator, "generation", -1)
    return generation if isinstance(generation, int) else -1


async def watch_topics(consumer: AIOKafkaConsumer, names: list[str]) -> None:
    """Add `names` to the topics whose metadata the consumer keeps: it asks for offsets only of
    topics in its metadata, and would otherwise find them on a periodic refresh, seconds later."""
    await consumer._client.set_topics(names)


async def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Ask the cluster for fresh metadata now (a topic created a moment ago)."""
    await consumer._client.force_metadata_update()


def registered_collector(registry: CollectorRegistry, name: str) -> Any:
    """The collector that registered the sample `name` on `registry` (None if none did)."""
    return registry._names_to_collectors.get(name)
