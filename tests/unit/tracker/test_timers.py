"""Durable timers, on the in-memory store (the same algorithm as on MongoDB)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fengqiao.services.tracker.adapters.timers import (
    VERSIONS,
    InMemoryTimers,
    StoredTimers,
    Timer,
    fire_due,
    timer_key,
)

T0 = datetime(2025, 3, 10, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def test_a_timer_fires_once_when_due_and_not_before() -> None:
    timers = InMemoryTimers()
    key = timer_key("c1", "feedback")
    await timers.schedule(key, T0 + timedelta(hours=1), {"deadline": "x"}, now=T0)
    assert await timers.claim_due(T0 + timedelta(minutes=59), 10, LEASE) == []
    [fired] = await timers.claim_due(T0 + timedelta(hours=1), 10, LEASE)
    assert fired.key == key and fired.payload == {"deadline": "x"} and fired.attempt == 1
    assert await timers.complete(fired, now=T0 + timedelta(hours=1))
    assert await timers.claim_due(T0 + timedelta(days=3), 10, LEASE) == []
    assert await timers.get(key) is None


async def test_rescheduling_replaces_the_timer() -> None:
    timers = InMemoryTimers()
    await timers.schedule("c1:feedback", T0 + timedelta(hours=1), {"n": 1}, now=T0)
    await timers.schedule("c1:feedback", T0 + timedelta(hours=5), {"n": 2}, now=T0)
    assert await timers.claim_due(T0 + timedelta(hours=2), 10, LEASE) == []
    [fired] = await timers.claim_due(T0 + timedelta(hours=5), 10, LEASE)
    assert fired.payload == {"n": 2}
    await timers.complete(fired, now=T0 + timedelta(hours=5))
    assert await timers.claim_due(T0 + timedelta(hours=9), 10, LEASE) == []


async def test_rescheduling_earlier_fires_at_the_new_time_only() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0 + timedelta(hours=5), {"n": 1}, now=T0)
    await timers.schedule("k", T0 + timedelta(hours=1), {"n": 2}, now=T0)
    [fired] = await timers.claim_due(T0 + timedelta(hours=1), 10, LEASE)
    assert fired.payload == {"n": 2}
    await timers.complete(fired, now=T0 + timedelta(hours=1))
    assert await timers.claim_due(T0 + timedelta(hours=6), 10, LEASE) == []


async def test_a_cancelled_timer_never_fires() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0, {}, now=T0)
    assert await timers.cancel("k", now=T0)
    assert not await timers.cancel("k", now=T0)
    assert await timers.claim_due(T0 + timedelta(days=1), 10, LEASE) == []


async def test_a_claim_not_completed_fires_again_after_its_lease() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0, {"n": 1}, now=T0)
    [first] = await timers.claim_due(T0, 10, LEASE)  # the handler crashes: no complete
    assert await timers.claim_due(T0 + LEASE - timedelta(seconds=1), 10, LEASE) == []
    [again] = await timers.claim_due(T0 + LEASE, 10, LEASE)
    assert again.attempt == 2 and again.payload == {"n": 1}
    assert not await timers.complete(first, now=T0 + LEASE)  # the old claim is superseded
    assert await timers.complete(again, now=T0 + LEASE)


async def test_a_restart_fires_everything_that_fell_due_meanwhile() -> None:
    timers = InMemoryTimers()
    for i in range(30):
        await timers.schedule(f"c{i}:feedback", T0 + timedelta(hours=i), {"i": i}, now=T0)
    restarted = StoredTimers(timers.store)  # a new process over the same store
    fired = await restarted.claim_due(T0 + timedelta(days=2), 100, LEASE)
    assert sorted(t.payload["i"] for t in fired) == list(range(30))


async def test_two_sweepers_racing_fire_each_timer_once() -> None:
    timers = InMemoryTimers()
    for i in range(200):
        await timers.schedule(f"c{i}:x", T0 - timedelta(seconds=i), {}, now=T0 - timedelta(hours=1))
    a, b = StoredTimers(timers.store), StoredTimers(timers.store)
    fired: list[Timer] = []

    async def sweep(sweeper: StoredTimers) -> None:
        while batch := await sweeper.claim_due(T0, 25, LEASE):
            fired.extend(batch)
            await asyncio.sleep(0)

    await asyncio.gather(sweep(a), sweep(b))
    assert sorted(t.key for t in fired) == sorted(f"c{i}:x" for i in range(200))


async def test_a_writer_that_crashed_after_its_wake_entry_changes_nothing() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0 + timedelta(hours=1), {"n": 1}, now=T0)
    # A reschedule to T0 wrote its wake entry for version 2, then crashed.
    versions = timers.store.collections[VERSIONS]
    await timers.schedule("k", T0, {"n": 2}, now=T0)
    versions.pop("k#0000000002")
    assert await timers.claim_due(T0, 10, LEASE) == []  # version 2 filled as a copy of 1
    [fired] = await timers.claim_due(T0 + timedelta(hours=1), 10, LEASE)
    assert fired.payload == {"n": 1}


async def test_a_writer_that_lost_to_the_sweeper_writes_the_next_version() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0, {"n": 1}, now=T0)
    [claimed] = await timers.claim_due(T0, 10, LEASE)
    timer = await timers.schedule("k", T0 + timedelta(hours=2), {"n": 2}, now=T0)
    assert timer.version == claimed.version + 1
    assert not await timers.complete(claimed, now=T0)
    assert (await timers.get("k")) == timer


async def test_fire_due_completes_what_it_handled_and_leaves_failures_to_the_lease() -> None:
    timers = InMemoryTimers()
    await timers.schedule("ok", T0, {}, now=T0)
    await timers.schedule("bad", T0 + timedelta(seconds=1), {}, now=T0)
    seen: list[str] = []

    async def handle(timer: Timer) -> None:
        seen.append(timer.key)
        if timer.key == "bad":
            raise RuntimeError("handler crashed")

    now = T0 + timedelta(seconds=1)
    with pytest.raises(RuntimeError, match="handler crashed"):
        await fire_due(timers, now, handle, lease=LEASE)
    assert seen == ["ok", "bad"]
    assert await timers.get("ok") is None
    assert await fire_due(timers, now + LEASE, lambda t: asyncio.sleep(0), lease=LEASE) == 1
    assert await timers.get("bad") is None


async def test_old_empty_buckets_are_dropped() -> None:
    timers = InMemoryTimers()
    await timers.schedule("k", T0, {}, now=T0)
    [t] = await timers.claim_due(T0, 10, LEASE)
    await timers.complete(t, now=T0)
    await timers.claim_due(T0 + timedelta(hours=1), 10, LEASE)
    assert len(await timers.store.buckets()) == 1  # emptied but recent
    await timers.claim_due(T0 + timedelta(days=2), 10, LEASE)
    assert await timers.store.buckets() == []
