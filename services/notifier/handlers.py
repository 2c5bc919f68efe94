"""Notifier's subscriber: `replies.requested` → the platform → `replies.sent`."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts import REPLIES_REQUESTED, REPLIES_SENT, ReplyRequested
from fengqiao.messaging import publish_to, topic_publisher, topic_subscriber
from services.notifier.sender import Sender


def register(
    broker: KafkaBroker, sender: Sender, *, group_id: str, registry: CollectorRegistry
) -> None:
    results = Counter(
        "fengqiao_notifier_replies_total",
        "Replies by outcome",
        ["purpose", "status"],
        registry=registry,
    )
    sent = topic_publisher(broker, REPLIES_SENT)

    @topic_subscriber(
        broker,
        REPLIES_REQUESTED,
        group_id=group_id,
        action="send",
        description="Post a reply on the platform.",
    )
    async def send_reply(request: ReplyRequested) -> None:
        result = await sender.handle(request)
        results.labels(request.purpose.value, result.status).inc()
        await publish_to(sent, result)
