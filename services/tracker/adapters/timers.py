"""Durable timers: reminders, deadlines and callbacks that survive restarts and replicas.

One live timer per key (e.g. `timer_key(case_id, "feedback")`). `schedule` replaces it (after an
extension the old deadline can no longer fire), `cancel` ends it, `claim_due` fires what is due
with a lease, `complete` records that the firing was handled. Firing is at least once: a claim
whose handler did not complete is fired again when its lease has run out, but never by two
replicas within one lease. Handlers must therefore be idempotent (the tracker's are: each
message is applied once per case version), and should check the timer's payload against the
case, since a firing that raced with a reschedule may still be delivered once.

## Why not one document per timer claimed with find_one_and_update

The obvious design (status field, `find_one_and_update({status: pending, due_at <= now})`) needs
atomic conditional updates. FerretDB 1.24 on SQLite (the local store) does not apply them
atomically: of 20 concurrent conditional updates of one document, up to 6 matched. Only an
insert against a unique `_id` is a reliable compare-and-set there (and on MongoDB). It also scans
the whole collection for a range filter on `due_at` (no index is used: 100,000 timers took
7–16 s per query, measured), so the sweep cannot rely on an index either.

## The design: versioned timer documents, wake entries in hourly buckets

- `timer_versions`: every change of a timer inserts its next version (a versioned record,
  `fengqiao.runtime.store.Versions`), `_id = "<key>#<version>"` (version 1, 2, 3, … without
  gaps; old versions are kept). The unique `_id` lets exactly
  one of several racing writers (schedule, cancel, claim, complete, from any replica) create
  version v+1: each step is one single-document insert (the inserts of many timers go to the
  store together, each still checked on its own `_id`), and the loser re-reads.
  A version's state is pending (wakes at due_at), claimed (wakes when its lease ends), done,
  cancelled or void. The latest version is found by point lookups on `_id` (galloping search).
- `timer_wake_<YYYYMMDDHH>` (UTC hour, see `timer_store`): a wake entry
  `_id = "<key>#<version>@<wake ms>"` for each version that must wake, written BEFORE the
  version itself, into the bucket of
  max(wake time, writer's now). The sweep reads only the buckets up to the current hour (small
  tables, whatever the number of future timers), so it stays fast on FerretDB and MongoDB alike.

A sweep takes each due entry (key, v) and:
1. reads version v. If it is missing, its writer either crashed after writing the entry or is
   about to insert it: the sweeper inserts v itself as a copy of v-1 ("void": no change). The
   unique `_id` decides: either the writer's version or the copy exists, never both, and a writer
   that lost re-reads and writes v+1.
2. finds the latest version; if it is pending and due, or claimed with its lease run out, the
   sweeper inserts latest+1 as claimed (lease until now+lease, after writing that version's wake
   entry). Exactly one racing sweeper's insert succeeds; only it fires the timer.
3. deletes the entry. That is safe because version v exists (nobody is about to write it) and
   every later version that must wake wrote its own entry before it existed.

So: two replicas never fire a timer twice within a lease (step 2); a restart fires what fell due
while it was down (entries stay until swept); a reschedule writes a new version, so the old one
is no longer the latest and cannot be claimed; a crashed claim is claimed again when its lease
entry falls due. Assumptions: replicas' clocks agree within much less than a lease, and no writer
stalls for `BUCKET_RETENTION` between computing its `now` and writing (empty buckets older than
that are dropped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import Versions
from fengqiao.services.tracker.adapters.timer_store import (
    CANCELLED,
    CLAIMED,
    DONE,
    LIVE,
    PENDING,
    VERSIONS,
    VOID,
    MemoryStore,
    MongoStore,
    Store,
    bucket,
    instant,
    read_instant,
    version_doc,
    version_id,
    wake_entry,
)

__all__ = [
    "BUCKET_RETENTION",
    "PENDING",
    "VERSIONS",
    "InMemoryTimers",
    "MemoryStore",
    "MongoTimers",
    "StoredTimers",
    "Timer",
    "TimerConflict",
    "Timers",
    "fire_due",
    "timer_key",
]

BUCKET_RETENTION = dt.timedelta(days=1)
MAX_ATTEMPTS = 50
SIDE_BY_SIDE = 16  # timers claimed (and fired) at once by one sweep
KNOWN_TIMERS = 50_000  # timers whose latest version this process remembers (a guess, see below)


class TimerConflict(Exception):
    """A timer kept changing under a writer (MAX_ATTEMPTS lost races in a row)."""


@dataclass(frozen=True)
class Timer:
    """A live timer. From `claim_due`: the claim to pass to `complete`."""

    key: str
    due_at: dt.datetime
    payload: dict[str, Any]
    version: int
    state: str
    attempt: int = 0
    lease_until: dt.datetime | None = None


def timer_key(case_id: str, purpose: str) -> str:
    """The key of a case's timer for one purpose (one live timer per key)."""
    return f"{case_id}:{purpose}"


