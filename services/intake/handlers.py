"""Intake's subscriber: `posts.raw` → `appeals`."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import LogicPublisher

from contracts import APPEALS, POSTS_RAW, AppealNormalized, RawPostReceived
from fengqiao.messaging import publish_to
from services.intake import domain


def register(broker: KafkaBroker, *, producer: str, group_id: str) -> LogicPublisher:
    """Register the normalizer; return the `posts.raw` publisher the webhooks write through."""
    raw_posts = broker.publisher(
        POSTS_RAW.name,
        title=f"{POSTS_RAW.name}:publish",
        description=POSTS_RAW.description,
        schema=RawPostReceived,
    )
    appeals = broker.publisher(
        APPEALS.name,
        title=f"{APPEALS.name}:publish",
        description=APPEALS.description,
        schema=AppealNormalized,
    )

    @broker.subscriber(
        POSTS_RAW.name,
        group_id=group_id,
        auto_offset_reset="earliest",
        title=f"{POSTS_RAW.name}:normalize",
        description="Normalize a raw post into an appeal.",
    )
    async def normalize_post(raw: RawPostReceived) -> None:
        await publish_to(appeals, domain.normalize(raw, producer=producer))

    return raw_posts
