"""The platform simulator's HTTP server.

Weibo-shaped endpoints (form-encoded, `access_token` in the form, JSON answers, errors as
`{"error", "error_code", "request"}`):

- `POST /2/comments/create.json`  id, comment (≤ 140 characters)
- `POST /2/comments/reply.json`   id, cid, comment (≤ 140 characters)
- `POST /2/messages/reply.json`   uid, text (≤ 300 characters)

Inspection and fault injection for tests and the demo:

- `GET /_sim/received`   everything accepted, in order
- `POST /_sim/reset`     forget it
- `POST /_sim/faults`    `{"fail_next": N, "status": 503}`: answer the next N posts with that status
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

COMMENT_LIMIT = 140
MESSAGE_LIMIT = 300


class Faults(BaseModel):
    fail_next: int = Field(default=0, ge=0)
    status: int = Field(default=503, ge=400, le=599)


class Platform:
    """What the simulated platform has received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.faults = Faults()
        self._ids = itertools.count(5_000_000_000_000_000)

    def reset(self) -> None:
        self.received.clear()
        self.faults = Faults()


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
