"""Platform clients behind one port.

Errors::

    PlatformError
    ├── RetryableError   network errors, timeouts, 5xx, 429 (with retry_after)
    └── PermanentError   the platform refused the content or the request (4xx)
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from contracts import ReplyChannel, ReplyTarget


class PlatformError(Exception):
    """The platform did not take the reply."""


class RetryableError(PlatformError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PlatformError):
    pass


class PlatformClient(Protocol):
    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        """Post `text`; return the platform's message id."""

    async def aclose(self) -> None: ...


class WeiboClient:
    """Weibo's open API (`/2/comments/create.json`, `/2/comments/reply.json`, messages/reply)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        if channel is ReplyChannel.PRIVATE_MESSAGE:
            if not target.user_id:
                raise PermanentError("private message needs the citizen's user id")
            path, form = "/2/messages/reply.json", {"uid": target.user_id, "text": text}
        elif target.comment_id:
            path = "/2/comments/reply.json"
            form = {"id": target.post_id or "", "cid": target.comment_id, "comment": text}
        else:
            if not target.post_id:
                raise PermanentError("comment needs the post id")
            path, form = "/2/comments/create.json", {"id": target.post_id, "comment": text}
        try:
            response = await self._http.post(path, data={**form, "access_token": token})
        except httpx.TransportError as exc:
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        return _message_id(response)

    async def aclose(self) -> None:
        await self._http.aclose()


def _message_id(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise RetryableError(
            f"HTTP {response.status_code}: {error}",
            float(retry_after)
            if retry_after and retry_after.replace(".", "", 1).isdigit()
            else None,
        )
    if response.status_code >= 400 or not isinstance(body, dict) or "error_code" in body:
        error = (
            body.get("error", response.text[:200])
            if isinstance(body, dict)
            else response.text[:200]
        )
        code = (
            body.get("error_code", response.status_code)
            if isinstance(body, dict)
            else response.status_code
        )
        raise PermanentError(f"{code}: {error}")
    message_id = body.get("idstr") or body.get("id")
    if not message_id:
        raise PermanentError("platform answered without a message id")
    return str(message_id)
