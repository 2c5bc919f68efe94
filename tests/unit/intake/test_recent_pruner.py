"""The pruner forgets recent appeals past the matching windows: at start, then every interval,
and a failed prune does not stop it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from fengqiao.runtime.clock import FakeClock
from fengqiao.services.intake.adapters.recent import InMemoryRecentAppeals, Pruner
from fengqiao.services.intake.linking import RecentAppeal

KEEP = timedelta(days=60)


def appeal(key: str, at: datetime) -> RecentAppeal:
    return RecentAppeal(
        key=key,
        platform="weibo",
        author="u1",
        post_id=key,
        event_id=f"e-{key}",
        case_id=f"c-{key}",
        posted_at=at,
        fingerprint=(1, 2, 3),
    )


class Ticks:
    """A `sleep` the test releases one interval at a time."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self._release: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await self._release.get()

    async def settle(self) -> None:
        """Let the pruner run until it sleeps again."""
        for _ in range(5):
            await asyncio.sleep(0)

    async def tick(self) -> None:
        """End one sleep; the pruner runs its next round."""
        self._release.put_nowait(None)
        await self.settle()


async def test_old_appeals_are_pruned_at_start_and_every_interval() -> None:
    clock, store, ticks = FakeClock(), InMemoryRecentAppeals(), Ticks()
    registry = CollectorRegistry()
    await store.add(appeal("old", clock.now() - KEEP - timedelta(days=1)))
    await store.add(appeal("recent", clock.now() - timedelta(days=1)))
    pruner = Pruner(
        store, clock, keep=KEEP, interval_seconds=3600, registry=registry, sleep=ticks.sleep
    )
    await pruner.start()
    try:
        await ticks.settle()  # the first round, at start
        assert set(store.appeals) == {"recent"}
        assert ticks.slept == [3600]
        clock.advance(KEEP)  # "recent" is now past the windows too
        await ticks.tick()
        assert store.appeals == {}
        assert ticks.slept == [3600, 3600]
    finally:
        await pruner.stop()
    assert registry.get_sample_value("fengqiao_intake_recent_appeals_pruned_total") == 2


class FailingOnce(InMemoryRecentAppeals):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def prune(self, before: datetime) -> int:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("store away")
        return await super().prune(before)


async def test_a_failed_prune_is_tried_again_at_the_next_interval() -> None:
    clock, store, ticks = FakeClock(), FailingOnce(), Ticks()
    await store.add(appeal("old", clock.now() - KEEP - timedelta(days=1)))
    pruner = Pruner(store, clock, keep=KEEP, interval_seconds=60, sleep=ticks.sleep)
    await pruner.start()
    try:
        await ticks.settle()  # the first round fails
        assert (store.calls, set(store.appeals)) == (1, {"old"})
        await ticks.tick()
        assert (store.calls, store.appeals) == (2, {})
    finally:
        await pruner.stop()
