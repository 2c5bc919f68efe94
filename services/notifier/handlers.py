"""Notifier's subscriber: `replies.requested` → the platform → `replies.sent` (and, after the
last try, `replies.requested.dlq`)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from contracts import REPLIES_REQUESTED, REPLIES_SENT, DeadLetter, ReplyRequested, ReplySent
from contracts.topics import DLQ_MESSAGE
from fengqiao.clock import Clock
from fengqiao.messaging import publish_to, topic_publisher, topic_subscriber
from services.notifier.sender import Origin, Sender


class KafkaResults:
    """Where the sender's outcomes go: replies.sent, and replies.requested.dlq."""

    def __init__(self, broker: KafkaBroker, *, producer: str, clock: Clock) -> None:
        self._sent = topic_publisher(broker, REPLIES_SENT)
        self._dead = broker.publisher(
            REPLIES_REQUESTED.dlq,
            title=f"{REPLIES_REQUESTED.dlq}:publish",
            description="Reply requests that failed after the notifier's last try.",
            schema=DLQ_MESSAGE,
        )
        self._producer, self._clock = producer, clock

    async def sent(self, result: ReplySent) -> None:
        await publish_to(self._sent, result)

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


def register(broker: KafkaBroker, sender: Sender, *, group_id: str, consumers: int) -> None:
    @topic_subscriber(
        broker,
        REPLIES_REQUESTED,
        group_id=group_id,
        action="send",
        description="Post a reply on the platform, once.",
        max_workers=consumers,
    )
    async def send_reply(request: ReplyRequested, msg: KafkaMessage) -> None:
        record = msg.raw_message
        key = getattr(record, "key", None)
        origin = Origin(
            topic=getattr(record, "topic", REPLIES_REQUESTED.name),
            partition=int(getattr(record, "partition", 0) or 0),
            offset=int(getattr(record, "offset", 0) or 0),
            key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
        )
        await sender.handle(request, origin)
