"""How long does one timer sweep take with 100,000 pending timers? (target: under 1 s)

    .venv/bin/python bench/timers.py [--timers 100000] [--due 1000]

Uses FENGQIAO_MONGO_URI (the local stack is started, or reused, through `fengqiao.stack.up`).
The timers are written as `MongoTimers.schedule` writes them (a version document and a wake
entry each), in bulk so that seeding stays quick; most are due in the next 30 days, `--due` of
them fell due in the last 10 hours. The figure is the sweep's read (the due wake entries, what
`claim_due` scans) and, separately, claiming them. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from machine import machine, store_name
from pymongo import AsyncMongoClient

from fengqiao import stack
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters import timer_store as ts
from fengqiao.services.tracker.adapters import timers as t

NOW = datetime(2026, 11, 27, 4, tzinfo=UTC)
DATABASE = "bench_timers"


def documents(count: int, due: int) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    rng = random.Random(7)
    versions: list[dict[str, Any]] = []
    buckets: dict[str, list[dict[str, Any]]] = {}
    for i in range(count):
        if i < due:
            at = NOW - timedelta(seconds=rng.randint(1, 10 * 3600))
        else:
            at = NOW + timedelta(seconds=rng.randint(60, 30 * 86400))
        # What `schedule` writes, without its per-timer round trips.
        doc = ts.version_doc(f"case-{i:06d}:feedback", 1, ts.PENDING, at, at, {"i": i}, 0)
        versions.append(doc)
        entry = ts.wake_entry(doc, at)
        buckets.setdefault(ts.bucket(max(at, NOW - timedelta(hours=10))), []).append(entry)
    return versions, buckets


async def run(uri: str, count: int, due: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    db = client[DATABASE]
    try:
        await client.drop_database(DATABASE)
        store = await store_name(db)
        versions, buckets = documents(count, due)
        started = time.perf_counter()
        await db[t.VERSIONS].insert_many(versions, ordered=False)
        for name, entries in buckets.items():
            await db[name].insert_many(entries, ordered=False)
        print(f"seeded {count:,} timers ({due:,} due) in {time.perf_counter() - started:.1f} s")

        timers = t.MongoTimers(client, DATABASE)
        reads = []
        for _ in range(3):
            started = time.perf_counter()
            found = await timers._due_entries(NOW, limit=due + 1000)
            reads.append(time.perf_counter() - started)
            assert len(found) == due, len(found)
        started = time.perf_counter()
        claimed = 0
        while batch := await timers.claim_due(NOW, 500, timedelta(minutes=5)):
            claimed += len(batch)
        claim_s = time.perf_counter() - started
        assert claimed == due, claimed
        print(
            f"RESULT timers: sweep read of {due:,} due among {count:,} pending timers: "
            f"best {min(reads) * 1000:.0f} ms, worst {max(reads) * 1000:.0f} ms "
            f"({'under' if max(reads) < 1 else 'OVER'} the 1 s target); "
            f"claiming all {claimed:,}: {claim_s:.1f} s ({claim_s / claimed * 1000:.1f} ms each) "
            f"| machine: {machine()}; store: {store}",
            flush=True,
        )
    finally:
        await client.drop_database(DATABASE)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    settings = StackSettings()
    stack.up(settings)
    asyncio.run(asyncio.wait_for(run(settings.mongo_uri, args.timers, args.due), timeout=900))


if __name__ == "__main__":
    main()
