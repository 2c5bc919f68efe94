"""The platform simulator's HTTP server.

Weibo-shaped endpoints (form-encoded, `access_token` in the form, JSON answers, errors as
`{"error", "error_code", "request"}`):

- `POST /2/comments/create.json`  id, comment (≤ 140 characters)
- `POST /2/comments/reply.json`   id, cid, comment (≤ 140 characters)
- `POST /2/messages/reply.json`   uid, text (≤ 300 characters; with `/_sim/rules`
  message_windows: only within 48 h after the citizen's own message, or once within 48 h after
  the citizen @-mentioned the account)
- `POST /2/statuses/share.json`   status (≤ 140 characters, a link on the safe domain, no #话题#)

What an account posted, newest first (query `access_token`, `count` ≤ 200, `max_id`):

- `GET /2/comments/by_me.json`          → `{"comments": [...], "total_number"}`
- `GET /2/statuses/user_timeline.json`  → `{"statuses": [...], "total_number", "next_cursor"}`

A post's comments, everyone's (the account's replies and citizens' comments), newest first, as
Weibo pages them (query `access_token`, `id` the post, `count` ≤ 200, `since_id`, `max_id`,
`page`), for reconciliation:

- `GET /2/comments/show.json`  → `{"comments": [...], "total_number", "previous_cursor",
  "next_cursor"}`

What citizens wrote to the accounts, for the intake pollers (query `access_token`, `since_id`,
`max_id`, `count`; newest first, as Weibo answers):

- `GET /2/statuses/mentions.json`  → `{"statuses": [...], "total_number"}`
- `GET /2/comments/mentions.json`  → `{"comments": [...], "total_number"}`
- `GET /2/comments/to_me.json`     → `{"comments": [...], "total_number"}`

Inspection and fault injection for tests and the demo:

- `GET /_sim/received`   everything accepted, in order (`?since=N`: from the N-th on)
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
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fengqiao.runtime import tracing
from fengqiao.simulator.platform import (
    COMMENT_LIMIT,
    LINK,
    MESSAGE_LIMIT,
    STATUS_LIMIT,
    TOPIC,
    CitizenPost,
    Faults,
    Platform,
    Rules,
    SimAccount,
    weibo_time,
)

__all__ = ["create_app", "run"]

# The lists the pollers read: path → (answer key, kind of post, which flag selects it).
_LISTS = {
    "/2/statuses/mentions.json": ("statuses", "status", "any"),
    "/2/comments/mentions.json": ("comments", "comment", "mention"),
    "/2/comments/to_me.json": ("comments", "comment", "to_me"),
}


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
    _add_posting(app, _Posting(platform))
    _add_reading(app, platform)
    _add_comments(app, platform)
    _add_control(app, platform)
    return tracing.instrument_app(app)  # the platform's side of the notifier's calls


class _Posting:
    """What the platform does with an account's post: faults, limits and rules, then keep it."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def accept(
        self,
        request: Request,
        kind: str,
        text_field: str,
        limit: int,
        required: tuple[str, ...],
        check: Check | None = None,
    ) -> JSONResponse:
        path = request.url.path
        form = await _form(request)
        faults = self.platform.faults
        if faults.fail_next > 0 and not faults.after_accept:
            faults.fail_next -= 1
            return _error(path, 10001, "system error (injected)", faults.status)
        now = datetime.now(UTC)
        refused = self._refused(path, form, text_field, limit, required, check, now)
        if refused is not None:
            return refused
        record = self._keep(kind, form, form[text_field], required, now)
        if faults.fail_next > 0:  # after_accept: the post is stored, the answer is an error
            faults.fail_next -= 1
            return _error(path, 10001, "system error (injected)", faults.status)
        if faults.delay_next > 0:
            faults.delay_next -= 1
            await asyncio.sleep(faults.delay_seconds)
        return JSONResponse(
            {
                "id": int(record["id"]),
                "idstr": record["id"],
                "text": record["text"],
                "created_at": record["received_at"],
            }
        )

    def _refused(
        self,
        path: str,
        form: dict[str, str],
        text_field: str,
        limit: int,
        required: tuple[str, ...],
        check: Check | None,
        now: datetime,
    ) -> JSONResponse | None:
        """The platform's error answer for a post it does not take, or None."""
        token = form.get("access_token", "")
        if not token:
            return _error(path, 21301, "auth faild!", 403)
        missing = [f for f in (*required, text_field) if not form.get(f)]
        if missing:
            return _error(path, 10016, f"miss required parameter ({missing[0]})")
        if len(form[text_field]) > limit:
            return _error(
                path, 20012, f"text too long, please input text less than {limit} characters"
            )
        refusal = check(form, token, now) if check else None
        if refusal is not None:
            return _error(path, *refusal)
        wait = self.platform.throttled(token, now)
        if wait is not None:
            return _error(
                path,
                10023,
                "User requests out of rate limit!",
                429,
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return None

    def _keep(
        self, kind: str, form: dict[str, str], text: str, required: tuple[str, ...], now: datetime
    ) -> dict[str, Any]:
        """Record a post the platform took, as `/_sim/received` shows it."""
        platform, token = self.platform, form["access_token"]
        record = {
            "kind": kind,
            "id": str(next(platform.ids)),
            "text": text,
            "target": {f: form[f] for f in required},
            "account": platform.accounts.get(token),
            "received_at": now.isoformat(),
        }
        platform.received.append(record)
        platform.by_token.setdefault(token, []).append(record)
        return record

    def message_window(
        self, form: dict[str, str], token: str, now: datetime
    ) -> tuple[int, str] | None:
        refusal = self.platform.message_refusal(token, form["uid"], now)
        return None if refusal is None else (20110, f"reply not allowed: {refusal}")

    def share_rules(
        self, form: dict[str, str], token: str, now: datetime
    ) -> tuple[int, str] | None:
        text = form["status"]
        if TOPIC.search(text):
            return (20020, "a shared status may not contain #topics#")
        domain = self.platform.rules.safe_domain.lower()
        hosts = [(urlsplit(link).hostname or "").lower() for link in LINK.findall(text)]
        if not any(h == domain or h.endswith("." + domain) for h in hosts):
            return (20021, f"the status needs a link on the app's safe domain {domain}")
        return None


def _add_posting(app: FastAPI, posting: _Posting) -> None:
    """What the notifier posts: comments, replies, private messages, shared statuses."""

    @app.post("/2/comments/create.json")
    async def comments_create(request: Request) -> JSONResponse:
        return await posting.accept(request, "comment", "comment", COMMENT_LIMIT, ("id",))

    @app.post("/2/comments/reply.json")
    async def comments_reply(request: Request) -> JSONResponse:
        return await posting.accept(
            request, "comment_reply", "comment", COMMENT_LIMIT, ("id", "cid")
        )

    @app.post("/2/messages/reply.json")
    async def messages_reply(request: Request) -> JSONResponse:
        return await posting.accept(
            request, "private_message", "text", MESSAGE_LIMIT, ("uid",), posting.message_window
        )

    @app.post("/2/statuses/share.json")
    async def statuses_share(request: Request) -> JSONResponse:
        return await posting.accept(
            request, "status", "status", STATUS_LIMIT, (), posting.share_rules
        )


def _add_reading(app: FastAPI, platform: Platform) -> None:
    """What an account posted (reconciliation) and what citizens wrote to it (the pollers)."""

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
        try:
            max_id = int(request.query_params.get("max_id") or 0) or 2**63 - 1
        except ValueError:
            return _error(path, 10017, "parameter value is not valid")
        kinds = ("comment", "comment_reply") if comments else ("status",)
        mine = [r for r in platform.by_token.get(token, ()) if r["kind"] in kinds]
        older = [r for r in reversed(mine) if int(r["id"]) <= max_id]
        items = [_as_posted(r) for r in older[:count]]
        key = "comments" if comments else "statuses"
        following = int(older[count]["id"]) if len(older) > count else 0
        return JSONResponse({key: items, "total_number": len(mine), "next_cursor": following})

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


def _add_comments(app: FastAPI, platform: Platform) -> None:
    """A post's comments, everyone's, as Weibo pages them (reconciliation reads them)."""

    @app.get("/2/comments/show.json")
    async def comments_show(request: Request) -> JSONResponse:
        path, query = request.url.path, request.query_params
        if not query.get("access_token"):
            return _error(path, 21301, "auth faild!", 403)
        post_id = query.get("id")
        if not post_id:
            return _error(path, 10016, "miss required parameter (id)")
        try:
            since_id = int(query.get("since_id") or 0)
            max_id = int(query.get("max_id") or 0) or 2**63 - 1
            count = min(max(int(query.get("count") or 50), 1), 200)
            page = max(int(query.get("page") or 1), 1)
        except ValueError:
            return _error(path, 10017, "parameter value is not valid")
        every = platform.comments_on(post_id)
        chosen = [c for c in every if since_id < c["id"] <= max_id]
        items = chosen[(page - 1) * count : page * count]
        following = chosen[page * count]["id"] if len(chosen) > page * count else 0
        return JSONResponse(
            {
                "comments": items,
                "total_number": len(every),
                "previous_cursor": 0,
                "next_cursor": following,
            }
        )


def _add_control(app: FastAPI, platform: Platform) -> None:
    """Inspection and fault injection for tests and the demo (`/_sim/...`), and health."""

    @app.post("/_sim/posts")
    async def citizen_post(body: CitizenPost) -> dict[str, Any]:
        item = platform.write(body)
        return {"id": item["id"], "idstr": item["idstr"]}

    @app.post("/_sim/accounts")
    async def sim_account(body: SimAccount) -> SimAccount:
        platform.accounts[body.access_token] = body.handle
        return body

    @app.get("/_sim/received")
    async def received(since: int = 0) -> list[dict[str, Any]]:
        return platform.received[max(since, 0) :]

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


def _as_posted(record: dict[str, Any]) -> dict[str, Any]:
    """A record of what an account posted, as Weibo's lists show it."""
    item: dict[str, Any] = {
        "id": int(record["id"]),
        "idstr": record["id"],
        "text": record["text"],
        "created_at": weibo_time(datetime.fromisoformat(record["received_at"])),
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
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", log_config=None)
    return 0
