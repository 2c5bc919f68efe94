"""bench/tracker.py --mode store|memory: `UnitOfWork.apply` with the real repositories."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from machine import store_name
from pymongo import AsyncMongoClient
from tracker_lives import (
    EVENTS_PER_CASE,
    CountingOutbox,
    bench_lives,
    case_messages,
    change_for,
    create_collections,
    wrong_cases,
)

from fengqiao.contracts import (
    CaseMessage,
)
from fengqiao.runtime.messaging import DirectProducer, ensure_topics
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository, MongoCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes, MongoIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers, MongoTimers
from fengqiao.services.tracker.handlers import PUBLISHES
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.services.tracker.unit_of_work import UnitOfWork


async def make_store(
    client: AsyncMongoClient[dict[str, Any]], database: str, outbox: Any, in_memory: bool
) -> tuple[Any, UnitOfWork]:
    """The repository and the `UnitOfWork` over it, as the app builds them."""
    # As the service records done outboxes: a while after a burst (TrackerSettings).
    settle = TrackerSettings.model_fields["settle_seconds"].default or None
    if in_memory:  # the process's own ceiling: the domain, documents, Kafka; no store
        repo: Any = InMemoryCaseRepository()
        return repo, UnitOfWork(
            repo, outbox, InMemoryIndexes(), InMemoryTimers(), settle_after=settle
        )
    repo = MongoCaseRepository(client, database)
    await repo.ensure_indexes()
    # The tables a running tracker has: creating one is a one-time cost, not an event's.
    await create_collections(client[database])
    indexes, timers = MongoIndexes(client, database), MongoTimers(client, database)
    return repo, UnitOfWork(repo, outbox, indexes, timers, settle_after=settle)


class Driver:
    """Hands the cases' messages to the store: `concurrency` cases in flight, each case's
    messages one after the other (`live`), or step by step in batches (`in_batches`)."""

    def __init__(self, store: UnitOfWork, concurrency: int, batch: int) -> None:
        self.store, self.concurrency, self.batch = store, concurrency, batch
        self.rules = domain.Rules.default("tracker")
        self.gate = asyncio.Semaphore(concurrency)
        self.latencies: list[float] = []

    async def live(self, messages: Sequence[CaseMessage]) -> None:
        async with self.gate:
            for message in messages:
                started = time.perf_counter()
                await self.store.apply(message.case_id, change_for(message, self.rules))
                self.latencies.append(time.perf_counter() - started)

    async def in_batches(self, lives: Sequence[Sequence[CaseMessage]]) -> None:
        """Step by step (every case's appeal, then every first hop, ...), `batch` cases'
        messages per `apply_many`, as a batch subscriber hands over what one poll of a topic
        returned; `concurrency` cases in flight."""
        batches = [lives[i : i + self.batch] for i in range(0, len(lives), self.batch)]
        in_flight = asyncio.Semaphore(max(1, self.concurrency // self.batch))

        async def apply(messages: Sequence[CaseMessage]) -> None:
            async with in_flight:
                started = time.perf_counter()
                results = await self.store.apply_many(
                    [(m.case_id, change_for(m, self.rules)) for m in messages]
                )
                self.latencies.append(time.perf_counter() - started)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                raise failed[0]

        for step in range(EVENTS_PER_CASE):
            await asyncio.gather(*[apply([m[step] for m in b]) for b in batches])

    async def all(self, lives: Sequence[Sequence[CaseMessage]]) -> None:
        if self.batch > 1:
            await self.in_batches(lives)
        else:
            await asyncio.gather(*[self.live(m) for m in lives])


async def run_store(
    settings: StackSettings,
    cases: int,
    concurrency: int,
    *,
    batch: int = 1,
    in_memory: bool = False,
) -> dict[str, Any]:
    database = f"bench_tracker_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    outbox = CountingOutbox(DirectProducer(settings.kafka_bootstrap, PUBLISHES, service="bench"))
    try:
        await ensure_topics(settings.kafka_bootstrap)
        await outbox.producer.start()
        repo, store = await make_store(client, database, outbox, in_memory)
        run, now = uuid.uuid4().hex[:6], datetime.now(UTC)
        lives = bench_lives(run, cases, now)
        driver = Driver(store, concurrency, batch)
        # Warm up (connections, pools, code paths) on cases that are not counted.
        await driver.all([case_messages(f"warm-{run}-{i}", i, now) for i in range(8)])
        await store.settle(everything=True)
        driver.latencies.clear()
        published_before = outbox.count
        started = time.perf_counter()
        settling = asyncio.create_task(store.run_settling())
        await driver.all(lives)
        settling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await settling
        await store.settle(everything=True)  # the last versions' records are part of the work
        await repo.flush()  # and the cases' views of them
        elapsed = time.perf_counter() - started
        latencies = sorted(driver.latencies)
        events = cases * EVENTS_PER_CASE
        return {
            "mode": "store (in-memory fakes: no store)" if in_memory else "store",
            "events": events,
            "seconds": elapsed,
            "rate": events / elapsed,
            "published": outbox.count - published_before,
            "wrong_cases": await wrong_cases(repo, lives),
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "detail": f"{cases} cases, {concurrency} in flight"
            + (f", {batch} per batch" if batch > 1 else ""),
            "store": "none (in-memory fakes)" if in_memory else await store_name(client[database]),
        }
    finally:
        await outbox.producer.stop()
        await client.drop_database(database)
        await client.close()
