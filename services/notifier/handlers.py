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
    Outages,
    batch_records,
    batch_subscriber,
    dead_letter_publisher,
    publish_all,
    publish_to,
    topic_publisher,
)
from fengqiao.services.notifier.sender import Origin, Sender

NAME = "notifier"
# The header `fengqiao ops dlq replay` puts on a replayed message (fengqiao.ops.dlq).
REPLAY_HEADER = "fengqiao-replay-of"


class KafkaResults:
    """Where the sender's outcomes go: replies.sent, and replies.requested.dlq. A publish that
    meets a Kafka outage waits it out with the service (`outages`) and is tried again: an outcome
    recorded is reported, and a reply that failed for good is dead-lettered, whatever Kafka did
    meanwhile."""

    def __init__(
        self, broker: KafkaBroker, *, producer: str, clock: Clock, outages: Outages | None = None
    ) -> None:
        self._sent = topic_publisher(broker, REPLIES_SENT)
        self._dead = dead_letter_publisher(broker, REPLIES_REQUESTED.name)
        self._producer, self._clock = producer, clock
        self._outages = outages or Outages(NAME)

    async def sent(self, result: ReplySent) -> None:
        await self._outages.retry(lambda: publish_to(self._sent, result), REPLIES_SENT.name)

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        await self._outages.retry(
            lambda: publish_all((self._sent, result) for result in results), REPLIES_SENT.name
        )

    async def dead_letter(
        self,
        request: ReplyRequested,
        origin: Origin | None,
        error: str,
        error_type: str = "RetriesExhausted",
    ) -> None:
        letter = DeadLetter(
            occurred_at=self._clock.now(),
            producer=self._producer,
            origin_topic=origin.topic if origin else REPLIES_REQUESTED.name,
            origin_partition=origin.partition if origin else 0,
            origin_offset=origin.offset if origin else 0,
            origin_key=(origin.key if origin else None) or request.kafka_key(),
            consumer=self._producer,
            error_type=error_type,
            error=error[:4000],
            payload=request.model_dump_json(),
        )
        await self._outages.retry(lambda: publish_to(self._dead, letter), REPLIES_REQUESTED.dlq)


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
        origins = [origin_of(record) for record in batch_records(msg)]
        await sender.handle_many(list(zip(batch, origins, strict=True)))
        return BatchFailures()


def origin_of(record: Any) -> Origin:
    """Where a request was read from, and the dead letter it was replayed from, if any."""
    key = getattr(record, "key", None)
    replay_of = next(
        (
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            for name, value in getattr(record, "headers", None) or ()
            if name == REPLAY_HEADER and value is not None
        ),
        None,
    )
    return Origin(
        topic=getattr(record, "topic", REPLIES_REQUESTED.name),
        partition=int(getattr(record, "partition", 0) or 0),
        offset=int(getattr(record, "offset", 0) or 0),
        key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
        replay_of=replay_of,
    )
