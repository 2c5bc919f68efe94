"""Polling Weibo for the accounts that have no message push.

Every `poll_interval_seconds` each account with an access token is asked for what is new since
its cursor on three open API endpoints (`statuses/mentions`, `comments/mentions`,
`comments/to_me`). Each new item becomes a `RawPostReceived` (channel "poll", source id
"status:<id>" or "comment:<id>": a comment that both mentions the account and answers its post
comes from two endpoints and is still one post) written through the same `PostSink` as the
webhooks. A cursor moves only after the sink took every item it covers, so a crash or a Kafka
outage repeats items (which the appeal's derived ids absorb) and never skips one.

Each account spends at most `poll_calls_per_hour` calls; past that it is skipped with a log line
until calls fall out of the hour. Run the pollers in one replica only (`pollers_enabled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from prometheus_client import CollectorRegistry, Counter

from fengqiao.contracts import RawPostReceived, new_event_id
from fengqiao.runtime import tracing
from fengqiao.runtime.clock import Clock
from fengqiao.services.intake.adapters.cursors import Cursor, CursorStore
from fengqiao.services.intake.adapters.sink import PostSink, SinkUnavailable
from fengqiao.services.intake.settings import IntakeSettings

__all__ = [
    "ENDPOINTS",
    "CallBudget",
    "Endpoint",
    "HttpWeiboReadApi",
    "PollError",
    "PolledAccount",
    "Poller",
    "WeiboReadApi",
    "build_poller",
]

log = logging.getLogger("fengqiao.intake.pollers")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    """One open API list of what was written to an account."""

    name: str
    path: str
    items_key: str
    kind: str  # "status" or "comment": the source id's prefix, and what the reader expects


ENDPOINTS = (
    Endpoint("statuses/mentions", "/2/statuses/mentions.json", "statuses", "status"),
    Endpoint("comments/mentions", "/2/comments/mentions.json", "comments", "comment"),
    Endpoint("comments/to_me", "/2/comments/to_me.json", "comments", "comment"),
)


@dataclass(frozen=True)
class PolledAccount:
    key: str  # the name in settings.weibo_accounts; cursors are kept under it
    handle: str
    access_token: str


class PollError(Exception):
    """The open API did not answer with a list; the endpoint is tried again next poll."""


class WeiboReadApi(Protocol):
    async def page(
        self, endpoint: Endpoint, *, token: str, since_id: int, max_id: int | None, count: int
    ) -> list[dict[str, Any]]:
        """Items with since_id < id <= max_id, newest first, at most `count`."""

    async def aclose(self) -> None: ...


class HttpWeiboReadApi:
    """The open API over HTTP (api.weibo.com, or the platform simulator)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = tracing.instrument_client(
            httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        )

    async def page(
        self, endpoint: Endpoint, *, token: str, since_id: int, max_id: int | None, count: int
    ) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"access_token": token, "since_id": since_id, "count": count}
        if max_id is not None:
            params["max_id"] = max_id
        try:
            response = await self._http.get(endpoint.path, params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PollError(f"{endpoint.name}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400 or not isinstance(body, dict) or "error_code" in body:
            detail = body.get("error", "") if isinstance(body, dict) else ""
            raise PollError(f"{endpoint.name}: HTTP {response.status_code} {detail}".rstrip())
        items = body.get(endpoint.items_key)
        if not isinstance(items, list):
            raise PollError(f"{endpoint.name}: no {endpoint.items_key!r} list in the answer")
        return [i for i in items if isinstance(i, dict)]

    async def aclose(self) -> None:
        await self._http.aclose()


class CallBudget:
    """At most `per_hour` calls per account in any sliding hour (in this process)."""

    def __init__(self, per_hour: int, clock: Clock) -> None:
        self.per_hour, self._clock = per_hour, clock
        self._calls: dict[str, deque[datetime]] = {}

    def take(self, account: str) -> bool:
        """Spend one call of `account`'s budget; False, and nothing spent, when none is left."""
        now = self._clock.now()
        calls = self._calls.setdefault(account, deque())
        while calls and calls[0] <= now - timedelta(hours=1):
            calls.popleft()
        if len(calls) >= self.per_hour:
            return False
        calls.append(now)
        return True


class BudgetExhausted(Exception):
    pass


def item_id(item: dict[str, Any]) -> int:
    """An item's id; idstr first, as the platform's ids outgrow a double's precision."""
    return int(item.get("idstr") or item["id"])


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.posts = Counter(
            "fengqiao_intake_poll_posts_total",
            "Polled items stored in posts.raw",
            ["endpoint"],
            registry=registry,
        )
        self.calls = Counter(
            "fengqiao_intake_poll_calls_total",
            "Open API calls made by the pollers",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.skipped = Counter(
            "fengqiao_intake_poll_budget_skips_total",
            "Polls of an account skipped because its hourly call budget was spent",
            ["account"],
            registry=registry,
        )


class Poller:
    """Reads every account's endpoints into the sink, one poll after another."""

    def __init__(
        self,
        accounts: Sequence[PolledAccount],
        api: WeiboReadApi,
        cursors: CursorStore,
        sink: PostSink,
        clock: Clock,
        *,
        producer: str,
        budget: CallBudget,
        page_size: int = 50,
        max_pages: int = 5,
        interval_seconds: float = 180,
        sleep: Sleep = asyncio.sleep,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.accounts = list(accounts)
        self._api, self._cursors, self._sink, self._clock = api, cursors, sink, clock
        self._producer, self._budget = producer, budget
        self._page_size, self._max_pages = page_size, max_pages
        self._interval, self._sleep = interval_seconds, sleep
        self._metrics = _Metrics(registry or CollectorRegistry())
        self._task: asyncio.Task[None] | None = None
        # Where each account's next poll starts: after a spent budget, at the endpoint it
        # skipped, so a tight budget does not starve the last endpoints.
        self._first: dict[str, int] = {}

    async def poll_once(self) -> int:
        """One poll of every account; the number of items stored. Failures are logged."""
        stored = 0
        for account in self.accounts:
            first = self._first.pop(account.key, 0)
            for n in range(first, first + len(ENDPOINTS)):
                endpoint = ENDPOINTS[n % len(ENDPOINTS)]
                try:
                    stored += await self._poll(account, endpoint)
                except BudgetExhausted:
                    self._first[account.key] = n % len(ENDPOINTS)
                    self._metrics.skipped.labels(account.key).inc()
                    log.warning(
                        "%s: call budget spent (%d calls/hour); skipped until calls age out",
                        account.handle,
                        self._budget.per_hour,
                    )
                    break
                except (PollError, SinkUnavailable) as exc:
                    log.warning(
                        "%s %s: %s; tried again next poll", account.handle, endpoint.name, exc
                    )
                except Exception:
                    log.exception("%s %s: poll failed", account.handle, endpoint.name)
        return stored

    async def _poll(self, account: PolledAccount, endpoint: Endpoint) -> int:
        cursor = await self._cursors.load(account.key, endpoint.name)
        stored = 0
        for _ in range(self._max_pages):
            items = await self._page(account, endpoint, cursor)
            if not items:
                done = Cursor(since_id=max(cursor.since_id, cursor.top_id or 0))
                if done != cursor:
                    await self._cursors.save(account.key, endpoint.name, done)
                return stored
            for item in sorted(items, key=item_id):
                await self._sink.put(self._raw_post(account, endpoint, item))
            stored += len(items)
            self._metrics.posts.labels(endpoint.name).inc(len(items))
            ids = [item_id(i) for i in items]
            cursor = Cursor(
                since_id=cursor.since_id,
                max_id=min(ids) - 1,
                top_id=max(cursor.top_id or 0, *ids),
            )
            await self._cursors.save(account.key, endpoint.name, cursor)
        return stored  # a backlog deeper than max_pages: the cursor's max_id resumes it

    async def _page(
        self, account: PolledAccount, endpoint: Endpoint, cursor: Cursor
    ) -> list[dict[str, Any]]:
        if not self._budget.take(account.key):
            raise BudgetExhausted
        try:
            items = await self._api.page(
                endpoint,
                token=account.access_token,
                since_id=cursor.since_id,
                max_id=cursor.max_id,
                count=self._page_size,
            )
        except PollError:
            self._metrics.calls.labels(endpoint.name, "error").inc()
            raise
        self._metrics.calls.labels(endpoint.name, "ok").inc()
        kept = []
        for item in items:
            try:
                new = item_id(item) > cursor.since_id
                below = cursor.max_id is None or item_id(item) <= cursor.max_id
            except (KeyError, TypeError, ValueError):
                log.warning("%s %s: an item without an id, skipped", account.handle, endpoint.name)
                continue
            if new and below:  # a platform that ignores since_id/max_id repeats nothing here
                kept.append(item)
        return kept

    def _raw_post(
        self, account: PolledAccount, endpoint: Endpoint, item: dict[str, Any]
    ) -> RawPostReceived:
        return RawPostReceived(
            occurred_at=self._clock.now(),
            producer=self._producer,
            platform="weibo",
            channel="poll",
            account=account.handle,
            source_id=f"{endpoint.kind}:{item_id(item)}",
            delivery_id=new_event_id(),
            payload=item,
        )

    async def run(self) -> None:
        """Poll, pause, forever (until cancelled)."""
        while True:
            await self.poll_once()
            await self._sleep(self._interval)

    async def start(self) -> None:
        """Start polling in the background (a lifespan hook)."""
        log.info("polling %d Weibo account(s) every %s s", len(self.accounts), self._interval)
        self._task = asyncio.create_task(self.run(), name="weibo-pollers")

    async def stop(self) -> None:
        """Stop polling and close the HTTP client (a lifespan hook)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._api.aclose()


def build_poller(
    settings: IntakeSettings,
    sink: PostSink,
    clock: Clock,
    cursors: CursorStore,
    *,
    producer: str,
    registry: CollectorRegistry | None = None,
    api: WeiboReadApi | None = None,
    sleep: Sleep = asyncio.sleep,
) -> Poller:
    """The poller of every account in `settings.weibo_accounts` that has an access token."""
    accounts = [
        PolledAccount(key, account.handle, account.access_token.get_secret_value())
        for key, account in settings.weibo_accounts.items()
        if account.access_token is not None
    ]
    return Poller(
        accounts,
        api or HttpWeiboReadApi(settings.weibo_api_base, timeout=settings.poll_timeout_seconds),
        cursors,
        sink,
        clock,
        producer=producer,
        budget=CallBudget(settings.poll_calls_per_hour, clock),
        page_size=settings.poll_page_size,
        max_pages=settings.poll_max_pages,
        interval_seconds=settings.poll_interval_seconds,
        sleep=sleep,
        registry=registry,
    )
