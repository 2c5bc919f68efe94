"""The broker every service builds, its topics, and whether its consumers have joined."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity
from prometheus_client import CollectorRegistry

from fengqiao.contracts import TOPICS
from fengqiao.contracts.topics import DLQ_PARTITIONS
from fengqiao.runtime import tracing
from fengqiao.runtime.compat import consumer_generation, consumer_group, subscriber_consumers
from fengqiao.runtime.kafka_security import check_access, kafka_options
from fengqiao.runtime.messaging.dead_letters import DeadLetterMiddleware
from fengqiao.runtime.messaging.faults import Outages
from fengqiao.runtime.messaging.metrics import SubscriberMetrics


def make_broker(
    bootstrap: str,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    metrics: SubscriberMetrics | None = None,
    outages: Outages | None = None,
    security: BaseSecurity | None = None,
) -> KafkaBroker:
    """A broker with fengqiao's delivery guarantees and the dead-letter middleware; with a
    registry, its subscribers are measured (`metrics`, or new ones on that registry). Handlers
    that fail transiently wait through `outages` (the service's, for its readiness). With
    tracing on, FastStream's telemetry middleware comes first (outermost): the dead-letter
    middleware's lines carry the message's trace. `security`: `StackSettings.kafka_security()`."""
    if metrics is None and registry is not None:
        metrics = SubscriberMetrics(service, registry)
    middlewares: list[Any] = [
        *tracing.kafka_middlewares(),
        DeadLetterMiddleware.for_service(service, metrics, outages),
    ]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return KafkaBroker(
        bootstrap,
        client_id=f"fengqiao-{service}",
        security=security,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=middlewares,
        logger=logging.getLogger(f"fengqiao.{service}.kafka"),
        log_level=logging.DEBUG,  # one line per message is for debugging, not for operations
    )


def topic_specs(
    replication: int = 1, names: Iterable[str] | None = None, min_insync: int | None = None
) -> list[NewTopic]:
    """The NewTopic of every fengqiao topic (and its dead-letter topic); `min_insync`: their
    min.insync.replicas (None: the broker's default)."""
    wanted = set(names) if names is not None else None
    configs = {"min.insync.replicas": str(min_insync)} if min_insync is not None else None
    specs = []
    for topic in TOPICS:
        for name, partitions in ((topic.name, topic.partitions), (topic.dlq, DLQ_PARTITIONS)):
            if wanted is None or name in wanted:
                specs.append(NewTopic(name, partitions, replication, topic_configs=configs))
    return specs


async def ensure_topics(
    bootstrap: str,
    *,
    replication: int = 1,
    min_insync: int | None = None,
    security: BaseSecurity | None = None,
) -> list[str]:
    """Create every fengqiao topic that does not exist yet; return the names created.

    Safe to call from every service at every start, concurrently: a topic another service
    created a moment ago is simply skipped. Credentials the brokers refuse raise
    `KafkaAccessRefused` (not an outage to wait out).
    """
    await check_access(bootstrap, security)
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap, security), client_id="fengqiao-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = topic_specs(replication, min_insync=min_insync)
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:  # one by one, so a race on one topic does not hide the others
            try:
                await admin.create_topics([spec])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


def consumers_assigned(broker: KafkaBroker) -> dict[str, str]:
    """Each subscriber's consumer group and whether it has joined: "assigned N" (partitions),
    "joined" (a member with no partition: more replicas than partitions), or what is missing.
    """
    states: dict[str, str] = {}
    for subscriber in broker.subscribers:
        consumers = subscriber_consumers(subscriber)
        names = ",".join(getattr(subscriber, "topic_names", None) or ()) or "?"
        if not consumers:
            states[names] = "not started"
            continue
        group = consumer_group(consumers[0]) or names
        assigned: set[TopicPartition] = set().union(*(c.assignment() for c in consumers))
        generations = [consumer_generation(c) for c in consumers]
        if assigned:
            states[group] = f"assigned {len(assigned)}"
        elif any(g > 0 for g in generations):
            states[group] = "joined"
        else:
            states[group] = "not assigned"
    return states
