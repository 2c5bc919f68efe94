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

- `timer_versions`: every change of a timer inserts its next version,
  `_id = "<key>#<version>"` (version 1, 2, 3, … without gaps; old versions are kept until the key
  is purged). The unique `_id` lets exactly
  one of several racing writers (schedule, cancel, claim, complete, from any replica) create
  version v+1: each step is one single-document insert (the inserts of many timers go to the
  store together, each still checked on its own `_id`), and the loser re-reads.
  A version's state is pending (wakes at due_at), claimed (wakes when its lease ends), done,
  cancelled or void. The latest version is found by point lookups on `_id` (galloping search).
- `timer_wake_<YYYYMMDDHH>` (UTC hour): a wake entry `_id = "<key>#<version>@<wake ms>"` for each
  version that must wake, written BEFORE the version itself, into the bucket of
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
import copy
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from fengqiao.runtime.store import GroupInsert, move_collections
from fengqiao.services.tracker.adapters.recent import Recent

log = logging.getLogger("fengqiao.tracker.timers")

__all__ = [
    "BUCKET_RETENTION",
    "VERSIONS",
    "InMemoryTimers",
    "MongoTimers",
    "StoredTimers",
    "Timer",
    "TimerConflict",
    "Timers",
    "fire_due",
    "timer_key",
]

VERSIONS = "timer_versions"  # every timer's versions, found by `_id`
# Stores written before deploy/ferretdb/patches.json spread versions over 256 collections
# `timer_versions_000`…`_255` (FerretDB answered even a lookup by `_id` by reading the whole
# table); `MongoTimers.ensure_indexes` moves them into VERSIONS. One collection lets the inserts
# of many timers go together (GroupInsert).
OLD_VERSION_SHARDS = re.compile(rf"^{VERSIONS}_\d{{3}}$")
BUCKET_PREFIX = "timer_wake_"
BUCKET_RETENTION = dt.timedelta(days=1)
MAX_ATTEMPTS = 50
SIDE_BY_SIDE = 16  # timers claimed (and fired) at once by one sweep
KNOWN_TIMERS = 50_000  # timers whose latest version this process remembers (a guess, see below)

PENDING, CLAIMED, DONE, CANCELLED, VOID = "pending", "claimed", "done", "cancelled", "void"
LIVE = frozenset({PENDING, CLAIMED})


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


class Store(Protocol):
    """The storage the algorithm needs: unique inserts, point reads, small scans."""

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        """Insert; False when a document with that `_id` exists."""

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    async def delete(self, collection: str, doc_id: str) -> None: ...

    async def buckets(self) -> list[str]:
        """The names of the wake-entry collections."""

    async def due(self, collection: str, now: dt.datetime) -> list[dict[str, Any]]:
        """The entries of a bucket with `wake_at <= now`."""

    async def drop_if_empty(self, collection: str) -> None: ...

    async def count(self, collection: str) -> int: ...


