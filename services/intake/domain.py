"""From a raw platform payload to an appeal: read the post, normalize it, give it a case id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts import (
    AppealNormalized,
    Author,
    GeoPoint,
    RawPostReceived,
    ReplyTarget,
    derived_event_id,
)
from fengqiao.pii import mask_pii
from services.intake import text as textlib
from services.intake.schemas import GenericPost


class UnreadablePost(ValueError):
    """A raw payload intake cannot read; it goes to the dead-letter topic."""


@dataclass(frozen=True)
class IncomingPost:
    """What every platform's payload comes down to."""

    platform: str
    channel: str
    account: str
    author: Author
    text: str
    posted_at: datetime
    geo: GeoPoint | None
    reply_to: ReplyTarget


def read_post(raw: RawPostReceived) -> IncomingPost:
    """Read the platform-specific payload of `raw`."""
    if raw.channel == "webhook":
        return _read_generic(raw)
    raise UnreadablePost(f"no reader for channel {raw.channel!r} of platform {raw.platform!r}")


def _read_generic(raw: RawPostReceived) -> IncomingPost:
    try:
        post = GenericPost.model_validate(raw.payload)
    except ValueError as exc:
        raise UnreadablePost(f"generic payload does not match its schema: {exc}") from exc
    author = Author(
        id=post.author.id, name=post.author.name, stated_residence=post.author.residence
    )
    return IncomingPost(
        platform=post.platform,
        channel=raw.channel,
        account=post.account,
        author=author,
        text=post.text,
        posted_at=post.created_at or raw.occurred_at,
        geo=GeoPoint(lat=post.geo.lat, lon=post.geo.lon) if post.geo else None,
        reply_to=ReplyTarget(
            platform=post.platform, account=post.account, user_id=post.author.id, post_id=post.id
        ),
    )


def case_id_for(raw: RawPostReceived) -> str:
    """A case id determined by the post, so a re-sent post maps to the same case."""
    return "c-" + derived_event_id("case", raw.platform, raw.source_id)[:20]


def normalize(raw: RawPostReceived, *, producer: str) -> AppealNormalized:
    """The appeal `raw` carries, normalized and masked."""
    post = read_post(raw)
    folded = textlib.fold(post.text)
    masked, pii = mask_pii(folded)
    found = textlib.entities(folded)
    return AppealNormalized(
        # Determined by the post, not by this delivery of it: a platform's re-send is the same
        # appeal, which the router and the tracker then ignore as a repeat.
        event_id=derived_event_id("appeal", raw.platform, raw.source_id),
        occurred_at=raw.occurred_at,
        producer=producer,
        case_id=case_id_for(raw),
        post_event_id=raw.event_id,
        platform=post.platform,
        channel=post.channel,
        account=post.account,
        author=post.author,
        posted_at=post.posted_at,
        original_text=post.text,
        text=folded,
        masked_text=masked,
        mentions=found.mentions,
        hashtags=found.hashtags,
        urls=found.urls,
        pii_kinds=pii,
        lang=textlib.language(folded),
        is_appeal=textlib.looks_like_appeal(textlib.own_words(folded)),
        geo=post.geo,
        reply_to=post.reply_to,
    )
