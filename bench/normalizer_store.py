"""`bench/normalizer.py --store N`: the normalizer's path against the stack's real store
(`MongoRecentAppeals` on FerretDB) holding N appeals already, so the cost per appeal can be
compared as the stored appeals grow (issue 21). Needs `source env.sh` and a stack up.

Seeds N appeals of authors drawn from the bench's author space, posted in the 50 days before
the first measured post (so within the follow-up window), then normalizes the posts with
`--concurrency` tasks and prints appeals/s and FerretDB's CPU per post (from /proc). It writes
only through the store's `add` (every layout has it), so the same file measures any branch.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import timedelta
from typing import Any

from machine import CpuMeter

from fengqiao.contracts import RawPostReceived
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters import recent_mongo
from fengqiao.services.intake.handlers import normalize_raw
from fengqiao.services.intake.linking import Policy, RecentAppeal, amounts
from fengqiao.services.intake.similarity import fingerprint

SEED_TASKS = 64


def seeded(count: int, seed: int, first: Any, appeal_text: Any) -> list[RecentAppeal]:
    """`count` appeals of the bench's authors, posted in the 50 days before `first`."""
    rng = random.Random(seed + 1)
    found = []
    for i in range(count):
        text = appeal_text(rng)
        at = first - timedelta(seconds=rng.randrange(50 * 86400))
        found.append(
            RecentAppeal(
                key=f"weibo:seed{i}",
                platform="weibo",
                author=f"u{rng.randrange(100_000)}",
                post_id=f"seed{i}",
                event_id=f"e-seed{i}",
                case_id=f"c-seed{i}",
                posted_at=at,
                fingerprint=fingerprint(text),
                words=text,
                category="wage_arrears",
                amounts=amounts(text),
            )
        )
    return found


async def _each(jobs: list[Any], tasks: int, run: Any) -> None:
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            await run(queue.pop())

    await asyncio.gather(*(worker() for _ in range(tasks)))


def _store(client: Any, database: str) -> Any:
    return recent_mongo.MongoRecentAppeals(client, database)


async def run(
    posts: list[RawPostReceived], seeds: list[RecentAppeal], concurrency: int, meter: CpuMeter
) -> dict[str, float]:
    from pymongo import AsyncMongoClient

    settings = StackSettings()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    database = f"bench_normalizer_{uuid.uuid4().hex[:8]}"
    store, policy = _store(client, database), Policy()
    try:
        if hasattr(store, "ensure_indexes"):
            await store.ensure_indexes()
        started = time.perf_counter()
        await _each(seeds, SEED_TASKS, store.add)
        seeding = time.perf_counter() - started

        async def normalize(raw: RawPostReceived) -> None:
            await normalize_raw(raw, store, producer="bench", policy=policy)

        await _each(posts[:200], concurrency, normalize)  # warm up
        meter.start()
        started = time.perf_counter()
        await _each(posts[200:], concurrency, normalize)
        elapsed = time.perf_counter() - started
        meter.stop()
    finally:
        await client.drop_database(database)
        await client.close()
    return {"seeding": seeding, "elapsed": elapsed, "posts": len(posts) - 200}


def report(result: dict[str, float], meter: CpuMeter, stored: int) -> None:
    posts = result["posts"]
    print(f"stored:   {stored:,} appeals seeded in {result['seeding']:.1f} s")
    rate = posts / result["elapsed"]
    print(f"posts:    {posts:,.0f} in {result['elapsed']:.2f} s: {rate:,.0f}/s")
    print(meter.per_event(int(posts)).replace("per event", "per post"))