class StoredTimers:
    """The timer algorithm over a `Store` (see the module docstring).

    It remembers the latest version of each timer it wrote or read (`_known`), as the guess to
    build the next version on: versions are never deleted, so a stale guess only makes the insert
    of the next version fail, and the timer is read again. A timer it has not seen is guessed to
    be new (version 1), which saves the search for the latest version of most schedules."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: Recent[str, dict[str, Any]] = Recent(KNOWN_TIMERS)

    async def schedule(
        self, key: str, due_at: dt.datetime, payload: dict[str, Any], *, now: dt.datetime
    ) -> Timer:
        due, now = _instant(due_at), _instant(now)
        return await self._next(
            key, now, lambda _: (PENDING, due, due, dict(payload), 0), self._known.get(key)
        )

    async def cancel(self, key: str, *, now: dt.datetime) -> bool:
        latest = self._known.get(key)
        if latest is None or latest["state"] not in LIVE:
            # Only a live timer is cancelled: check that no later version made it live again.
            latest = await self._latest(key, known=latest)
        if latest is None or latest["state"] not in LIVE:
            return False
        await self._next(
            key, _instant(now), lambda d: (CANCELLED, d["due_at"], None, d["payload"], 0), latest
        )
        return True

    async def get(self, key: str) -> Timer | None:
        latest = await self._latest(key)
        return _timer(latest) if latest is not None and latest["state"] in LIVE else None

    async def claim_due(self, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Timer]:
        """Claim up to `limit` due timers: different timers side by side (up to SIDE_BY_SIDE),
        the entries of one timer one after the other, in the order they fell due."""
        now = _instant(now)
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
        doc = _version_doc(
            timer.key, timer.version + 1, DONE, timer.due_at, None, timer.payload, timer.attempt
        )
        return await self._write(doc, _instant(now))

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
            doc = _version_doc(key, version, state, due, wake, payload, attempt)
            if await self._write(doc, now):
                return _timer(doc)
            latest = await self._latest(key, at_least=version)
        raise TimerConflict(f"timer {key}: {MAX_ATTEMPTS} concurrent writes in a row")

    async def _write(self, doc: dict[str, Any], now: dt.datetime) -> bool:
        """Insert a version; its wake entry first, so no version that must wake lacks one."""
        wake = doc["wake_at"]
        if wake is not None:
            entry = {
                "_id": f"{doc['_id']}@{_ms(wake)}",
                "key": doc["key"],
                "version": doc["version"],
                "wake_at": wake,
            }
            await self._store.insert(_bucket(max(wake, now)), entry)
        if await self._store.insert(VERSIONS, doc):
            self._known.put(doc["key"], doc)
            return True
        self._known.forget(doc["key"])
        return False

    async def _wake(
        self, entry: dict[str, Any], now: dt.datetime, lease: dt.timedelta
    ) -> Timer | None:
        key, version = entry["key"], entry["version"]
        doc = await self._store.get(VERSIONS, _version_id(key, version))
        if doc is None:
            await self._void(key, version, now)
            latest = await self._latest(key, at_least=version)
        else:
            latest = await self._latest(key, known=doc)
        assert latest is not None  # version exists now
        claimed: Timer | None = None
        wake = _read_instant(latest.get("wake_at"))
        if wake is not None and wake <= now:
            claim = _version_doc(
                key,
                latest["version"] + 1,
                CLAIMED,
                _read_instant(latest["due_at"]),
                now + lease,
                latest["payload"],
                latest["attempt"] + 1,
            )
            if await self._write(claim, now):
                claimed = _timer(claim)
        await self._store.delete(_bucket_of(entry), entry["_id"])
        return claimed

    async def _void(self, key: str, version: int, now: dt.datetime) -> None:
        """Fill version `version` with a copy of the one before (its writer crashed or lost)."""
        before = await self._store.get(VERSIONS, _version_id(key, version - 1))
        if before is None:
            doc = _version_doc(key, version, VOID, now, None, {}, 0)
        else:
            doc = {**before, "_id": _version_id(key, version), "version": version}
        await self._write(doc, now)  # losing to the real writer is as good

    async def _latest(
        self, key: str, at_least: int = 0, *, known: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The latest version of `key` (versions have no gaps): gallop, then bisect; from a
        `known` version document, or one that exists (`at_least`)."""
        low, low_doc = 0, None
        if known is not None:
            low, low_doc = known["version"], known
        elif at_least:
            low_doc = await self._store.get(VERSIONS, _version_id(key, at_least))
            low = at_least if low_doc is not None else 0
        step = 1
        while (found := await self._store.get(VERSIONS, _version_id(key, low + step))) is not None:
            low, low_doc, step = low + step, found, step * 2
        high = low + step  # missing
        while high - low > 1:
            middle = (low + high) // 2
            found = await self._store.get(VERSIONS, _version_id(key, middle))
            if found is None:
                high = middle
            else:
                low, low_doc = middle, found
        if low_doc is not None:
            self._known.put(key, low_doc)
        return low_doc

    async def _due_entries(self, now: dt.datetime, limit: int) -> list[dict[str, Any]]:
        current = _bucket(now)
        entries: list[dict[str, Any]] = []
        for bucket in sorted(await self._store.buckets()):
            if bucket > current or len(entries) >= limit:
                break
            due = await self._store.due(bucket, now)
            if not due and bucket < _bucket(now - BUCKET_RETENTION):
                await self._store.drop_if_empty(bucket)
            for entry in due:
                entry["_bucket"] = bucket
            entries += sorted(due, key=lambda e: (_read_instant(e["wake_at"]), e["_id"]))
        return entries[:limit]


# -- documents ----------------------------------------------------------------------------------


def _version_id(key: str, version: int) -> str:
    return f"{key}#{version:010d}"


