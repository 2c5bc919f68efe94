"""Forgetting old records on a timer, for stores FerretDB cannot expire by itself (it has no TTL
indexes): the recent appeals (`recent.Pruner`) and the Weibo push nonces (`nonces.NoncePruner`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter

from fengqiao.runtime.clock import Clock
from fengqiao.runtime.periodic import every

log = logging.getLogger("fengqiao.intake")


class Prunable(Protocol):
    async def prune(self, before: datetime) -> int:
        """Forget what is older than `before`; how many records went."""


class Pruner:
    """Forgets what `store` holds from before `keep` ago, at start and every
    `interval_seconds`, in the background (lifespan hooks `start`/`stop`). A failed prune is
    logged and tried again at the next interval; nothing waits for it. A subclass names what it
    prunes (`WHAT`) and its counter (`METRIC`, `HELP`)."""

    WHAT = "records"
    METRIC, HELP = "fengqiao_intake_pruned_total", "Records forgotten"

    def __init__(
        self,
        store: Prunable,
        clock: Clock,
        *,
        keep: timedelta,
        interval_seconds: float,
        registry: CollectorRegistry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store, self._clock, self._keep = store, clock, keep
        self._interval, self._sleep = interval_seconds, sleep
        self._task: asyncio.Task[None] | None = None
        self._pruned = Counter(self.METRIC, self.HELP, registry=registry or CollectorRegistry())

    async def prune_once(self) -> int:
        pruned = await self._store.prune(self._clock.now() - self._keep)
        self._pruned.inc(pruned)
        if pruned:
            log.info("pruned %d %s older than %s", pruned, self.WHAT, self._keep)
        return pruned

    async def run(self) -> None:
        """Prune, pause, forever (until cancelled)."""
        await every(self._interval, self.prune_once, what=f"pruning {self.WHAT}",
                    sleep=self._sleep)  # fmt: skip

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"pruning {self.WHAT}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
