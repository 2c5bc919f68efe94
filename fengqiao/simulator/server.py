"""The platform simulator's HTTP server.

Weibo-shaped endpoints (form-encoded, `access_token` in the form, JSON answers, errors as
`{"error", "error_code", "request"}`):

- `POST /2/comments/create.json`  id, comment (≤ 140 characters)
- `POST /2/comments/reply.json`   id, cid, comment (≤ 140 characters)
- `POST /2/messages/reply.json`   uid, text (≤ 300 characters; with `/_sim/rules`
  message_windows: only within 48 h after the citizen's own message, or once within 48 h after
  the citizen @-mentioned the account)
- `POST /2/statuses/share.json`   status (≤ 140 characters, a link on the safe domain, no #话题#)

What an account posted, newest first (query `access_token`, `count`), for reconciliation:

- `GET /2/comments/by_me.json`          → `{"comments": [...], "total_number"}`
- `GET /2/statuses/user_timeline.json`  → `{"statuses": [...], "total_number"}`

What citizens wrote to the accounts, for the intake pollers (query `access_token`, `since_id`,
`max_id`, `count`; newest first, as Weibo answers):

- `GET /2/statuses/mentions.json`  → `{"statuses": [...], "total_number"}`
- `GET /2/comments/mentions.json`  → `{"comments": [...], "total_number"}`
- `GET /2/comments/to_me.json`     → `{"comments": [...], "total_number"}`

Inspection and fault injection for tests and the demo:

- `GET /_sim/received`   everything accepted, in order
- `POST /_sim/reset`     forget it
- `POST /_sim/faults`    `{"fail_next": N, "status": 503, "after_accept": false}`: answer the next
  N posts with that status (after_accept: take and record the post first, as a platform that
  fails after storing it); `{"delay_next": N, "delay_seconds": S}`: take and record the next N
  posts, then answer only after S seconds (a client's timeout)
- `POST /_sim/rules`     `{"posts_per_hour": N}` (0: no limit) per access token, answered 429
  with Retry-After beyond it; `{"message_windows": true}`; `{"safe_domain": "..."}`
- `POST /_sim/posts`     a citizen's status, comment or private message (`CitizenPost`)
  → `{"id", "idstr"}`
- `POST /_sim/accounts`  `{"access_token", "handle"}`: that token reads only what reached `handle`
  (an unregistered token reads everything)
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

COMMENT_LIMIT = 140
MESSAGE_LIMIT = 300
STATUS_LIMIT = 140
REPLY_WINDOW = timedelta(hours=48)
_TOPIC = re.compile(r"#[^#\s]{1,64}#")
_LINK = re.compile(r"https?://[^\s\u3000-\u303f\uff01-\uff5e]+", re.IGNORECASE)


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
        self._ids = itertools.count(5_000_000_000_000_000)

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
        status_id = post.status_id or str(next(self._ids))
        post_id = next(self._ids)
        at = (post.created_at or datetime.now(UTC)).astimezone(_BEIJING)
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


_BEIJING = timezone(timedelta(hours=8))
# The lists the pollers read: path → (answer key, kind of post, which flag selects it).
_LISTS = {
    "/2/statuses/mentions.json": ("statuses", "status", "any"),
    "/2/comments/mentions.json": ("comments", "comment", "mention"),
    "/2/comments/to_me.json": ("comments", "comment", "to_me"),
}


class SimAccount(BaseModel):
    access_token: str = Field(min_length=1)
    handle: str = Field(min_length=1)


def _error(
    request: str, code: int, message: str, status: int = 400, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": message, "error_code": code, "request": request},
        status_code=status,
        headers=headers,
    )


# A rule of one endpoint: (error_code, message) when the post is refused.
Check = Callable[[dict[str, str], str, datetime], "tuple[int, str] | None"]


async def _form(request: Request) -> dict[str, str]:
    """The request's form fields (the last of a repeated one). A URL-encoded body is split by
    `parse_qsl`: starlette's form parser took a fifth of the simulator's CPU per post."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (await request.body()).decode("utf-8", "replace")
        return dict(parse_qsl(body, keep_blank_values=True, errors="replace"))
    async with request.form() as form:  # closes the files of a multipart form
        return {k: str(v) for k, v in form.items()}


