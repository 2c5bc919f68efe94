"""Replies waiting for a token of their rate limit: in order per bucket, each sent in a task of
its own once a token frees (a slow store or platform must not eat into the budget), one case's
in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fengqiao.contracts import ReplyRequested
from fengqiao.services.notifier.limits import RateLimiter
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import Origin

log = logging.getLogger("fengqiao.notifier")

Queued = tuple[ReplyRequested, list[str], Origin | None]


class ReplyQueue:
    def __init__(
        self,
        *,
        limiter: RateLimiter,
        metrics: NotifierMetrics,
        take_token: Callable[[ReplyRequested], Awaitable[None]],
        send: Callable[[ReplyRequested, list[str], Origin | None], Awaitable[None]],
        active: set[str],
    ) -> None:
        self.limiter, self.metrics = limiter, metrics
        self.take_token, self.send = take_token, send
        self.active = active  # keys being sent or queued in this process (the sender's)
        self.queues: dict[str, deque[Queued]] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.last_of_case: dict[str, asyncio.Task[None]] = {}

    def enqueue(self, request: ReplyRequested, parts: list[str], origin: Origin | None) -> None:
        bucket = self.limiter.bucket_name(request.target.account, request.channel)
        self.active.add(request.idempotency_key)
        self.queues.setdefault(bucket, deque()).append((request, parts, origin))
        self.metrics.queue_depth.labels(bucket).inc()
        self.metrics.outbox_depth.labels("queued").inc()
        self.metrics.rate_limited.labels(bucket).inc()
        worker = self.workers.get(bucket)
        if worker is None or worker.done():
            self.workers[bucket] = asyncio.create_task(self._drain(bucket), name=f"queue {bucket}")

    def spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Background work that `stop` cancels and `idle` waits for."""
        self.workers[name] = asyncio.create_task(work, name=name)

    async def _drain(self, bucket: str) -> None:
        queue = self.queues[bucket]
        while queue:
            request, parts, origin = queue[0]
            await self.take_token(request)
            queue.popleft()
            self.metrics.queue_depth.labels(bucket).dec()
            self.metrics.outbox_depth.labels("queued").dec()
            before = self.last_of_case.get(request.case_id)
            task = asyncio.create_task(self._send_after(before, request, parts, origin))
            self.last_of_case[request.case_id] = task
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _send_after(
        self,
        before: asyncio.Task[None] | None,
        request: ReplyRequested,
        parts: list[str],
        origin: Origin | None,
    ) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            await self.send(request, parts, origin)
        except Exception:  # stays parked; tried again at the next start
            log.exception("queued reply %s", request.idempotency_key)
        finally:
            self.active.discard(request.idempotency_key)
            if self.last_of_case.get(request.case_id) is asyncio.current_task():
                del self.last_of_case[request.case_id]

    async def stop(self) -> None:
        tasks = [*self.workers.values(), *self.in_flight]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every queue is empty (tests and benchmarks)."""
        while any(not t.done() for t in [*self.workers.values(), *self.in_flight]):
            await asyncio.gather(*self.workers.values(), *self.in_flight, return_exceptions=True)
