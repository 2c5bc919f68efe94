"""The simulated platform's state and rules: what it received, what citizens wrote to the
accounts, and the limits tests switch on (`server.py` serves it over HTTP)."""

from __future__ import annotations

import itertools
import re
from collections import deque
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "COMMENT_LIMIT",
    "MESSAGE_LIMIT",
    "STATUS_LIMIT",
    "CitizenPost",
    "Faults",
    "Platform",
    "Rules",
    "SimAccount",
    "weibo_time",
]

COMMENT_LIMIT = 140
MESSAGE_LIMIT = 300
STATUS_LIMIT = 140
REPLY_WINDOW = timedelta(hours=48)
# A #话题#, which a shared status may not carry.
TOPIC = re.compile(r"#[^#\s]{1,64}#")
# A link; a shared status needs one on the app's safe domain.
LINK = re.compile(r"https?://[^\s\u3000-\u303f\uff01-\uff5e]+", re.IGNORECASE)


BEIJING = timezone(timedelta(hours=8))


def weibo_time(at: datetime) -> str:
    """`at` as Weibo writes times: "Tue Dec 01 10:00:00 +0800 2026" (Beijing time)."""
    return at.astimezone(BEIJING).strftime("%a %b %d %H:%M:%S %z %Y")


class Faults(BaseModel):
    fail_next: int = Field(default=0, ge=0)
    status: int = Field(default=503, ge=400, le=599)
    after_accept: bool = Field(default=False, description="Record the post, then fail.")
    delay_next: int = Field(default=0, ge=0)
    delay_seconds: float = Field(default=0.0, ge=0, le=600)


class Rules(BaseModel):
    """The platform's limits that tests and the demo switch on (all off by default)."""

    posts_per_hour: int = Field(default=0, ge=0, description="Per access token; 0: no limit.")
    window_seconds: float = Field(default=3600, gt=0, description="The rate limit's window.")
    message_windows: bool = Field(
        default=False, description="Enforce the 48-hour and one-reply private-message windows."
    )
    safe_domain: str = Field(default="fengqiao.example", min_length=1)


class CitizenPost(BaseModel):
    """A status or comment a citizen writes to a matrix account, injected by a test or the demo."""

    kind: Literal["status", "comment", "message"] = "status"
    text: str = Field(min_length=1, max_length=2000)
    to: str | None = Field(default=None, description="The account's handle; none: every account.")
    mention: bool = Field(default=True, description="A comment that @-mentions the account.")
    to_me: bool = Field(default=False, description="A comment on the account's own post.")
    status_id: str | None = Field(default=None, description="The post a comment is on.")
    user_id: str = Field(default="1000000001", pattern=r"^\d{1,20}$")
    screen_name: str = "网友"
    location: str = ""
    created_at: datetime | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class SimAccount(BaseModel):
    access_token: str = Field(min_length=1)
    handle: str = Field(min_length=1)