class Timers(Protocol):
    async def schedule(
        self, key: str, due_at: dt.datetime, payload: dict[str, Any], *, now: dt.datetime
    ) -> Timer:
        """Make `key` fire at `due_at` with `payload`, replacing any live timer of that key."""

    async def cancel(self, key: str, *, now: dt.datetime) -> bool:
        """End the live timer of `key`; False when there was none."""

    async def get(self, key: str) -> Timer | None:
        """The live (pending or claimed) timer of `key`, or None."""

    async def claim_due(self, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Timer]:
        """Claim up to `limit` timers due at `now` (and claims whose lease ran out)."""

    async def complete(self, timer: Timer, *, now: dt.datetime) -> bool:
        """Record a claimed timer as handled; False if it was rescheduled, cancelled or
        re-claimed meanwhile (the firing was superseded)."""

    async def pending(self) -> int:
        """How many timers wait to wake (approximately: leases count too)."""


async def fire_due(
    timers: Timers,
    now: dt.datetime,
    handle: Callable[[Timer], Awaitable[None]],
    *,
    limit: int = 100,
    lease: dt.timedelta = dt.timedelta(minutes=5),
) -> int:
    """One sweep: claim what is due, handle each, complete it. A handler that raises leaves
    its claim to run out, so the timer fires again after the lease (the others are handled, then
    the first failure is raised). Up to `SIDE_BY_SIDE` timers are handled at once. Returns the
    number handled."""
    gate = asyncio.Semaphore(SIDE_BY_SIDE)

    async def fire(timer: Timer) -> None:
        async with gate:
            await handle(timer)
            await timers.complete(timer, now=now)

    claimed = await timers.claim_due(now, limit, lease)
    results = await asyncio.gather(*(fire(t) for t in claimed), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return len(claimed)


class StoredTimers:
    """The timer algorithm over a `Store` (see the module docstring).

    Its versions (`Versions`) remember the latest version of each timer written or read, as the
    guess to build the next version on: versions are never deleted, so a stale guess only makes
    the insert of the next version fail, and the timer is read again. A timer it has not seen is
    guessed to be new (version 1), which saves the search for the latest version of most
    schedules."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._versions = Versions(
            store,
            VERSIONS,
            id_of=version_id,
            key_field="key",
            remember=KNOWN_TIMERS,
            keep_documents=True,
        )

    async def schedule(
        self, key: str, due_at: dt.datetime, payload: dict[str, Any], *, now: dt.datetime
    ) -> Timer:
        due, now = instant(due_at), instant(now)
        return await self._next(
            key, now, lambda _: (PENDING, due, due, dict(payload), 0), await self._guess(key)
        )

    async def cancel(self, key: str, *, now: dt.datetime) -> bool:
        latest = self._versions.known(key)[1]
        if latest is None or latest["state"] not in LIVE:
            # Only a live timer is cancelled: check that no later version made it live again.
            latest = await self._versions.latest(key)
        if latest is None or latest["state"] not in LIVE:
            return False
        await self._next(
            key, instant(now), lambda d: (CANCELLED, d["due_at"], None, d["payload"], 0), latest
        )
        return True

    async def get(self, key: str) -> Timer | None:
        latest = await self._versions.latest(key, trust_known=False)
        return _timer(latest) if latest is not None and latest["state"] in LIVE else None

    async def claim_due(self, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Timer]:
        """Claim up to `limit` due timers: different timers side by side (up to SIDE_BY_SIDE),
        the entries of one timer one after the other, in the order they fell due."""
        now = instant(now)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for entry in await self._due_entries(now, limit):
            by_key.setdefault(entry["key"], []).append(entry)
        gate = asyncio.Semaphore(SIDE_BY_SIDE)

        async def wake_all(entries: list[dict[str, Any]]) -> list[Timer]:
            async with gate:
                woken = [await self._wake(entry, now, lease) for entry in entries]
            return [timer for timer in woken if timer is not None]

        claimed = await asyncio.gather(*(wake_all(entries) for entries in by_key.values()))
        return sorted((t for timers in claimed for t in timers), key=lambda t: (t.due_at, t.key))

    async def complete(self, timer: Timer, *, now: dt.datetime) -> bool:
        doc = version_doc(
            timer.key, timer.version + 1, DONE, timer.due_at, None, timer.payload, timer.attempt
        )
        return await self._write(doc, instant(now))

    async def pending(self) -> int:
        """Wake entries not yet swept: live timers and leases (a gauge for operators)."""
        return sum([await self._store.count(b) for b in await self._store.buckets()])

    # -- the steps --------------------------------------------------------------------------

    async def _next(
        self,
        key: str,
        now: dt.datetime,
        change: Callable[[dict[str, Any]], tuple[str, dt.datetime, dt.datetime | None, Any, int]],
        latest: dict[str, Any] | None,
    ) -> Timer:
        """Write the version after `latest` (a guess: None for a new timer), reading the timer
        again after each lost race."""
        for _ in range(MAX_ATTEMPTS):
            version = latest["version"] + 1 if latest else 1
            state, due, wake, payload, attempt = change(latest or {})
            doc = version_doc(key, version, state, due, wake, payload, attempt)
            if await self._write(doc, now):
                return _timer(doc)
            latest = await self._versions.latest(key)  # from the version that beat this one
        raise TimerConflict(f"timer {key}: {MAX_ATTEMPTS} concurrent writes in a row")

    async def _write(self, doc: dict[str, Any], now: dt.datetime) -> bool:
        """Insert a version; its wake entry first, so no version that must wake lacks one."""
        wake = doc["wake_at"]
        if wake is not None:
            await self._store.insert(bucket(max(wake, now)), wake_entry(doc, wake))
        return await self._versions.insert(doc["key"], doc["version"], doc)

    async def _guess(self, key: str) -> dict[str, Any] | None:
        """The version to build on: the one remembered (None for a timer never seen: most are
        new), read when only its number is remembered."""
        version, doc = self._versions.known(key)
        return doc if doc is not None or not version else await self._versions.latest(key)

    async def _wake(
        self, entry: dict[str, Any], now: dt.datetime, lease: dt.timedelta
    ) -> Timer | None:
        key, version = entry["key"], entry["version"]
        doc = await self._versions.read(key, version)
        if doc is None:
            await self._void(key, version, now)
            latest = await self._versions.latest(key)  # version exists now
        else:
            latest = await self._versions.latest(key, doc)
        assert latest is not None  # version exists now
        claimed: Timer | None = None
        wake = read_instant(latest.get("wake_at"))
        if wake is not None and wake <= now:
            claim = version_doc(
                key,
                latest["version"] + 1,
                CLAIMED,
                read_instant(latest["due_at"]),
                now + lease,
                latest["payload"],
                latest["attempt"] + 1,
            )
            if await self._write(claim, now):
                claimed = _timer(claim)
        await self._store.delete(str(entry["_bucket"]), entry["_id"])
        return claimed

    async def _void(self, key: str, version: int, now: dt.datetime) -> None:
        """Fill version `version` with a copy of the one before (its writer crashed or lost)."""
        before = await self._versions.read(key, version - 1)
        if before is None:
            doc = version_doc(key, version, VOID, now, None, {}, 0)
        else:
            doc = {**before, "_id": version_id(key, version), "version": version}
        await self._write(doc, now)  # losing to the real writer is as good

    async def _due_entries(self, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
        current = bucket(now)
        entries: list[dict[str, Any]] = []
        for name in sorted(await self._store.buckets()):
            if name > current or len(entries) >= limit:
                break
            due = await self._store.due(name, now)
            if not due and name < bucket(now - BUCKET_RETENTION):
                await self._store.drop_if_empty(name)
            for entry in due:
                entry["_bucket"] = name
            entries += sorted(due, key=lambda e: (read_instant(e["wake_at"]), e["_id"]))
        return entries[:limit]


def _timer(doc: dict[str, Any]) -> Timer:
    return Timer(
        key=doc["key"],
        due_at=read_instant(doc["due_at"]),
        payload=doc["payload"],
        version=doc["version"],
        state=doc["state"],
        attempt=doc["attempt"],
        lease_until=read_instant(doc["wake_at"]) if doc["state"] == CLAIMED else None,
    )


class MongoTimers(StoredTimers):
    """Durable timers in the tracker's MongoDB database (every lookup is by `_id`, buckets are
    small: no index to create)."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        super().__init__(MongoStore(client, database))

    async def ensure_indexes(self) -> None:
        return None


class InMemoryTimers(StoredTimers):
    """The fake for tests: the same algorithm over `MemoryStore` (`self.store`)."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        super().__init__(self.store)
