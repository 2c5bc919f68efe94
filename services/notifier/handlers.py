"""Notifier's subscriber: `replies.requested` → the platform → `replies.sent`."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts import REPLIES_REQUESTED, REPLIES_SENT, ReplyRequested, ReplySent
from fengqiao.messaging import publish_to
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
    sent = broker.publisher(
        REPLIES_SENT.name,
        title=f"{REPLIES_SENT.name}:publish",
        description=REPLIES_SENT.description,
        schema=ReplySent,
    )

    @broker.subscriber(
        REPLIES_REQUESTED.name,
        group_id=group_id,
        auto_offset_reset="earliest",
        title=f"{REPLIES_REQUESTED.name}:send",
        description="Post a reply on the platform.",
    )
    async def send_reply(request: ReplyRequested) -> None:
        result = await sender.handle(request)
        results.labels(request.purpose.value, result.status).inc()
        await publish_to(sent, result)
