"""Notifier's subscriber: `replies.requested` → the platform → `replies.sent` (and, after the
last try, `replies.requested.dlq`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any, cast

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import Field, ValidationError

from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    DeadLetter,
    ReplyRequested,
    ReplySent,
)
from fengqiao.runtime.clock import Clock
from fengqiao.runtime.messaging import (
    dead_letter_for,
    dead_letter_publisher,
    publish_all,
    publish_to,
    topic_publisher,
    topic_subscriber,
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

    async def dead_record(self, letter: DeadLetter) -> None:
        """A message that is no reply request at all."""
        await publish_to(self._dead, letter)


# A batch's messages: each a ReplyRequested, or (when it is not one) what it decoded to.
Item = Annotated[ReplyRequested | Any, Field(union_mode="left_to_right")]


def decode_each(msg: StreamMessage[Any]) -> list[Any]:
    """Each message of a batch as JSON, or as text when it is none: one bad message must not
    fail the batch (it goes to the dead-letter topic alone)."""
    decoded: list[Any] = []
    for value in cast("list[bytes]", msg.body):  # a batch's body is one value per message
        try:
            decoded.append(json.loads(value))
        except ValueError:
            decoded.append(bytes(value).decode("utf-8", "replace"))
    return decoded


def register(
    broker: KafkaBroker,
    sender: Sender,
    results: KafkaResults,
    *,
    group_id: str,
    batch_size: int,
) -> None:
    @topic_subscriber(
        broker,
        REPLIES_REQUESTED,
        group_id=group_id,
        action="send",
        description="Post replies on the platform, once; in batches (one write claims a batch, "
        "one records its outcomes).",
        batch=True,
        max_records=batch_size,
        batch_timeout_ms=100,
        decoder=decode_each,
    )
    async def send_replies(batch: list[Item], msg: KafkaMessage) -> None:
        records = msg.raw_message
        if not isinstance(records, (list, tuple)):
            records = (records,)
        requests: list[tuple[ReplyRequested, Origin | None]] = []
        for item, record in zip(batch, records, strict=True):
            if isinstance(item, ReplyRequested):
                requests.append((item, _origin(record)))
                continue
            try:
                ReplyRequested.model_validate(item)
                error: Exception = TypeError("not a JSON object")
            except ValidationError as exc:
                error = exc
            await results.dead_record(dead_letter_for(record, error, consumer=NAME))
        await sender.handle_many(requests)


def _origin(record: Any) -> Origin:
    key = getattr(record, "key", None)
    return Origin(
        topic=getattr(record, "topic", REPLIES_REQUESTED.name),
        partition=int(getattr(record, "partition", 0) or 0),
        offset=int(getattr(record, "offset", 0) or 0),
        key=key.decode("utf-8", "replace") if isinstance(key, bytes) else None,
    )
