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


def _read_open311(raw: RawPostReceived) -> IncomingPost:
    """An Open311 GeoReport v2 request (fields as posted, api_key removed, plus `client`)."""
    fields = raw.payload
    try:
        lat, lon = fields.get("lat"), fields.get("long")
        geo = GeoPoint(lat=float(lat), lon=float(lon)) if lat and lon else None
    except ValueError as exc:
        raise UnreadablePost(f"open311 request with a bad location: {exc}") from exc
    # Who asked, without private data: the client's own account or device id, else the request.
    who = fields.get("account_id") or fields.get("device_id") or raw.source_id
    author = Author(id=f"{fields.get('client', 'open311')}:{who}"[:128])
    place = fields.get("address_string")
    text = "\n".join(t for t in (fields.get("description"), place and f"地址：{place}") if t)
    return IncomingPost(
        platform=raw.platform,
        channel=raw.channel,
        account=raw.account,
        author=author,
        text=text or str(fields.get("service_code", "")),
        posted_at=raw.occurred_at,
        geo=geo,
        reply_to=ReplyTarget(
            platform=raw.platform, account=raw.account, user_id=author.id, post_id=raw.source_id
        ),
    )


Reader = Callable[[RawPostReceived], IncomingPost]

READERS: dict[str, Reader] = {
    "webhook": _read_generic,
    "open311": _read_open311,
}


def read_post(raw: RawPostReceived) -> IncomingPost:
    """Read the platform-specific payload of `raw`."""
    reader = READERS.get(raw.channel)
    if reader is None:
        raise UnreadablePost(f"no reader for channel {raw.channel!r} of platform {raw.platform!r}")
    return reader(raw)
