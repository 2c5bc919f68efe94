"""Replies waiting for a token of their rate limit: a bounded priority queue per bucket (account
and kind of message). Urgent replies first, then acknowledgments, then the rest; in arrival order
within a rank. Each is sent in a task of its own once a token frees (a slow store or platform
must not eat into the budget), one case's in order.

Every queued reply is parked in the store first (`Outbox.park`), so memory only holds what is
about to go out: at most `limit` replies per bucket. A reply that finds its bucket full is not
taken (it outranks the lowest queued one: that one leaves memory instead); it stays parked and
the parking sweep (`parking`) brings it back when there is room. Nothing is dropped, and the
consumer never stops (a poll held back for hours would be thrown out of its group).

A send that fails (the store or the broker away) leaves the reply parked; it is due again after
a backoff that doubles per failure (`due`), and the sweep sends it then.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fengqiao.contracts import ReplyPurpose, ReplyRequested
from fengqiao.services.notifier.limits import RateLimiter
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import Origin

log = logging.getLogger("fengqiao.notifier")

T = TypeVar("T")

URGENT, ACKNOWLEDGMENT, OTHER = 0, 1, 2


def rank(request: ReplyRequested) -> int:
    """0 for an urgent case's replies, 1 for an acknowledgment, 2 for the rest: lower goes first."""
    if request.urgent:
        return URGENT
    return ACKNOWLEDGMENT if request.purpose == ReplyPurpose.ACKNOWLEDGMENT else OTHER


def by_priority(items: Sequence[tuple[ReplyRequested, T]]) -> list[tuple[ReplyRequested, T]]:
    """`items` best rank first (a case's replies all at its best rank, in their order): what
    one poll claims, so tokens free now go to the best of it."""
    best: dict[str, int] = {}
    for request, _ in items:
        best[request.case_id] = min(rank(request), best.get(request.case_id, OTHER))
    order = sorted(range(len(items)), key=lambda i: (best[items[i][0].case_id], i))
    return [items[i] for i in order]


@dataclass(order=True)
class Entry:
    rank: int
    seq: int
    request: ReplyRequested = field(compare=False)
    parts: list[str] = field(compare=False)
    origin: Origin | None = field(compare=False)


@dataclass(frozen=True)
class Queueing:
    """The queues' settings: at most `limit` replies in memory per bucket; the parked ones swept
    every `sweep_seconds`; a failed one tried again after `retry_base_seconds`, doubling per
    failure up to `retry_max_seconds`. `partitioned`: this replica owns only the partitions of
    replies.requested it is assigned (a Kafka consumer), not every parked reply."""

    limit: int = 500
    sweep_seconds: float = 10.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0
    partitioned: bool = False

    def delay(self, failures: int) -> float:
        """Seconds before a reply that failed `failures` times is tried again."""
        backoff = self.retry_base_seconds * 2 ** max(0, failures - 1)
        return float(min(self.retry_max_seconds, backoff))