def _version_doc(
    key: str,
    version: int,
    state: str,
    due_at: dt.datetime,
    wake_at: dt.datetime | None,
    payload: dict[str, Any],
    attempt: int,
) -> dict[str, Any]:
    return {
        "_id": _version_id(key, version),
        "key": key,
        "version": version,
        "state": state,
        "due_at": _instant(due_at),
        "wake_at": _instant(wake_at) if wake_at is not None else None,
        "payload": payload,
        "attempt": attempt,
    }


def _timer(doc: dict[str, Any]) -> Timer:
    return Timer(
        key=doc["key"],
        due_at=_read_instant(doc["due_at"]),
        payload=doc["payload"],
        version=doc["version"],
        state=doc["state"],
        attempt=doc["attempt"],
        lease_until=_read_instant(doc["wake_at"]) if doc["state"] == CLAIMED else None,
    )


def _bucket(at: dt.datetime) -> str:
    if at.tzinfo is not dt.UTC:
        at = at.astimezone(dt.UTC)
    return f"{BUCKET_PREFIX}{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}"


def _bucket_of(entry: dict[str, Any]) -> str:
    return str(entry["_bucket"])


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _instant(at: dt.datetime) -> dt.datetime:
    """UTC, to the millisecond (what BSON keeps), so the fake and Mongo agree."""
    if at.tzinfo is not dt.UTC:  # else UTC already (most are: made by this function)
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"naive datetime {at.isoformat()}: give it a time zone")
        at = at.astimezone(dt.UTC)
    if at.microsecond % 1000:
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    return at


def _read_instant(value: Any) -> Any:
    # A client without tz_aware=True returns naive UTC datetimes.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# -- stores -------------------------------------------------------------------------------------


class MongoStore:
    """The `Store` on MongoDB (or FerretDB): one database, the tracker's own."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._db = client[database]
        self._inserts = GroupInsert(self._db)

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self._db

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        return await self._inserts.insert(collection, doc)

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return await self._db[collection].find_one({"_id": doc_id})

    async def delete(self, collection: str, doc_id: str) -> None:
        await self._db[collection].delete_one({"_id": doc_id})

    async def buckets(self) -> list[str]:
        names = await self._db.list_collection_names()
        return [n for n in names if n.startswith(BUCKET_PREFIX)]

    async def due(self, collection: str, now: dt.datetime) -> list[dict[str, Any]]:
        return await self._db[collection].find({"wake_at": {"$lte": now}}).to_list()

    async def drop_if_empty(self, collection: str) -> None:
        if await self._db[collection].count_documents({}, limit=1) == 0:
            await self._db.drop_collection(collection)

    async def count(self, collection: str) -> int:
        return await self._db[collection].count_documents({})


class MemoryStore:
    """The `Store` in memory, with the same semantics (tests inspect `collections`)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        docs = self.collections.setdefault(collection, {})
        if doc["_id"] in docs:
            return False
        docs[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        doc = self.collections.get(collection, {}).get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def delete(self, collection: str, doc_id: str) -> None:
        self.collections.get(collection, {}).pop(doc_id, None)

    async def buckets(self) -> list[str]:
        return [n for n in self.collections if n.startswith(BUCKET_PREFIX)]

    async def due(self, collection: str, now: dt.datetime) -> list[dict[str, Any]]:
        docs = self.collections.get(collection, {}).values()
        return [copy.deepcopy(d) for d in docs if d["wake_at"] <= now]

    async def drop_if_empty(self, collection: str) -> None:
        if not self.collections.get(collection):
            self.collections.pop(collection, None)

    async def count(self, collection: str) -> int:
        return len(self.collections.get(collection, {}))


class MongoTimers(StoredTimers):
    """Durable timers in the tracker's MongoDB database."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._mongo = MongoStore(client, database)
        super().__init__(self._mongo)

    async def ensure_indexes(self) -> None:
        """No index to create (every lookup is by `_id`, buckets are small); moves the versions
        of a store written before into the one collection (run before the tracker starts, with
        no older tracker running: one that still wrote to the old collections would lose them).
        """
        moved = await move_collections(self._mongo.database, OLD_VERSION_SHARDS, VERSIONS)
        for name, count in moved.items():
            log.info("timers: moved %d versions from %s into %s", count, name, VERSIONS)


class InMemoryTimers(StoredTimers):
    """The fake for tests: the same algorithm over `MemoryStore` (`self.store`)."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        super().__init__(self.store)
