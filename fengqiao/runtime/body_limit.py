"""A limit on the size of every request body, enforced before a route authenticates or parses
anything: an unauthenticated 2 GB POST is refused after its headers (by Content-Length) or after
its first bytes past the limit (a chunked body has no Content-Length), never read whole.

64 KiB by default; a route that needs more (a webhook carrying a platform's post) is given more
by its path prefix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 64 * 1024


def too_large(limit: int) -> dict[str, str]:
    return {"error": "too_large", "detail": f"body larger than {limit} bytes"}


class BodyTooLarge(HTTPException):
    """Raised by the body's reader, inside the route, once the body outgrew its limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit)["detail"])
        self.limit = limit


async def body_too_large(_: Request, exc: Exception) -> JSONResponse:
    """The app's answer to `BodyTooLarge`: the same as to a Content-Length past the limit."""
    limit = exc.limit if isinstance(exc, BodyTooLarge) else 0
    return JSONResponse(too_large(limit), status_code=413, headers={"Connection": "close"})


class BodyLimit:
    """ASGI middleware: 413 for a body larger than the limit of the request's path (the longest
    prefix in `limits`, else `default`). The app answers `BodyTooLarge` with `body_too_large`."""

    def __init__(
        self, app: ASGIApp, *, default: int = DEFAULT_LIMIT, limits: Mapping[str, int] = {}
    ) -> None:
        self.app, self.default = app, default
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def limit_of(self, path: str) -> int:
        return next((n for prefix, n in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        length = _content_length(scope)
        if length is not None and length > limit:
            await _refuse(send, limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route that reads the body; `body_too_large` answers.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(too_large(limit)).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
