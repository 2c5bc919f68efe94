"""The platform simulator's HTTP server.

Weibo-shaped endpoints (form-encoded, `access_token` in the form, JSON answers, errors as
`{"error", "error_code", "request"}`):

- `POST /2/comments/create.json`  id, comment (≤ 140 characters)
- `POST /2/comments/reply.json`   id, cid, comment (≤ 140 characters)
- `POST /2/messages/reply.json`   uid, text (≤ 300 characters)

What citizens wrote to the accounts, for the intake pollers (query `access_token`, `since_id`,
`max_id`, `count`; newest first, as Weibo answers):

- `GET /2/statuses/mentions.json`  → `{"statuses": [...], "total_number"}`
- `GET /2/comments/mentions.json`  → `{"comments": [...], "total_number"}`
- `GET /2/comments/to_me.json`     → `{"comments": [...], "total_number"}`

Inspection and fault injection for tests and the demo:

- `GET /_sim/received`   everything accepted, in order
- `POST /_sim/reset`     forget it
- `POST /_sim/faults`    `{"fail_next": N, "status": 503}`: answer the next N posts with that status
- `POST /_sim/posts`     a citizen's status or comment (`CitizenPost`) → `{"id", "idstr"}`
- `POST /_sim/accounts`  `{"access_token", "handle"}`: that token reads only what reached `handle`
  (an unregistered token reads everything)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

COMMENT_LIMIT = 140
MESSAGE_LIMIT = 300


class Faults(BaseModel):
    fail_next: int = Field(default=0, ge=0)
    status: int = Field(default=503, ge=400, le=599)


class CitizenPost(BaseModel):
    """A status or comment a citizen writes to a matrix account, injected by a test or the demo."""

    kind: Literal["status", "comment"] = "status"
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
        self._ids = itertools.count(5_000_000_000_000_000)

    def reset(self) -> None:
        self.received.clear()
        self.posts.clear()
        self.accounts.clear()
        self.faults = Faults()

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


def _error(request: str, code: int, message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": message, "error_code": code, "request": request}, status_code=status
    )


def create_app(platform: Platform | None = None) -> FastAPI:
    platform = platform or Platform()
    app = FastAPI(title="fengqiao platform simulator (Weibo-shaped)")
    app.state.platform = platform

    async def accept(
        request: Request, kind: str, text_field: str, limit: int, required: tuple[str, ...]
    ) -> JSONResponse:
        path = request.url.path
        form = dict(await request.form())
        if platform.faults.fail_next > 0:
            platform.faults.fail_next -= 1
            return _error(path, 10001, "system error (injected)", platform.faults.status)
        if not form.get("access_token"):
            return _error(path, 21301, "auth faild!", 403)
        missing = [f for f in (*required, text_field) if not form.get(f)]
        if missing:
            return _error(path, 10016, f"miss required parameter ({missing[0]})")
        text = str(form[text_field])
        if len(text) > limit:
            return _error(
                path, 20012, f"text too long, please input text less than {limit} characters"
            )
        message_id = next(platform._ids)
        record = {
            "kind": kind,
            "id": str(message_id),
            "text": text,
            "target": {f: str(form[f]) for f in required},
            "received_at": datetime.now(UTC).isoformat(),
        }
        platform.received.append(record)
        return JSONResponse(
            {
                "id": message_id,
                "idstr": str(message_id),
                "text": text,
                "created_at": record["received_at"],
            }
        )

    @app.post("/2/comments/create.json")
    async def comments_create(request: Request) -> JSONResponse:
        return await accept(request, "comment", "comment", COMMENT_LIMIT, ("id",))

    @app.post("/2/comments/reply.json")
    async def comments_reply(request: Request) -> JSONResponse:
        return await accept(request, "comment_reply", "comment", COMMENT_LIMIT, ("id", "cid"))

    @app.post("/2/messages/reply.json")
    async def messages_reply(request: Request) -> JSONResponse:
        return await accept(request, "private_message", "text", MESSAGE_LIMIT, ("uid",))

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

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "simulator"}

    return app


def run(host: str = "127.0.0.1", port: int = 8090) -> int:
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
    return 0