class ReplyQueue:
    def __init__(
        self,
        *,
        limiter: RateLimiter,
        metrics: NotifierMetrics,
        take_token: Callable[[ReplyRequested], Awaitable[None]],
        send: Callable[[ReplyRequested, list[str], Origin | None], Awaitable[None]],
        active: set[str],
        queueing: Queueing,
        monotonic: Callable[[], float],
    ) -> None:
        self.limiter, self.metrics = limiter, metrics
        self.take_token, self.send = take_token, send
        self.active = active  # keys being sent or queued in this process (the sender's)
        self.queueing, self.limit, self.monotonic = queueing, queueing.limit, monotonic
        self.queues: dict[str, list[Entry]] = {}  # heaps, by bucket
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.in_flight: set[asyncio.Task[None]] = set()
        self.last_of_case: dict[str, asyncio.Task[None]] = {}
        self.failures: dict[str, tuple[int, float]] = {}  # key → (failures, due again at)
        self._seq = itertools.count()

    def bucket(self, request: ReplyRequested) -> str:
        return self.limiter.bucket_name(request.target.account, request.channel)

    def token_now(self, request: ReplyRequested) -> bool:
        """Take a token for `request` if one is free now and no reply waits in its bucket (it
        must not go before them: the queue's worker gives the next token to the best)."""
        if self.queues.get(self.bucket(request)):
            return False
        account, channel = request.target.account, request.channel
        return self.limiter.wait(account, channel, self.monotonic()) == 0.0

    def has_room(self, bucket: str, rank_: int) -> bool:
        """Whether a reply of `rank_` would be taken into `bucket`'s queue now."""
        queue = self.queues.get(bucket, [])
        return len(queue) < self.limit or rank_ < max(queue).rank

    def enqueue(self, request: ReplyRequested, parts: list[str], origin: Origin | None) -> bool:
        """Queue a parked reply; False when its bucket is full of replies that rank as high (it
        stays parked, for the sweep)."""
        key, bucket = request.idempotency_key, self.bucket(request)
        if key in self.active:
            return True
        entry = Entry(rank(request), next(self._seq), request, parts, origin)
        queue = self.queues.setdefault(bucket, [])
        if any(e.rank > entry.rank for e in queue if e.request.case_id == request.case_id):
            for earlier in (e for e in queue if e.request.case_id == request.case_id):
                earlier.rank = min(earlier.rank, entry.rank)  # its case is urgent now: with it
            heapq.heapify(queue)
        if len(queue) >= self.limit:
            self.metrics.spilled.labels(bucket).inc()
            worst = max(queue)
            if entry > worst:
                return False
            queue.remove(worst)  # back to the store only: it is parked there
            heapq.heapify(queue)
            self._left(bucket, worst)
        heapq.heappush(queue, entry)
        self.active.add(key)
        self.metrics.queue_depth.labels(bucket).inc()
        self.metrics.outbox_depth.labels("queued").inc()
        self.metrics.rate_limited.labels(bucket).inc()
        worker = self.workers.get(bucket)
        if worker is None or worker.done():
            self.workers[bucket] = asyncio.create_task(self._drain(bucket), name=f"queue {bucket}")
        return True

    def _left(self, bucket: str, entry: Entry) -> None:
        """`entry` left the queue without being sent."""
        self.active.discard(entry.request.idempotency_key)
        self.metrics.queue_depth.labels(bucket).dec()
        self.metrics.outbox_depth.labels("queued").dec()

    def drop(self, partitions: Collection[int]) -> int:
        """Forget the queued replies read from `partitions` (another replica owns them now: it
        finds them parked); how many."""
        dropped = 0
        for bucket, queue in self.queues.items():
            gone = [
                e for e in queue if e.origin is not None and e.origin.owned_partition in partitions
            ]
            for entry in gone:
                queue.remove(entry)
                self._left(bucket, entry)
            heapq.heapify(queue)
            dropped += len(gone)
        return dropped

    def due(self, key: str, now: float) -> bool:
        """Whether a parked reply may be tried (again) at `now`."""
        failed = self.failures.get(key)
        return failed is None or failed[1] <= now

    def spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Background work that `stop` cancels and `idle` waits for."""
        self.workers[name] = asyncio.create_task(work, name=name)

    async def _drain(self, bucket: str) -> None:
        queue = self.queues[bucket]
        while queue:
            head = queue[0].request
            await self.take_token(head)
            if not queue:  # dropped while waiting: the token was not used
                self.limiter.give_back(head.target.account, head.channel)
                break
            entry = heapq.heappop(queue)  # the best now (it may have come while we waited)
            self.metrics.queue_depth.labels(bucket).dec()
            self.metrics.outbox_depth.labels("queued").dec()
            request = entry.request
            before = self.last_of_case.get(request.case_id)
            task = asyncio.create_task(self._send_after(before, entry))
            self.last_of_case[request.case_id] = task
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _send_after(self, before: asyncio.Task[None] | None, entry: Entry) -> None:
        request = entry.request
        key = request.idempotency_key
        try:
            if before is not None:
                await asyncio.wait([before])
            await self.send(request, entry.parts, entry.origin)
            self.failures.pop(key, None)
        except Exception:  # stays parked; the sweep tries it again after a backoff
            failures = self.failures.get(key, (0, 0.0))[0] + 1
            delay = self.queueing.delay(failures)
            self.failures[key] = (failures, self.monotonic() + delay)
            self.metrics.parked_retries.inc()
            log.exception(
                "queued reply %s failed (%d); tried again in %.0f s", key, failures, delay
            )
        finally:
            self.active.discard(key)
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
