"""Platform clients behind one port: Weibo's open API and a generic HTTP webhook.

Errors::

    PlatformError
    ├── RetryableError   network errors, timeouts, 5xx, 429 (with retry_after); `maybe_delivered`
    │                    when the platform may have taken the reply before the error
    ├── PermanentError   the platform refused the content or the request (4xx)
    │   └── NotSendable  the reply cannot be sent as configured (no client for its platform, a
    │                    channel the client cannot do, a target without the id it needs):
    │                    nothing reached the platform; it can be sent once that is fixed
    └── CannotReconcile  the platform cannot tell what an account already posted there

Looking for a reply already posted (`find_posted`) reads where the reply would be: a comment
among the post's own comments (Weibo's comments/show, paged back to the time of the attempt), a
shared status on the account's timeline; it is recognised by the marker the notifier put in its
text (`domain.reply_marker`), or else by its exact text. Private messages cannot be listed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from fengqiao.contracts import ReplyChannel, ReplyTarget
from fengqiao.runtime import tracing
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


class NotSendable(PermanentError):
    """A reply that cannot be sent as configured; the message says what to fix."""


class CannotReconcile(PlatformError):
    pass


# Our clock and the platform's may differ: a page older than the attempt by more than this ends
# the search.
CLOCK_SKEW = timedelta(minutes=10)


class PlatformClient(Protocol):
    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        """Post `text`; return the platform's message id."""

    async def find_posted(
        self,
        channel: ReplyChannel,
        target: ReplyTarget,
        text: str,
        *,
        token: str,
        marker: str = "",
        since: datetime | None = None,
    ) -> str | None:
        """The id of the reply if the account already posted it to `target` (a text holding
        `marker`, or `text` itself), else None; CannotReconcile when the platform cannot tell.
        `since`: the reply was not posted before then (the search may stop there)."""

    async def aclose(self) -> None: ...


def transport_error(exc: httpx.TransportError) -> RetryableError:
    return RetryableError(
        f"{type(exc).__name__}: {exc}", maybe_delivered=not isinstance(exc, _NOT_SENT)
    )


class WeiboClient:
    """Weibo's open API: comments/create, comments/reply, messages/reply, statuses/share; and
    comments/show (a post's comments), statuses/user_timeline (the account's statuses), paged,
    to find a reply already posted."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        page_size: int = 200,
        max_pages: int = 50,
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
        self._lanes = [  # traced (with tracing on): a span and `traceparent` per call
            tracing.instrument_client(
                ApiClient(
                    base_url=base_url,
                    timeout=timeout,
                    transport=transport or AsyncioTransport(limits=limits, verify=verify),
                    limits=limits,
                )
            )
            for _ in range(max(1, lanes))
        ]
        self._turn = itertools.cycle(self._lanes)
        self._page_size, self._max_pages = page_size, max_pages
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
        self,
        channel: ReplyChannel,
        target: ReplyTarget,
        text: str,
        *,
        token: str,
        marker: str = "",
        since: datetime | None = None,
    ) -> str | None:
        if channel is ReplyChannel.PRIVATE_MESSAGE:
            raise CannotReconcile("Weibo does not list the private messages an account sent")
        if channel is ReplyChannel.COMMENT:
            if not target.post_id:
                raise CannotReconcile("a comment without its post's id cannot be looked for")
            pages = self._pages("/2/comments/show.json", "comments", token, since, target.post_id)
        else:
            pages = self._pages("/2/statuses/user_timeline.json", "statuses", token, since)
        async for item in pages:
            said = str(item.get("text") or "")
            if (marker and marker in said) or (
                said == text and (channel is not ReplyChannel.COMMENT or _same_target(item, target))
            ):
                return str(item.get("idstr") or item.get("id"))
        return None

    async def _pages(
        self, path: str, key: str, token: str, since: datetime | None, post_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """A list's items, newest first, page by page (by max_id) until its end or until
        items older than `since`; CannotReconcile when that is more than `max_pages` away."""
        params: dict[str, str | int] = {"access_token": token, "count": self._page_size}
        if post_id is not None:
            params["id"] = post_id
        for _ in range(self._max_pages):
            try:
                response = await self._http.get(self._url(path), params=params)
            except httpx.TransportError as exc:
                raise transport_error(exc) from exc
            items = _body(response).get(key) or []
            for item in items:
                yield item
            if len(items) < self._page_size:
                return
            oldest = items[-1]
            created = _created_at(oldest)
            if since is not None and created is not None and created < since - CLOCK_SKEW:
                return
            params["max_id"] = int(oldest.get("idstr") or oldest["id"]) - 1
        raise CannotReconcile(
            f"read {self._max_pages * self._page_size} items of {path} without reaching the "
            "time of the attempt"
        )

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()


def _request(channel: ReplyChannel, target: ReplyTarget, text: str) -> tuple[str, dict[str, str]]:
    if channel is ReplyChannel.PRIVATE_MESSAGE:
        if not target.user_id:
            raise NotSendable("private message needs the citizen's user id")
        return "/2/messages/reply.json", {"uid": target.user_id, "text": text}
    if channel is ReplyChannel.STATUS:
        return "/2/statuses/share.json", {"status": text}
    if not target.post_id:
        raise NotSendable("comment needs the post id")
    if target.comment_id:
        return "/2/comments/reply.json", {
            "id": target.post_id,
            "cid": target.comment_id,
            "comment": text,
        }
    return "/2/comments/create.json", {"id": target.post_id, "comment": text}


def _created_at(item: dict[str, Any]) -> datetime | None:
    """When Weibo says `item` was posted ("Mon Nov 27 21:00:00 +0800 2026"), if it says."""
    value = str(item.get("created_at") or "")
    parts = value.split()
    if len(parts) != 6 or parts[1] not in _MONTHS:
        return None
    month = _MONTHS.index(parts[1]) + 1
    try:  # the month by hand: `%b` would follow the process locale
        return datetime.strptime(f"{month} {' '.join(parts[2:])}", "%m %d %H:%M:%S %z %Y")
    except ValueError:
        return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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
        http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._http = tracing.instrument_client(http)  # traced: `traceparent` to the platform

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
        self,
        channel: ReplyChannel,
        target: ReplyTarget,
        text: str,
        *,
        token: str,
        marker: str = "",
        since: datetime | None = None,
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
            raise NotSendable(f"no client for platform {target.platform!r} (known: {known})")
        return client

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        return await self._for(target).send(channel, target, text, token=token)

    async def find_posted(
        self,
        channel: ReplyChannel,
        target: ReplyTarget,
        text: str,
        *,
        token: str,
        marker: str = "",
        since: datetime | None = None,
    ) -> str | None:
        return await self._for(target).find_posted(
            channel, target, text, token=token, marker=marker, since=since
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
