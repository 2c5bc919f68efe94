"""Readers: each turns one channel's raw payload into an `IncomingPost`.

Add a channel by writing a reader and registering it in `READERS` under the channel name that
`RawPostReceived.channel` carries ("webhook" for the generic JSON webhook, "push" for Weibo's
message push, "poll" for the Weibo pollers, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fengqiao.contracts import Author, GeoPoint, RawPostReceived, ReplyTarget
from fengqiao.services.intake.schemas import GenericPost


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


def generic_author_id(source_id: str, author_id: str) -> str:
    """A generic source's author as `<source>:<id>` (`source_id` is `<source>:<post id>`): no
    source can pose as a Weibo user, or as another source's author, whatever platform it names.
    An id too long for the contract keeps a digest of itself."""
    namespaced = f"{source_id.partition(':')[0]}:{author_id}"
    if len(namespaced) <= _AUTHOR_ID_MAX:
        return namespaced
    digest = hashlib.sha256(author_id.encode()).hexdigest()[:40]
    return f"{source_id.partition(':')[0]}:#{digest}"


_AUTHOR_ID_MAX = 128


def _read_generic(raw: RawPostReceived) -> IncomingPost:
    try:
        post = GenericPost.model_validate(raw.payload)
    except ValueError as exc:
        raise UnreadablePost(f"generic payload does not match its schema: {exc}") from exc
    author = Author(
        id=generic_author_id(raw.source_id, post.author.id),
        name=post.author.name,
        stated_residence=post.author.residence,
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
            platform=post.platform, account=post.account, user_id=author.id, post_id=post.id
        ),
    )


# --------------------------------------------------------------------------- Weibo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Push message types that are a citizen writing to the account privately: replies go back as a
# private message. "mention" is the only other type that carries a post.
PRIVATE_MESSAGE_TYPES = frozenset({"text", "position", "image", "voice"})


def parse_weibo_time(value: str) -> datetime:
    """Weibo's `created_at` ("Mon Nov 27 21:00:00 +0800 2026") as an aware datetime.

    The month is mapped by hand: `%b` would follow the process locale.
    """
    parts = value.split()
    if len(parts) != 6 or parts[1] not in _MONTHS:
        raise ValueError(f"not a Weibo time: {value!r}")
    month = _MONTHS.index(parts[1]) + 1
    return datetime.strptime(f"{month} {' '.join(parts[2:])}", "%m %d %H:%M:%S %z %Y")


def push_data(payload: dict[str, Any]) -> dict[str, Any]:
    """A push's `data`: an object, though the platform documents it as a JSON string too."""
    data = payload.get("data") or {}
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        raise ValueError("data must be an object")
    return data


def _read_weibo_push(raw: RawPostReceived) -> IncomingPost:
    payload = raw.payload
    try:
        kind, sender = str(payload["type"]), str(payload["sender_id"])
        posted_at = parse_weibo_time(str(payload["created_at"]))
        data = push_data(payload)
        reply_to = ReplyTarget(platform=raw.platform, account=raw.account, user_id=sender)
        if kind == "mention":
            key = "post_id" if data.get("subtype") == "status" else "comment_id"
            reply_to = reply_to.model_copy(update={key: str(data["key"])})
        elif kind not in PRIVATE_MESSAGE_TYPES:
            raise ValueError(f"push type {kind!r} carries no post")
        geo = None
        if kind == "position":
            geo = GeoPoint(lat=float(data["latitude"]), lon=float(data["longitude"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadablePost(f"Weibo push payload: {exc}") from exc
    return IncomingPost(
        platform=raw.platform,
        channel=raw.channel,
        account=raw.account,
        author=Author(id=sender),
        text=str(payload.get("text") or ""),
        posted_at=posted_at,
        geo=geo,
        reply_to=reply_to,
    )


def _read_weibo_poll(raw: RawPostReceived) -> IncomingPost:
    """A status or a comment from the open API; the pollers' source id says which."""
    item = raw.payload
    kind = raw.source_id.split(":", 1)[0]
    try:
        user = item["user"]
        author = Author(
            id=_weibo_id(user),
            name=_optional_text(user.get("screen_name")),
            stated_residence=_optional_text(user.get("location")),
        )
        item_id = _weibo_id(item)
        if kind == "comment":
            status = item.get("status") or {}
            post_id = _weibo_id(status) if status.get("id") or status.get("idstr") else None
            ids = {"post_id": post_id, "comment_id": item_id}
        elif kind == "status":
            ids = {"post_id": item_id}
        else:
            raise ValueError(f"source id {raw.source_id!r} names neither a status nor a comment")
        posted_at = parse_weibo_time(str(item["created_at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadablePost(f"Weibo {kind} payload: {exc}") from exc
    return IncomingPost(
        platform=raw.platform,
        channel=raw.channel,
        account=raw.account,
        author=author,
        text=str(item.get("text") or ""),
        posted_at=posted_at,
        geo=_status_geo(item.get("geo")),
        reply_to=ReplyTarget(platform=raw.platform, account=raw.account, user_id=author.id, **ids),
    )


def _weibo_id(obj: dict[str, Any]) -> str:
    # idstr where given: ids pass 2**53 and lose digits in anything that reads JSON as doubles.
    return str(obj.get("idstr") or obj["id"])


def _optional_text(value: Any) -> str | None:
    return str(value)[:128] if value else None


def _status_geo(geo: Any) -> GeoPoint | None:
    # Weibo's geo is {"type": "Point", "coordinates": [lat, lon]}: latitude first, unlike GeoJSON.
    try:
        lat, lon = geo["coordinates"]
        return GeoPoint(lat=float(lat), lon=float(lon))
    except (KeyError, TypeError, ValueError):
        return None


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
    "push": _read_weibo_push,
    "poll": _read_weibo_poll,
}


def read_post(raw: RawPostReceived) -> IncomingPost:
    """Read the platform-specific payload of `raw`."""
    reader = READERS.get(raw.channel)
    if reader is None:
        raise UnreadablePost(f"no reader for channel {raw.channel!r} of platform {raw.platform!r}")
    return reader(raw)
