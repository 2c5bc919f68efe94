"""Replies parked in the store while they wait for a token, and the sweep that queues them.

Every reply that waits for its rate limit is parked first (`Outbox.park`: its key, when, the
partition of `replies.requested` it was read from, its bucket and rank). Memory holds at most a
queue's bound of them per bucket (`queue`); the rest wait in the store. Every `interval` seconds
(and as soon as partitions are assigned) the sweep lists what is parked and queues, best rank
first, what this replica owns, is not queued or being sent here, has room in its bucket's queue,
and is due (a reply whose send failed waits out its backoff). It also sets the backlog gauge, and
the count of replies held for an operator.

Ownership: `replies.requested` is keyed by account, so the replica that owns a partition owns its
accounts and their budgets. When partitions are revoked their queued replies leave memory (they
stay parked); the replica they are assigned to finds them parked and sends them. A reply parked
without a partition (read outside Kafka) is everyone's: the outbox's attempt record keeps two
replicas from both posting it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fengqiao.contracts import ReplyRequested
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import FINAL, Outbox
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import Origin
from fengqiao.services.notifier.queue import OTHER, ReplyQueue, rank

log = logging.getLogger("fengqiao.notifier")

Sleep = Callable[[float], Awaitable[None]]


class Parking:
    def __init__(
        self,
        *,
        outbox: Outbox,
        queue: ReplyQueue,
        metrics: NotifierMetrics,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self.outbox, self.queue, self.metrics, self.clock = outbox, queue, metrics, clock
        self.sleep, self.interval = sleep, queue.queueing.sweep_seconds
        # The partitions of replies.requested this replica owns; None: every one.
        self.owned: set[int] | None = set() if queue.queueing.partitioned else None
        self.lost: set[int] = set()  # revoked and not assigned again
        self.task: asyncio.Task[None] | None = None
        self._gauged: set[str] = set()

    async def park(self, request: ReplyRequested, origin: Origin | None) -> bool:
        """Park a reply read from `origin`; whether this replica queues it (not when its
        partition was revoked meanwhile: a poll handled after a rebalance)."""
        await self.outbox.park(
            request.idempotency_key,
            {
                "parked_at": self.clock.now(),
                "partition": None if origin is None else origin.owned_partition,
                "bucket": self.queue.bucket(request),
                "rank": rank(request),
            },
        )
        return origin is None or origin.owned_partition not in self.lost

    def owns(self, doc: dict[str, Any]) -> bool:
        partition = doc.get("partition")
        return self.owned is None or partition is None or partition in self.owned

    # ------------------------------------------------------------------ rebalances

    def assigned(self, partitions: Collection[int]) -> None:
        self.lost.difference_update(partitions)
        if self.owned is not None:
            self.owned.update(partitions)
        if self.task is not None:  # running: adopt what waits in those partitions now
            self.queue.spawn("parking sweep (assigned)", self._sweep_logged())

    def revoked(self, partitions: Collection[int]) -> None:
        self.lost.update(partitions)
        if self.owned is not None:
            self.owned.difference_update(partitions)
        dropped = self.queue.drop(partitions)
        if dropped:
            log.info(
                "partitions %s revoked: %d queued replies left to their owner", partitions, dropped
            )

    # ------------------------------------------------------------------ the sweep

    async def sweep(self) -> int:
        """Queue the parked replies this replica owns and may send now; how many it queued."""
        self.metrics.outbox_depth.labels("held").set(len(await self.outbox.held()))
        docs = [d for d in await self.outbox.parked() if self.owns(d)]
        self._gauge(docs)
        keys = {d["_id"] for d in docs}
        for key in [k for k in self.queue.failures if k not in keys]:
            del self.queue.failures[key]
        now = self.queue.monotonic()
        waiting = sorted(
            (
                d
                for d in docs
                if d["_id"] not in self.queue.active and self.queue.due(d["_id"], now)
            ),
            key=lambda d: (d.get("rank", OTHER), str(d.get("parked_at"))),
        )
        queued = 0
        for doc in waiting:
            bucket = doc.get("bucket")
            if bucket is not None and not self.queue.has_room(bucket, doc.get("rank", OTHER)):
                continue
            record = await self.outbox.get(doc["_id"])
            if record is None or record.get("state") in FINAL:
                await self.outbox.unpark(doc["_id"])
                continue
            request = ReplyRequested.model_validate(record["request"])
            origin = Origin(**record["origin"]) if record.get("origin") else None
            queued += self.queue.enqueue(request, list(record.get("parts") or []), origin)
        return queued

    def _gauge(self, docs: list[dict[str, Any]]) -> None:
        counts = Counter(str(d.get("bucket", "unknown")) for d in docs)
        for bucket in self._gauged - set(counts):
            self.metrics.parked.labels(bucket).set(0)
        for bucket, count in counts.items():
            self.metrics.parked.labels(bucket).set(count)
        self._gauged = set(counts)

    async def _sweep_logged(self) -> None:
        try:
            await self.sweep()
        except Exception:  # the store away: the next sweep tries again
            log.exception("parking sweep")

    async def run(self, ready: Callable[[], Awaitable[bool]]) -> None:
        """Once `ready()` (a queued reply's result must be publishable), sweep every
        `interval` seconds until stopped."""
        while not await ready():
            await self.sleep(0.2)
        while True:
            await self._sweep_logged()
            await self.sleep(self.interval)

    def start(self, ready: Callable[[], Awaitable[bool]]) -> None:
        self.task = asyncio.create_task(self.run(ready), name="parking sweep")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
