"""Platform clients behind one port: Weibo's open API and a generic HTTP webhook.

Errors::

    PlatformError
    ├── RetryableError   network errors, timeouts, 5xx, 429 (with retry_after); `maybe_delivered`
    │                    when the platform may have taken the reply before the error
    ├── PermanentError   the platform refused the content or the request (4xx)
    └── CannotReconcile  the platform cannot tell what an account already posted there
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable
from typing import Any, Protocol

import httpx

from fengqiao.contracts import ReplyChannel, ReplyTarget
from fengqiao.runtime.signing import signed_headers
from fengqiao.services.notifier.adapters.transport import ApiClient, AsyncioTransport

# Errors raised before the request could reach the platform: it cannot have taken the reply.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers that say the platform did not take the request.
_REFUSED_STATUSES = frozenset({429, 503})


class PlatformError(Exception):
    """The platform did not take the reply."""


class RetryableError(PlatformError):
    def __init__(
        self, message: str, retry_after: float | None = None, *, maybe_delivered: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class PermanentError(PlatformError):
    pass


class CannotReconcile(PlatformError):
    pass


class PlatformClient(Protocol):
    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        """Post `text`; return the platform's message id."""

    async def find_posted(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str | None:
        """The id of `text` if the account already posted it to `target`, else None;
        CannotReconcile when the platform cannot tell."""

    async def aclose(self) -> None: ...


def transport_error(exc: httpx.TransportError) -> RetryableError:
    return RetryableError(
        f"{type(exc).__name__}: {exc}", maybe_delivered=not isinstance(exc, _NOT_SENT)
    )


class WeiboClient:
    """Weibo's open API: comments/create, comments/reply, messages/reply, statuses/share; and
    comments/by_me, statuses/user_timeline to find what an account already posted."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        recent: int = 200,
        lanes: int = 1,
        connections_per_lane: int = 2,
    ) -> None:
        # Several small clients rather than one large pool: httpx's pool slows down as its
        # concurrent requests grow.
        limits = httpx.Limits(
            max_connections=connections_per_lane, max_keepalive_connections=connections_per_lane
        )
        # Each lane's connections are plain asyncio ones (AsyncioTransport, cheaper than anyio's
        # layer under httpx); one TLS context for all.
        verify = httpx.create_ssl_context() if transport is None else True
        self._lanes = [
            ApiClient(
                base_url=base_url,
                timeout=timeout,
                transport=transport or AsyncioTransport(limits=limits, verify=verify),
                limits=limits,
            )
            for _ in range(max(1, lanes))
        ]
        self._turn = itertools.cycle(self._lanes)
        self._recent = recent
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, path: str) -> httpx.URL:
        """`path` under the base URL, parsed once (httpx would parse and join it per request)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._lanes[0].base_url.join(path.lstrip("/"))
        return url

    @property
    def _http(self) -> httpx.AsyncClient:
        return next(self._turn)

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        path, form = _request(channel, target, text)
        return await _posted(self._http.post(self._url(path), data={**form, "access_token": token}))

    async def find_posted(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str | None:
        if channel is ReplyChannel.PRIVATE_MESSAGE:
            raise CannotReconcile("Weibo does not list the private messages an account sent")
        comments = channel is ReplyChannel.COMMENT
        path = "/2/comments/by_me.json" if comments else "/2/statuses/user_timeline.json"
        try:
            response = await self._http.get(
                self._url(path), params={"access_token": token, "count": self._recent}
            )
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc
        body = _body(response)
        for item in body.get("comments" if comments else "statuses") or []:
            if item.get("text") != text:
                continue
            if comments and not _same_target(item, target):
                continue
            return str(item.get("idstr") or item.get("id"))
        return None

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()


def _request(channel: ReplyChannel, target: ReplyTarget, text: str) -> tuple[str, dict[str, str]]:
    if channel is ReplyChannel.PRIVATE_MESSAGE:
        if not target.user_id:
            raise PermanentError("private message needs the citizen's user id")
        return "/2/messages/reply.json", {"uid": target.user_id, "text": text}
    if channel is ReplyChannel.STATUS:
        return "/2/statuses/share.json", {"status": text}
    if not target.post_id:
        raise PermanentError("comment needs the post id")
    if target.comment_id:
        return "/2/comments/reply.json", {
            "id": target.post_id,
            "cid": target.comment_id,
            "comment": text,
        }
    return "/2/comments/create.json", {"id": target.post_id, "comment": text}


def _same_target(item: dict[str, Any], target: ReplyTarget) -> bool:
    status = item.get("status") or {}
    if str(status.get("idstr") or status.get("id")) != target.post_id:
        return False
    replied = item.get("reply_comment") or {}
    replied_id = replied.get("idstr") or replied.get("id")
    return (str(replied_id) if replied_id else None) == target.comment_id


def _body(response: httpx.Response) -> dict[str, Any]:
    """The JSON answer, or the error it stands for."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("Retry-After")
        error = body.get("error", "") if isinstance(body, dict) else ""
        raise RetryableError(
            f"HTTP {response.status_code}: {error}",
            float(retry_after)
            if retry_after and retry_after.replace(".", "", 1).isdigit()
            else None,
            maybe_delivered=response.status_code not in _REFUSED_STATUSES,
        )
    if response.status_code >= 400 or not isinstance(body, dict) or "error_code" in body:
        known = isinstance(body, dict)
        error = body.get("error", response.text[:200]) if known else response.text[:200]
        code = body.get("error_code", response.status_code) if known else response.status_code
        raise PermanentError(f"{code}: {error}")
    return body


async def _posted(sending: Awaitable[httpx.Response]) -> str:
    """The platform's id of what `sending` posted, or the error its failure means."""
    try:
        response = await sending
    except httpx.TransportError as exc:
        raise transport_error(exc) from exc
    return _message_id(response)


def _message_id(response: httpx.Response) -> str:
    body = _body(response)
    message_id = body.get("idstr") or body.get("id")
    if not message_id:
        raise PermanentError("platform answered without a message id")
    return str(message_id)


class WebhookClient:
    """A generic platform: each reply is POSTed as JSON to one URL, signed like intake's generic
    webhook (HMAC-SHA256 over `<timestamp>.<body>`), the account's token as a bearer token.
    The receiver answers `{"id": ...}`; 429 and 5xx are retried, other 4xx are refusals."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url, self._secret = url, secret
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        body = json.dumps(
            {"channel": channel.value, "target": target.model_dump(mode="json"), "text": text},
            ensure_ascii=False,
        ).encode()
        headers = signed_headers(self._secret, body)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await _posted(self._http.post(self._url, content=body, headers=headers))

    async def find_posted(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str | None:
        raise CannotReconcile("a generic webhook cannot tell what was already posted")

    async def aclose(self) -> None:
        await self._http.aclose()


class Platforms:
    """One port over several platforms, chosen by the reply target's platform."""

    def __init__(self, clients: dict[str, PlatformClient]) -> None:
        self._clients = clients

    def _for(self, target: ReplyTarget) -> PlatformClient:
        client = self._clients.get(target.platform)
        if client is None:
            known = ", ".join(sorted(self._clients)) or "none"
            raise PermanentError(f"no client for platform {target.platform!r} (known: {known})")
        return client

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        return await self._for(target).send(channel, target, text, token=token)

    async def find_posted(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str | None:
        return await self._for(target).find_posted(channel, target, text, token=token)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
