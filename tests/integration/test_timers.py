"""Durable timers on the real store: racing sweepers, reschedules, crashed claims."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.timers import MongoTimers, Timer

T0 = datetime(2026, 11, 27, 2, tzinfo=UTC)
LEASE = timedelta(minutes=5)


async def test_two_sweepers_with_their_own_clients_fire_500_timers_exactly_once(
    stack: StackSettings, run_id: str
) -> None:
    db = f"itest_timers_{run_id}"
    clients = [AsyncMongoClient(stack.mongo_uri, tz_aware=True) for _ in range(3)]
    try:
        writer = MongoTimers(clients[0], db)
        await asyncio.gather(
            *(
                writer.schedule(f"c{i}:feedback", T0 - timedelta(seconds=i % 90), {"i": i}, now=T0)
                for i in range(500)
            )
        )
        fired: list[list[Timer]] = [[], []]
        lost = [0, 0]  # inserts refused because the other sweeper's came first

        async def sweep(n: int) -> None:
            sweeper = MongoTimers(clients[n + 1], db)
            insert = sweeper._store.insert

            async def counted(collection: str, doc: dict[str, Any]) -> bool:
                inserted = await insert(collection, doc)
                lost[n] += not inserted
                return inserted

            sweeper._store.insert = counted  # type: ignore[method-assign]
            while batch := await sweeper.claim_due(T0, 50, LEASE):
                fired[n].extend(batch)

        await asyncio.gather(sweep(0), sweep(1))
        keys = [t.key for t in fired[0] + fired[1]]
        assert len(keys) == len(set(keys)) == 500, (len(keys), len(set(keys)))
        # They raced (one may still win them all: its claims can go to the store together).
        assert sum(lost) > 0 or (fired[0] and fired[1]), (lost, len(fired[0]), len(fired[1]))
    finally:
        await clients[0].drop_database(db)
        for client in clients:
            await client.close()


async def test_a_rescheduled_timer_fires_only_at_its_new_time(
    stack: StackSettings, run_id: str
) -> None:
    db = f"itest_timers_{run_id}"
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    try:
        timers = MongoTimers(client, db)
        await timers.schedule("c:feedback", T0 + timedelta(hours=1), {"n": 1}, now=T0)
        await timers.schedule("c:feedback", T0 + timedelta(days=2), {"n": 2}, now=T0)
        assert await timers.claim_due(T0 + timedelta(hours=3), 10, LEASE) == []
        [fired] = await timers.claim_due(T0 + timedelta(days=2), 10, LEASE)
        assert fired.payload == {"n": 2} and fired.due_at == T0 + timedelta(days=2)
        assert await timers.complete(fired, now=T0 + timedelta(days=2))
        assert await timers.claim_due(T0 + timedelta(days=5), 10, LEASE) == []
    finally:
        await client.drop_database(db)
        await client.close()


async def test_a_crashed_claim_is_fired_again_after_its_lease_by_another_replica(
    stack: StackSettings, run_id: str
) -> None:
    db = f"itest_timers_{run_id}"
    clients = [AsyncMongoClient(stack.mongo_uri, tz_aware=True) for _ in range(2)]
    try:
        crashed, survivor = MongoTimers(clients[0], db), MongoTimers(clients[1], db)
        await crashed.schedule("c:signing", T0, {"hop": 1}, now=T0)
        [claim] = await crashed.claim_due(T0, 10, LEASE)  # ... and the replica dies
        assert await survivor.claim_due(T0 + LEASE / 2, 10, LEASE) == []
        [again] = await survivor.claim_due(T0 + LEASE, 10, LEASE)
        assert again.key == claim.key and again.attempt == 2
        assert await survivor.complete(again, now=T0 + LEASE)
        assert not await crashed.complete(claim, now=T0 + LEASE)
        assert await survivor.claim_due(T0 + timedelta(days=1), 10, LEASE) == []
    finally:
        await clients[0].drop_database(db)
        for client in clients:
            await client.close()
