"""Seed a stack's store with closed cases, as the services would have left them.

    source env.sh && .venv/bin/fengqiao stack up
    .venv/bin/python bench/seed.py                      # 200,000 cases over the past 90 days
    .venv/bin/python bench/seed.py --cases 50000 --only tracker

Each case lives its life through the services' own code in memory (`seed_lives.py`: the
router's domain, the tracker's unit of work and domain, the notifier's sender), from the appeal
to the citizen's 满意 that closes it, and the documents it leaves are written to the services'
databases (FENGQIAO_MONGO_URI): the tracker's case versions (stubs below the latest), `cases`
views, `unit_cases_*` entries and timer versions (done or cancelled: none pending); the router's
routing versions; the notifier's outbox claims and results (acknowledgment, dispatch notice,
progress, resolution, callback question: sent). Not intake's recent appeals (see
docs/performance.md).

Received instants are spread over `--since`..`--days` days before today (UTC midnight), so some
fall in the tracker's 30-day figures window. Ids are deterministic from `--seed` (`seed<seed>-
<index>`): a re-run skips the chunks of cases already written (each part's marker: the last
document it writes for a chunk) and ignores duplicates of a chunk it finishes. Writes are
`insert_many(ordered=False)` of `--batch` documents; `--workers` processes share the chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_lives import Docs, Lives, documents, live, places, plan

from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.store import ShardedCollection
from fengqiao.services.notifier.settings import NotifierSettings
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.tracker.settings import TrackerSettings


def databases() -> dict[str, str]:
    """Each part's database, as its service finds it (FENGQIAO_<SERVICE>_DATABASE)."""
    return {
        "tracker": TrackerSettings().database,
        "notifier": NotifierSettings().database,
        "router": RouterSettings().database,
    }


PARTS = ("tracker", "notifier", "router")
DUPLICATE = 11000


def case_id(seed: int, index: int) -> str:
    return f"seed{seed}-{index:07d}"


def markers(seed: int, last: int) -> dict[str, tuple[str, str]]:
    """Each part's last document of the chunk whose last case is `last`: (collection, _id)."""
    case = case_id(seed, last)
    return {
        "tracker": ("cases", case),
        "notifier": ("results", f"{case}:acknowledgment:0"),
        "router": ("routing", f"{case}:00000001"),
    }


def last_first(docs: Docs, seed: int, last: int) -> Docs:
    """The documents with each part's marker written last (a chunk is done when it exists)."""
    for part, (collection, marker) in markers(seed, last).items():
        rows = docs[part].pop(collection)
        docs[part][collection] = [d for d in rows if d["_id"] != marker] + [
            d for d in rows if d["_id"] == marker
        ]
    return docs


async def insert(collection: Any, rows: list[dict[str, Any]], batch: int) -> int:
    """Insert `rows` in batches, unordered; duplicates (a re-run) are skipped. Rows inserted."""
    inserted = 0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        try:
            inserted += len((await collection.insert_many(chunk, ordered=False)).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE for e in errors):
                raise
            inserted += len(chunk) - len(errors)
    return inserted


class Seeder:
    """One worker: the chunks `worker`, `worker + workers`, ... of the cases."""

    def __init__(self, args: argparse.Namespace, worker: int) -> None:
        self.args, self.worker = args, worker
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            StackSettings().mongo_uri, tz_aware=True
        )
        self.parts = [args.only] if args.only else list(PARTS)
        self.databases = databases()
        self.anchor = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.shards = ShardedCollection(self.client[self.databases["tracker"]], "unit_cases")

    async def missing(self, last: int) -> list[str]:
        """The parts whose marker for the chunk is not written yet."""
        found = []
        for part in self.parts:
            collection, marker = markers(self.args.seed, last)[part]
            db = self.client[self.databases[part]]
            if await db[collection].find_one({"_id": marker}, {"_id": 1}) is None:
                found.append(part)
        return found

    async def write(self, docs: Docs, parts: list[str]) -> int:
        written = 0
        for part in parts:
            db = self.client[self.databases[part]]
            for collection, rows in docs[part].items():
                written += await insert(db[collection], rows, self.args.batch)
        return written

    async def run(self) -> tuple[int, int]:
        args, size = self.args, self.args.chunk
        chunks = range(self.worker, (args.cases + size - 1) // size, args.workers)
        started, cases, written, pending = time.monotonic(), 0, 0, None
        for done_chunks, chunk in enumerate(chunks, start=1):
            first, last = chunk * size, min(args.cases, (chunk + 1) * size) - 1
            parts = await self.missing(last)
            if parts:
                docs = await self.live_chunk(first, last)
                if pending is not None:
                    written += await pending
                pending = asyncio.ensure_future(self.write(docs, parts))
            cases += last - first + 1
            self.progress(done_chunks, len(chunks), cases, written, started)
        if pending is not None:
            written += await pending
        await self.client.close()
        return cases, written

    async def live_chunk(self, first: int, last: int) -> Docs:
        lives, args = Lives(), self.args
        names = places(lives.router)
        for index in range(first, last + 1):
            await live(
                lives,
                plan(
                    case_id(args.seed, index),
                    index,
                    args.seed,
                    names,
                    args.since,
                    args.days,
                    self.anchor,
                ),
            )
        return last_first(documents(lives, self.shards), args.seed, last)

    def progress(self, done: int, total: int, cases: int, written: int, started: float) -> None:
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done)
        print(
            f"[worker {self.worker}] {cases:,} cases ({done}/{total} chunks), "
            f"{written:,} docs, {written / max(elapsed, 1e-9):,.0f} docs/s, "
            f"{elapsed:,.0f} s, ETA {eta:,.0f} s",
            flush=True,
        )


def work(args: argparse.Namespace, worker: int) -> None:
    cases, written = asyncio.run(Seeder(args, worker).run())
    print(f"[worker {worker}] done: {cases:,} cases, {written:,} documents written", flush=True)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200_000, help="closed cases to seed")
    parser.add_argument("--days", type=float, default=90.0, help="received up to so many days ago")
    parser.add_argument("--since", type=float, default=14.0, help="received at least so long ago")
    parser.add_argument("--seed", type=int, default=1, help="makes the ids and the lives")
    parser.add_argument("--only", choices=PARTS, help="seed one service's database only")
    parser.add_argument("--batch", type=int, default=1000, help="documents per insert_many")
    parser.add_argument("--chunk", type=int, default=500, help="cases lived and written together")
    parser.add_argument("--workers", type=int, default=2, help="processes sharing the chunks")
    return parser


async def seed(**options: Any) -> tuple[int, int]:
    """Seed in this process (one worker): the cases and the documents written. `options`: the
    command's, e.g. `seed(cases=200, seed=7)`."""
    args = parser().parse_args([])
    vars(args).update(options, workers=1)
    return await Seeder(args, 0).run()


def main() -> int:
    cli = parser()
    args = cli.parse_args()
    if args.since < 13 or args.days <= args.since:
        cli.error("--since must be at least 13 days (a life, holidays too) and below --days")
    started = time.monotonic()
    if args.workers == 1:
        work(args, 0)
    else:
        procs = [multiprocessing.Process(target=work, args=(args, w)) for w in range(args.workers)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        if any(proc.exitcode for proc in procs):
            return 1
    print(f"seeded {args.cases:,} cases in {time.monotonic() - started:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
