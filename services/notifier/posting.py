"""Posting a claimed reply on the platform: each part in turn, retryable errors tried again with
exponential backoff and jitter (the platform's Retry-After when it gives one), and an outcome
that may have reached the platform looked up before posting again."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fengqiao.contracts import ReplyRequested
from fengqiao.services.notifier.adapters.outbox import State
from fengqiao.services.notifier.adapters.platform import (
    CannotReconcile,
    NotSendable,
    PermanentError,
    PlatformClient,
    PlatformError,
    RetryableError,
)
from fengqiao.services.notifier.domain import reply_marker
from fengqiao.services.notifier.limits import RateLimiter
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import EXHAUSTED, UNSENDABLE, Origin

log = logging.getLogger("fengqiao.notifier")

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Plan:
    """A reply, what to claim for it, and (once claimed `sending`) its parts to post."""

    request: ReplyRequested
    origin: Origin | None
    parts: list[str]
    record: dict[str, Any]
    token: str | None = None

    @property
    def state(self) -> str:
        return str(self.record["state"])


@dataclass
class Outcome:
    """What posting a reply came to (not recorded yet); `exhausted` (retryable errors up to the
    last try) or `unsendable` (as configured, it cannot be sent): dead-letter it."""

    state: State
    fields: dict[str, Any]
    exhausted: bool = False
    unsendable: bool = False


def outcome_fields(text: str, error: str | None, ids: list[str]) -> dict[str, Any]:
    return {"text": text, "error": error, "platform_message_id": ",".join(ids) or None}


class Unknown(Exception):
    """The platform may have taken the reply and cannot tell whether it did."""


class Exhausted(Exception):
    """Retryable errors up to the last try."""


class Poster:
    def __init__(
        self,
        *,
        platform: PlatformClient,
        tokens: Callable[[str], str | None],
        limiter: RateLimiter,
        metrics: NotifierMetrics,
        sleep: Sleep,
        monotonic: Callable[[], float],
        now: Callable[[], datetime],
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        concurrency: int,
    ) -> None:
        self.platform, self.tokens, self.limiter, self.metrics = platform, tokens, limiter, metrics
        self.sleep, self.monotonic, self.now = sleep, monotonic, now
        self.max_attempts, self.base_delay, self.max_delay = max_attempts, base_delay, max_delay
        self.concurrency = asyncio.Semaphore(concurrency)

    async def send(self, plan: Plan) -> Outcome:
        """Post every part of one reply; its outcome (nothing recorded yet)."""
        request, parts = plan.request, plan.parts
        token = plan.token or self.tokens(request.target.account) or ""
        text = "\n".join(parts)
        ids: list[str] = []
        async with self.concurrency:
            for index, part in enumerate(parts):
                if index:
                    await self.take_token(request)
                try:
                    ids.append(await self.post(request, part, token))
                except NotSendable as exc:
                    fields = outcome_fields(text, f"not sendable: {exc}", ids)
                    return Outcome("failed", {**fields, "retry": UNSENDABLE}, unsendable=True)
                except PermanentError as exc:
                    return Outcome("failed", outcome_fields(text, str(exc), ids))
                except Unknown as exc:
                    return Outcome("held", outcome_fields(text, str(exc), ids))
                except Exhausted as exc:
                    fields = {**outcome_fields(text, str(exc), ids), "retry": EXHAUSTED}
                    return Outcome("failed", fields, exhausted=True)
        return Outcome("sent", outcome_fields(text, None, ids))

    async def post(self, request: ReplyRequested, text: str, token: str) -> str:
        channel, target = request.channel, request.target
        started = self.now()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await self.platform.send(channel, target, text, token=token)
            except RetryableError as exc:
                last = attempt == self.max_attempts
                if last and not exc.maybe_delivered:
                    raise Exhausted(f"gave up after {attempt} tries: {exc}") from exc
                delay = min(exc.retry_after or self.base_delay * 2 ** (attempt - 1), self.max_delay)
                delay *= 1 + random.random() / 2
                log.warning(
                    "reply %s: %s; next step in %.1f s", request.idempotency_key, exc, delay
                )
                await self.sleep(delay)
                if exc.maybe_delivered:
                    found = await self.find(request, text, token, cause=str(exc), since=started)
                    if found is not None:
                        return found
                    if last:
                        raise Exhausted(f"gave up after {attempt} tries: {exc}") from exc
                self.metrics.retries.labels(target.platform).inc()
        raise AssertionError("unreachable")

    async def find(
        self,
        request: ReplyRequested,
        text: str,
        token: str,
        *,
        cause: str,
        since: datetime | None = None,
    ) -> str | None:
        """The id of the reply if the platform shows it posted (by its marker, or by `text`);
        Unknown when it cannot tell. `since`: when the first attempt was made."""
        try:
            found = await self.platform.find_posted(
                request.channel,
                request.target,
                text,
                token=token,
                marker=reply_marker(request),
                since=since,
            )
        except CannotReconcile as exc:
            self.metrics.reconciled.labels("unknown").inc()
            raise Unknown(f"{cause}; {exc}; held for an operator") from exc
        except PlatformError as exc:
            self.metrics.reconciled.labels("unknown").inc()
            raise Unknown(
                f"{cause}; could not check the platform ({exc}); held for an operator"
            ) from exc
        self.metrics.reconciled.labels("found" if found else "absent").inc()
        return found

    async def take_token(self, request: ReplyRequested) -> None:
        """Wait for the rate limit of the reply's account and channel."""
        account, channel = request.target.account, request.channel
        while (wait := self.limiter.wait(account, channel, self.monotonic())) > 0:
            await self.sleep(wait)