def create_app(platform: Platform | None = None) -> FastAPI:
    platform = platform or Platform()
    app = FastAPI(title="fengqiao platform simulator (Weibo-shaped)")
    app.state.platform = platform

    async def accept(
        request: Request,
        kind: str,
        text_field: str,
        limit: int,
        required: tuple[str, ...],
        check: Check | None = None,
    ) -> JSONResponse:
        path = request.url.path
        form = await _form(request)
        faults = platform.faults
        if faults.fail_next > 0 and not faults.after_accept:
            faults.fail_next -= 1
            return _error(path, 10001, "system error (injected)", faults.status)
        token = form.get("access_token", "")
        if not token:
            return _error(path, 21301, "auth faild!", 403)
        missing = [f for f in (*required, text_field) if not form.get(f)]
        if missing:
            return _error(path, 10016, f"miss required parameter ({missing[0]})")
        text = form[text_field]
        if len(text) > limit:
            return _error(
                path, 20012, f"text too long, please input text less than {limit} characters"
            )
        now = datetime.now(UTC)
        refusal = check(form, token, now) if check else None
        if refusal is not None:
            return _error(path, *refusal)
        wait = platform.throttled(token, now)
        if wait is not None:
            return _error(
                path,
                10023,
                "User requests out of rate limit!",
                429,
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        message_id = next(platform._ids)
        record = {
            "kind": kind,
            "id": str(message_id),
            "text": text,
            "target": {f: form[f] for f in required},
            "account": platform.accounts.get(token),
            "received_at": now.isoformat(),
        }
        platform.received.append(record)
        platform.by_token.setdefault(token, []).append(record)
        if faults.fail_next > 0:  # after_accept: the post is stored, the answer is an error
            faults.fail_next -= 1
            return _error(path, 10001, "system error (injected)", faults.status)
        if faults.delay_next > 0:
            faults.delay_next -= 1
            await asyncio.sleep(faults.delay_seconds)
        return JSONResponse(
            {
                "id": message_id,
                "idstr": str(message_id),
                "text": text,
                "created_at": record["received_at"],
            }
        )

    def message_window(form: dict[str, str], token: str, now: datetime) -> tuple[int, str] | None:
        refusal = platform.message_refusal(token, form["uid"], now)
        return None if refusal is None else (20110, f"reply not allowed: {refusal}")

    def share_rules(form: dict[str, str], token: str, now: datetime) -> tuple[int, str] | None:
        text = form["status"]
        if _TOPIC.search(text):
            return (20020, "a shared status may not contain #topics#")
        domain = platform.rules.safe_domain.lower()
        hosts = [(urlsplit(link).hostname or "").lower() for link in _LINK.findall(text)]
        if not any(h == domain or h.endswith("." + domain) for h in hosts):
            return (20021, f"the status needs a link on the app's safe domain {domain}")
        return None

    @app.post("/2/comments/create.json")
    async def comments_create(request: Request) -> JSONResponse:
        return await accept(request, "comment", "comment", COMMENT_LIMIT, ("id",))

    @app.post("/2/comments/reply.json")
    async def comments_reply(request: Request) -> JSONResponse:
        return await accept(request, "comment_reply", "comment", COMMENT_LIMIT, ("id", "cid"))

    @app.post("/2/messages/reply.json")
    async def messages_reply(request: Request) -> JSONResponse:
        return await accept(
            request, "private_message", "text", MESSAGE_LIMIT, ("uid",), message_window
        )

    @app.post("/2/statuses/share.json")
    async def statuses_share(request: Request) -> JSONResponse:
        return await accept(request, "status", "status", STATUS_LIMIT, (), share_rules)

    async def posted_by(request: Request) -> JSONResponse:
        path = request.url.path
        comments = path == "/2/comments/by_me.json"
        token = request.query_params.get("access_token")
        if not token:
            return _error(path, 21301, "auth faild!", 403)
        try:
            count = min(max(int(request.query_params.get("count") or 50), 1), 200)
        except ValueError:
            return _error(path, 10017, "parameter value is not valid")
        kinds = ("comment", "comment_reply") if comments else ("status",)
        mine = [r for r in platform.by_token.get(token, ()) if r["kind"] in kinds]
        items = [_as_posted(r) for r in reversed(mine)][:count]
        key = "comments" if comments else "statuses"
        return JSONResponse({key: items, "total_number": len(mine)})

    for posted_path in ("/2/comments/by_me.json", "/2/statuses/user_timeline.json"):
        app.add_api_route(posted_path, posted_by, methods=["GET"])

    async def read_list(request: Request) -> JSONResponse:
        path = request.url.path
        key, kind, wanted = _LISTS[path]
        query = request.query_params
        token = query.get("access_token")
        if not token:
            return _error(path, 21301, "auth faild!", 403)
        try:
            since_id = int(query.get("since_id") or 0)
            max_id = int(query.get("max_id") or 0) or 2**63 - 1
            count = min(max(int(query.get("count") or 20), 1), 200)
        except ValueError:
            return _error(path, 10017, "parameter value is not valid")
        items = platform.visible(token, kind, wanted, since_id, max_id, count)
        total = len(platform.visible(token, kind, wanted, 0, 2**63 - 1, 2**31))
        return JSONResponse(
            {key: items, "previous_cursor": 0, "next_cursor": 0, "total_number": total}
        )

    for list_path in _LISTS:
        app.add_api_route(list_path, read_list, methods=["GET"])

    @app.post("/_sim/posts")
    async def citizen_post(body: CitizenPost) -> dict[str, Any]:
        item = platform.write(body)
        return {"id": item["id"], "idstr": item["idstr"]}

    @app.post("/_sim/accounts")
    async def sim_account(body: SimAccount) -> SimAccount:
        platform.accounts[body.access_token] = body.handle
        return body

    @app.get("/_sim/received")
    async def received() -> list[dict[str, Any]]:
        return platform.received

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        platform.reset()
        return {"status": "reset"}

    @app.post("/_sim/faults")
    async def faults(body: Faults) -> Faults:
        platform.faults = body
        return body

    @app.post("/_sim/rules")
    async def rules(body: Rules) -> Rules:
        platform.rules = body
        return body

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "simulator"}

    return app


def _as_posted(record: dict[str, Any]) -> dict[str, Any]:
    """A record of what an account posted, as Weibo's lists show it."""
    item: dict[str, Any] = {
        "id": int(record["id"]),
        "idstr": record["id"],
        "text": record["text"],
        "created_at": record["received_at"],
    }
    target = record["target"]
    if "id" in target:
        item["status"] = {
            "id": int(target["id"]) if target["id"].isdigit() else target["id"],
            "idstr": target["id"],
        }
    if "cid" in target:
        item["reply_comment"] = {"idstr": target["cid"]}
    return item


def run(host: str = "127.0.0.1", port: int = 8090) -> int:
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
    return 0
