"""Readers: each turns one channel's raw payload into an `IncomingPost`.

Add a channel by writing a reader and registering it in `READERS` under the channel name that
`RawPostReceived.channel` carries ("webhook" for the generic JSON webhook, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from contracts import Author, GeoPoint, RawPostReceived, ReplyTarget
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


Reader = Callable[[RawPostReceived], IncomingPost]

READERS: dict[str, Reader] = {
    "webhook": _read_generic,
}


def read_post(raw: RawPostReceived) -> IncomingPost:
    """Read the platform-specific payload of `raw`."""
    reader = READERS.get(raw.channel)
    if reader is None:
        raise UnreadablePost(f"no reader for channel {raw.channel!r} of platform {raw.platform!r}")
    return reader(raw)