class Platform:
    """What the simulated platform has received, and what citizens wrote to the accounts."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.posts: list[tuple[CitizenPost, dict[str, Any]]] = []
        self.accounts: dict[str, str] = {}
        self.faults = Faults()
        self.rules = Rules()
        self.by_token: dict[str, list[dict[str, Any]]] = {}
        self.written_at: dict[int, datetime] = {}
        self.recent: dict[str, deque[datetime]] = {}
        self.ids = itertools.count(5_000_000_000_000_000)

    def reset(self) -> None:
        self.received.clear()
        self.posts.clear()
        self.accounts.clear()
        self.by_token.clear()
        self.written_at.clear()
        self.recent.clear()
        self.faults = Faults()
        self.rules = Rules()

    def throttled(self, token: str, now: datetime) -> float | None:
        """Seconds until `token` may post again, or None when it may post now (and it counts)."""
        limit = self.rules.posts_per_hour
        if not limit:
            return None
        window = timedelta(seconds=self.rules.window_seconds)
        times = self.recent.setdefault(token, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            return (times[0] + window - now).total_seconds()
        times.append(now)
        return None

    def message_refusal(self, token: str, uid: str, now: datetime) -> str | None:
        """Why a private message to `uid` may not be sent now, or None."""
        if not self.rules.message_windows:
            return None
        handle = self.accounts.get(token)
        since = now - REPLY_WINDOW

        theirs = [
            (post, self.written_at[item["id"]])
            for post, item in self.posts
            if post.user_id == uid and (handle is None or post.to in (None, handle))
        ]
        if any(post.kind == "message" and when >= since for post, when in theirs):
            return None
        mentions = [w for p, w in theirs if p.kind != "message" and p.mention and w >= since]
        if not mentions:
            return "the user has not written to the account within 48 hours"
        replies = [
            r
            for r in self.by_token.get(token, ())
            if r["kind"] == "private_message"
            and r["target"]["uid"] == uid
            and datetime.fromisoformat(r["received_at"]) >= max(mentions)
        ]
        if replies:
            return "only one reply within 48 hours after an @-mention"
        return None

    def write(self, post: CitizenPost) -> dict[str, Any]:
        """Keep `post` as the open API shows it; return that."""
        # A comment's post is older than the comment.
        status_id = post.status_id or str(next(self.ids))
        post_id = next(self.ids)
        at = (post.created_at or datetime.now(UTC)).astimezone(BEIJING)
        user = {
            "id": int(post.user_id),
            "idstr": post.user_id,
            "screen_name": post.screen_name,
            "name": post.screen_name,
            "location": post.location,
        }
        item: dict[str, Any] = {
            "id": post_id,
            "idstr": str(post_id),
            "mid": str(post_id),
            "created_at": at.strftime("%a %b %d %H:%M:%S %z %Y"),
            "text": post.text,
            "source": "fengqiao simulator",
            "user": user,
        }
        if post.kind == "status":
            geo = None if post.lat is None or post.lon is None else [post.lat, post.lon]
            item["geo"] = {"type": "Point", "coordinates": geo} if geo else None
        else:
            item["status"] = {"id": int(status_id), "idstr": status_id, "text": ""}
        self.posts.append((post, item))
        self.written_at[post_id] = at  # exact: created_at is shown to the second
        return item

    def comments_on(self, post_id: str) -> list[dict[str, Any]]:
        """Every comment on the post `post_id` (citizens' and the accounts' replies, comments
        on its comments included), newest first, as Weibo's comments/show shows them."""
        found = [
            item
            for post, item in self.posts
            if post.kind == "comment" and post.status_id == post_id
        ]
        for record in self.received:
            if (
                record["kind"] in ("comment", "comment_reply")
                and record["target"].get("id") == post_id
            ):
                found.append(self._as_comment(record))
        return sorted(found, key=lambda i: i["id"], reverse=True)

    def _as_comment(self, record: dict[str, Any]) -> dict[str, Any]:
        """An account's comment as comments/show shows it."""
        at = datetime.fromisoformat(record["received_at"])
        handle = record.get("account") or ""
        target = record["target"]
        item: dict[str, Any] = {
            "id": int(record["id"]),
            "idstr": record["id"],
            "mid": record["id"],
            "created_at": weibo_time(at),
            "text": record["text"],
            "source": "fengqiao simulator",
            "user": {"screen_name": handle.lstrip("@"), "name": handle.lstrip("@")},
            "status": {"idstr": target["id"]},
        }
        if "cid" in target:
            item["reply_comment"] = {"idstr": target["cid"]}
        return item

    def visible(
        self, token: str, kind: str, wanted: str, since_id: int, max_id: int, count: int
    ) -> list[dict[str, Any]]:
        """What `token` reads on one list: newest first, since_id < id <= max_id."""
        handle = self.accounts.get(token)
        found = [
            item
            for post, item in self.posts
            if post.kind == kind
            and (wanted == "any" or getattr(post, wanted))
            and (handle is None or post.to in (None, handle))
            and since_id < item["id"] <= max_id
        ]
        return sorted(found, key=lambda i: i["id"], reverse=True)[:count]
