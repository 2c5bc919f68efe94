"""Kafka plumbing every service shares: the broker, topic creation and dead letters.

- Producers wait for all in-sync replicas (acks=all) and are idempotent, so a publish that
  returned has been stored once.
- Consumers commit only after the handler finished (at-least-once); a message that fails is
  written to `<topic>.dlq` with its error and origin, and the consumer moves on. If even the
  dead-letter write fails (Kafka gone), the message is not committed and comes again.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy, BaseMiddleware
from prometheus_client import CollectorRegistry, Counter

from contracts import TOPICS, DeadLetter, Envelope, Topic
from contracts.topics import DLQ_PARTITIONS
from fengqiao.clock import utcnow

log = logging.getLogger("fengqiao.messaging")

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def make_broker(
    bootstrap: str,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
) -> KafkaBroker:
    """A broker with fengqiao's delivery guarantees and the dead-letter middleware."""
    middlewares: list[Any] = [DeadLetterMiddleware.for_service(service, registry)]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return KafkaBroker(
        bootstrap,
        client_id=f"fengqiao-{service}",
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=middlewares,
        logger=logging.getLogger(f"fengqiao.{service}.kafka"),
        log_level=logging.DEBUG,  # one line per message is for debugging, not for operations
    )


async def publish(broker: KafkaBroker, topic: str, message: Envelope) -> None:
    """Publish `message` keyed by its contract's key and wait for the broker's acknowledgement."""
    await broker.publish(message, topic=topic, key=message.kafka_key().encode())


def topic_specs(replication: int = 1, names: Iterable[str] | None = None) -> list[NewTopic]:
    """The NewTopic of every fengqiao topic (and its dead-letter topic)."""
    wanted = set(names) if names is not None else None
    specs = []
    for topic in TOPICS:
        for name, partitions in ((topic.name, topic.partitions), (topic.dlq, DLQ_PARTITIONS)):
            if wanted is None or name in wanted:
                specs.append(NewTopic(name, partitions, replication))
    return specs


async def ensure_topics(bootstrap: str, *, replication: int = 1) -> list[str]:
    """Create every fengqiao topic that does not exist yet; return the names created.

    Safe to call from every service at every start, concurrently: a topic another service
    created a moment ago is simply skipped.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="fengqiao-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in topic_specs(replication) if s.name not in existing]
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


class DeadLetterMiddleware(BaseMiddleware):
    """Sends a message whose handling failed to `<topic>.dlq` instead of losing or looping on it."""

    service: str = "unknown"
    dead_letters: Counter | None = None

    @classmethod
    def for_service(
        cls, service: str, registry: CollectorRegistry | None
    ) -> type[DeadLetterMiddleware]:
        counter = None
        if registry is not None:
            counter = Counter(
                "fengqiao_dead_letters_total",
                "Messages sent to a dead-letter topic",
                ["service", "topic"],
                registry=registry,
            )
        return type(
            f"DeadLetterMiddleware_{service}",
            (cls,),
            {"service": service, "dead_letters": counter},
        )

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        try:
            return await call_next(msg)
        except Exception as exc:
            record = msg.raw_message
            if isinstance(record, (list, tuple)):  # batch subscribers are not used
                raise
            letter = dead_letter_for(record, exc, consumer=self.service)
            broker = self.context.get("broker")
            await publish(broker, f"{record.topic}.dlq", letter)
            if self.dead_letters is not None:
                self.dead_letters.labels(self.service, record.topic).inc()
            log.error(
                "dead letter: %s[%s]@%s failed in %s: %s",
                record.topic,
                record.partition,
                record.offset,
                self.service,
                letter.error,
            )
            return None


def dead_letter_for(record: Any, exc: BaseException, *, consumer: str) -> DeadLetter:
    """The DeadLetter describing `record` (an aiokafka ConsumerRecord) and why it failed."""
    value: bytes = record.value or b""
    key: bytes | None = record.key
    return DeadLetter(
        occurred_at=utcnow(),
        producer=consumer,
        origin_topic=record.topic,
        origin_partition=record.partition,
        origin_offset=record.offset,
        origin_key=key.decode("utf-8", "replace")[:400] if key else None,
        consumer=consumer,
        error_type=type(exc).__name__,
        error=_describe(exc)[:4000],
        payload=value.decode("utf-8", "replace"),
    )


def _describe(exc: BaseException) -> str:
    # pydantic's ValidationError lists every field with the input value; keep field and reason
    # only, since the input may hold private data and the payload is kept separately anyway.
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()
            )
        except Exception:
            pass
    return str(exc) or type(exc).__name__


async def publish_to(publisher: Any, message: Envelope) -> None:
    """Publish through a declared publisher (so it appears in AsyncAPI), keyed by contract."""
    await publisher.publish(message, key=message.kafka_key().encode())


async def publish_all(messages: Iterable[tuple[Any, Envelope]]) -> None:
    """Publish each (declared publisher, message) in order, keyed by contract, without waiting
    for each acknowledgement; return once all are acknowledged (acks=all), or raise the first
    failure once all have been answered. Messages of one key keep their order in their partition.
    """
    pending: list[Any] = []
    for publisher, message in messages:
        sent = await publisher.publish(message, key=message.kafka_key().encode(), no_confirm=True)
        if inspect.isawaitable(sent):  # the delivery future (a test broker answers at once)
            pending.append(sent)
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def topic_publisher(broker: KafkaBroker, topic: Topic) -> Any:
    """Declare the publisher of `topic` (documented in AsyncAPI with its message schema)."""
    return broker.publisher(
        topic.name,
        title=f"{topic.name}:publish",
        description=topic.description,
        schema=topic.message,
    )


def topic_subscriber(
    broker: KafkaBroker,
    topic: Topic | str,
    *,
    group_id: str,
    action: str,
    description: str,
    max_workers: int = 1,
) -> Callable[[Handler], Handler]:
    """Declare a subscriber of `topic` in consumer group `<group_id>.<topic>`, reading from the
    start of the topic when the group is new (nothing published before a service's first start
    is lost); `action` names it in AsyncAPI (`<topic>:<action>`).

    One group per subscribed topic: FastStream gives each subscriber its own consumer, and
    consumers of different topics in one group rebalance each other on every start (measured:
    14 s before a tracker consumed its first message, with five subscribers in one group).

    `max_workers` > 1 gives the subscriber that many consumers in its group, each handling the
    messages of the partitions it was assigned one after the other: up to one message per
    partition at a time, each partition still in order, offsets still committed after handling.
    """
    name = topic if isinstance(topic, str) else topic.name
    # Typed as keeping the handler (FastStream returns its subscriber object) so that handlers
    # stay typed for mypy.
    return broker.subscriber(  # type: ignore[return-value]
        name,
        group_id=f"{group_id}.{name}",
        auto_offset_reset="earliest",
        max_workers=max_workers,
        title=f"{name}:{action}",
        description=description,
    )
