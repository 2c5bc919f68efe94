"""Publishing through FastStream's declared publishers (what AsyncAPI documents and what an
in-memory test broker delivers), keyed by each message's contract."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable
from typing import Any, Protocol

from faststream.kafka import KafkaBroker

from fengqiao.contracts import LANES, Envelope, Outgoing, Topic
from fengqiao.runtime import tracing


async def publish(broker: KafkaBroker, topic: str, message: Envelope) -> None:
    """Publish `message` keyed by its contract's key and wait for the broker's acknowledgement."""
    await broker.publish(message, topic=topic, key=message.kafka_key().encode())


async def publish_to(publisher: Any, message: Envelope) -> None:
    """Publish through a declared publisher (so it appears in AsyncAPI), keyed by contract; in
    the trace of the message it was made from, if known (`tracing.within`)."""
    with tracing.within(message):
        await publisher.publish(message, key=message.kafka_key().encode())


async def publish_all(messages: Iterable[tuple[Any, Envelope]]) -> None:
    """Publish each (declared publisher, message) in order, keyed by contract, without waiting
    for each acknowledgement; return once all are acknowledged (acks=all), or raise the first
    failure once all have been answered. Messages of one key keep their order in their partition.
    Each goes out in the trace of the message it was made from, if known (`tracing.within`).
    """
    pending: list[Any] = []
    for publisher, message in messages:
        with tracing.within(message):
            key = message.kafka_key().encode()
            sent = await publisher.publish(message, key=key, no_confirm=True)
        if inspect.isawaitable(sent):  # the delivery future (a test broker answers at once)
            pending.append(sent)
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def topic_publisher(broker: KafkaBroker, topic: Topic) -> Any:
    """Declare the publisher of `topic` (documented in AsyncAPI with its message schema); for a
    topic with an urgent lane (`LANES`), of the lane too, and publish each message where
    `lane_for` puts it."""
    publisher = _declared(broker, topic)
    lane = LANES.get(topic.name)
    return publisher if lane is None else _Laned(publisher, _declared(broker, lane))


def _declared(broker: KafkaBroker, topic: Topic) -> Any:
    return broker.publisher(
        topic.name,
        title=f"{topic.name}:publish",
        description=topic.description,
        schema=topic.message,
    )


class _Laned:
    """A topic's publisher and its urgent lane's: `publish` sends an urgent message to the lane."""

    def __init__(self, publisher: Any, lane: Any) -> None:
        self.publisher, self.lane = publisher, lane

    async def publish(self, message: Envelope, **options: Any) -> Any:
        target = self.lane if message.is_urgent() else self.publisher
        return await target.publish(message, **options)


class Outbox(Protocol):
    """Where a service hands several messages at once (e.g. what one change of a case asks to
    publish)."""

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        """Publish each message on its topic, in order, keyed by contract; return once all are
        acknowledged, or raise the first failure once all have been answered."""


class DeclaredPublishers:
    """An `Outbox` through FastStream publishers by topic: those `declare` declares on a broker
    (what AsyncAPI documents and what an in-memory test broker delivers)."""

    def __init__(self, publishers: dict[str, Any]) -> None:
        self.publishers = publishers

    @classmethod
    def declare(cls, broker: KafkaBroker, topics: Iterable[Topic]) -> DeclaredPublishers:
        return cls({topic.name: topic_publisher(broker, topic) for topic in topics})

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        await publish_all((self.publishers[o.topic], o.message) for o in messages)
