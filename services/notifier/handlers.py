"""Notifier's subscriber: `replies.requested` → the platform → `replies.sent` (and, after the
last try, `replies.requested.dlq`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    DeadLetter,
    ReplyRequested,
    ReplySent,
)
from fengqiao.runtime.clock import Clock
from fengqiao.runtime.messaging import (
    BatchFailures,
    batch_records,
    batch_subscriber,
    dead_letter_publisher,
    publish_all,
    publish_to,
    topic_publisher,
)
from fengqiao.services.notifier.sender import Origin, Sender

NAME = "notifier"


class KafkaResults:
    """Where the sender's outcomes go: replies.sent, and replies.requested.dlq."""

    def __init__(self, broker: KafkaBroker, *, producer: str, clock: Clock) -> None:
        self._sent = topic_publisher(broker, REPLIES_SENT)
        self._dead = dead_letter_publisher(broker, REPLIES_REQUESTED.name)
        self._producer, self._clock = producer, clock

    async def sent(self, result: ReplySent) -> None:
        await publish_to(self._sent, result)

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        await publish_all((self._sent, result) for result in results)

    async def dead_letter(self, request: ReplyRequested, origin: Origin | None, error: str) -> None:
        letter = DeadLetter(
            occurred_at=self._clock.now(),
            producer=self._producer,
            origin_topic=origin.topic if origin else REPLIES_REQUESTED.name,
            origin_partition=origin.partition if origin else 0,
            origin_offset=origin.offset if origin else 0,
            origin_key=(origin.key if origin else None) or request.kafka_key(),
            consumer=self._producer,
            error_type="RetriesExhausted",
            error=error[:4000],
            payload=request.model_dump_json(),
        )
        await publish_to(self._dead, letter)


class Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the sender which partitions of replies.requested, so which accounts (the topic is
    keyed by account), this replica owns: queued replies of revoked partitions leave memory for
    their new owner, which finds them parked."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._sender.revoked(_partitions(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._sender.assigned(_partitions(assigned))


def _partitions(topic_partitions: set[TopicPartition]) -> set[int]:
    return {tp.partition for tp in topic_partitions if tp.topic == REPLIES_REQUESTED.name}


def register(
    broker: KafkaBroker,
    sender: Sender,
    *,
    group_id: str,
    batch_size: int,
) -> None:
    """The subscriber of replies.requested: the tracker's batch pipeline (each poll committed
    once handled, in poll order); a message off contract goes to dead letters alone."""

    @batch_subscriber(
        broker,
        REPLIES_REQUESTED,
        group_id=group_id,
        action="send",
        description="Post replies on the platform, once; in batches (one write claims a batch, "
        "one records its outcomes).",
        max_records=batch_size,
        batch_timeout_ms=100,
        listener=Ownership(sender),
    )
    async def send_replies(batch: list[ReplyRequested], msg: KafkaMessage) -> BatchFailures:
        origins = [_origin(record) for record in batch_records(msg)]
        await sender.handle_many(list(zip(batch, origins, strict=True)))
        return BatchFailures()


def _origin(record: Any) -> Origin:
    key = getattr(record, "key", None)
    return Origin(
        topic=getattr(record, "topic", REPLIES_REQUESTED.name),
        partition=int(getattr(record, "partition", 0) or 0),
        offset=int(getattr(record, "offset", 0) or 0),
        key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
    )
