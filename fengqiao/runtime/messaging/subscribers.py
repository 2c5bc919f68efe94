"""Declaring subscribers: one consumer group per topic, its dead-letter topic, and the batch
subscriber whose polls are committed by `batches.Pipeline`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy

from fengqiao.contracts import LANES, Topic
from fengqiao.runtime import tracing
from fengqiao.runtime.logs import bind
from fengqiao.runtime.messaging.batches import DECODED, DecodedBatch
from fengqiao.runtime.messaging.dead_letters import dead_letter_publisher

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])
# Letting a poll fill (`batch_subscriber(fill=True)`): Kafka holds each fetch until
# POLL_FILL_BYTES of the topic are waiting or POLL_WAIT_MS have passed (aiokafka's
# fetch_min_bytes / fetch_max_wait_ms). Under load a poll then carries tens of messages, whose
# writes a handler groups; a lone message waits at most POLL_WAIT_MS (docs/performance.md).
POLL_WAIT_MS = 100
POLL_FILL_BYTES = 256 * 1024
M = TypeVar("M")


def bind_message(message: M) -> M:
    """`message`, its `case_id` and `event_id` bound to the lines logged while it is handled
    (until the dead-letter middleware's scope of the message ends)."""
    bind(case_id=getattr(message, "case_id", None), event_id=getattr(message, "event_id", None))
    return message


def topic_subscriber(
    broker: KafkaBroker,
    topic: Topic | str,
    *,
    group_id: str,
    action: str,
    description: str,
    **options: Any,
) -> Callable[[Handler], Handler]:
    """Declare a subscriber of `topic` in consumer group `<group_id>.<topic>`, reading from the
    start of the topic when the group is new (nothing published before a service's first start
    is lost); `action` names it in AsyncAPI (`<topic>:<action>`), with the `<topic>.dlq` its
    failures go to.

    One group per subscribed topic: FastStream gives each subscriber its own consumer, and
    consumers of different topics in one group rebalance each other on every start (seconds
    before the first message is consumed).

    `options` go to FastStream's subscriber as they are (e.g. `max_workers=6`: one consumer per
    partition, each committing its own offsets after its handler)."""
    name = topic if isinstance(topic, str) else topic.name
    dead_letter_publisher(broker, name)
    if not isinstance(topic, str) and "decoder" not in options:
        # Read as the contracts read (unknown fields ignored: a newer producer in a rolling
        # deploy), not by FastStream's validation of the handler's argument, which refuses them.
        model = topic.message  # looked up once, not per message

        async def decode(msg: Any) -> Any:  # async: run in the handler's context, which it binds
            return bind_message(model.model_validate_json(msg.body))

        options["decoder"] = decode
    # Typed as keeping the handler (FastStream returns its subscriber object) so that handlers
    # stay typed for mypy.
    subscriber: Callable[[Handler], Handler] = broker.subscriber(
        name,
        group_id=f"{group_id}.{name}",
        auto_offset_reset="earliest",
        title=f"{name}:{action}",
        description=description,
        **options,
    )
    lane = LANES.get(name)
    if lane is None:
        return subscriber
    # The topic's urgent lane: the same handler, through a consumer (and group) of its own, so
    # an urgent message is handled while the topic's backlog waits.
    dead_letter_publisher(broker, lane.name)
    urgent: Callable[[Handler], Handler] = broker.subscriber(
        lane.name,
        group_id=f"{group_id}.{lane.name}",
        auto_offset_reset="earliest",
        title=f"{lane.name}:{action}",
        description=f"{description} (urgent lane)",
        **options,
    )

    def both(handler: Handler) -> Handler:
        return subscriber(urgent(handler))

    return both


def batch_subscriber(
    broker: KafkaBroker,
    topic: Topic,
    *,
    group_id: str,
    action: str,
    description: str,
    max_records: int = 500,
    batch_timeout_ms: int = 200,
    fill: bool = False,
    **options: Any,
) -> Callable[[Handler], Handler]:
    """Like `topic_subscriber`, but the handler gets what one poll returned, up to `max_records`
    messages of the topic as a list (in partition order; one consumer for all partitions), and
    the poll is committed once the handler returns. Each message is checked against the topic's
    contract on its own: one that is off contract goes to dead letters and the others are
    handed over. The handler returns the `BatchFailures` of the messages it could not handle.
    For handlers that gain from seeing many messages at once (grouped writes).

    The handler may also return a task of its `BatchFailures`, once it has done what must come
    before the next poll's handling (the tracker: taken its place in the queue of each case).
    It is then handed the next poll while the task carries on: up to `BATCHES_IN_FLIGHT` polls
    at once, so one poll's writes overlap the next poll's computing. Polls are committed in
    order, each once it and all before it are finished (`Pipeline`).

    A handler that needs the records of its messages (their origin) reads them with
    `batch_records(msg)`; a poll waits up to `batch_timeout_ms` for its first message. Other
    `options` go to FastStream's subscriber (e.g. `listener=`, told of rebalances). With `fill`,
    a poll waits to fill (POLL_WAIT_MS, POLL_FILL_BYTES). Traced:
    the poll's span links to each message; `tracing.origin(message)` is a message's context."""
    if fill:
        options |= {"fetch_max_wait_ms": POLL_WAIT_MS, "fetch_min_bytes": POLL_FILL_BYTES}
    return topic_subscriber(
        broker,
        topic,
        group_id=group_id,
        action=action,
        description=description,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        decoder=_batch_decoder(topic.message),
        # Committed by the poll's `Pipeline` (explicit offsets, in poll order), not FastStream.
        ack_policy=AckPolicy.MANUAL,
        **options,
    )


def _batch_decoder(model: Any) -> Callable[[Any, Callable[[Any], Awaitable[Any]]], Any]:
    """A poll's messages read by `model`, each on its own: those off contract kept apart
    (`DecodedBatch.refused`, for dead letters)."""

    async def decode(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        batch = DecodedBatch()
        messages = []
        for record in msg.raw_message:
            try:
                messages.append(model.model_validate_json(record.value or b""))
            except ValueError as exc:  # pydantic's ValidationError is one
                batch.refused.append((record, exc))
            else:
                batch.records.append(record)
        setattr(msg, DECODED, batch)
        tracing.remember_batch(messages, batch.records)  # the poll's span linked to each message
        return messages

    return decode
