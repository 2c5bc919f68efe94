"""Where the timers live: their version documents and wake entries, and the stores that keep them.

A timer version is a versioned record (`fengqiao.runtime.store.Versions`) in `timer_versions`,
`_id = "<key>#<version:010d>"`; its wake entry (`_id = "<version id>@<wake ms>"`) lives in the
bucket of its hour, `timer_wake_<YYYYMMDDHH>` (UTC). The buckets are not a hash split: the sweep
asks for what is due (`wake_at <= now`), a range no index answers on FerretDB (100,000 timers in
one collection: 7–16 s per query, measured), so each sweep reads only the small buckets of the
hours up to now, whatever the number of future timers.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import MemoryRecords, MongoRecords, Records

VERSIONS = "timer_versions"  # every timer's versions, found by `_id`
BUCKET_PREFIX = "timer_wake_"

PENDING, CLAIMED, DONE, CANCELLED, VOID = "pending", "claimed", "done", "cancelled", "void"
LIVE = frozenset({PENDING, CLAIMED})


class Store(Records, Protocol):
    """What the timer algorithm needs: versioned records, and wake entries in buckets."""

    async def delete(self, collection: str, doc_id: str) -> None: ...

    async def buckets(self) -> list[str]:
        """The names of the wake-entry collections."""

    async def due(self, collection: str, now: dt.datetime) -> list[dict[str, Any]]:
        """The entries of a bucket with `wake_at <= now`."""

    async def drop_if_empty(self, collection: str) -> None: ...

    async def count(self, collection: str) -> int: ...


class MongoStore(MongoRecords):
    """The `Store` on MongoDB (or FerretDB): one database, the tracker's own."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        super().__init__(client, database)

    async def delete(self, collection: str, doc_id: str) -> None:
        await self.database[collection].delete_one({"_id": doc_id})

    async def buckets(self) -> list[str]:
        names = await self.database.list_collection_names()
        return [n for n in names if n.startswith(BUCKET_PREFIX)]

    async def due(self, collection: str, now: dt.datetime) -> list[dict[str, Any]]:
        return await self.database[collection].find({"wake_at": {"$lte": now}}).to_list()

    async def drop_if_empty(self, collection: str) -> None:
        if await self.database[collection].count_documents({}, limit=1) == 0:
            await self.database.drop_collection(collection)

    async def count(self, collection: str) -> int:
        return await self.database[collection].count_documents({})


class MemoryStore(MemoryRecords):
    """The `Store` in memory, with the same semantics (tests inspect `collections`)."""

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


# -- documents ----------------------------------------------------------------------------------


def version_id(key: str, version: int) -> str:
    return f"{key}#{version:010d}"


def version_doc(
    key: str,
    version: int,
    state: str,
    due_at: dt.datetime,
    wake_at: dt.datetime | None,
    payload: dict[str, Any],
    attempt: int,
) -> dict[str, Any]:
    return {
        "_id": version_id(key, version),
        "key": key,
        "version": version,
        "state": state,
        "due_at": instant(due_at),
        "wake_at": instant(wake_at) if wake_at is not None else None,
        "payload": payload,
        "attempt": attempt,
    }


def wake_entry(doc: dict[str, Any], wake: dt.datetime) -> dict[str, Any]:
    """The wake entry of a version that must wake at `wake`."""
    return {
        "_id": f"{doc['_id']}@{ms(wake)}",
        "key": doc["key"],
        "version": doc["version"],
        "wake_at": wake,
    }


def bucket(at: dt.datetime) -> str:
    if at.tzinfo is not dt.UTC:
        at = at.astimezone(dt.UTC)
    return f"{BUCKET_PREFIX}{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}"


def ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def instant(at: dt.datetime) -> dt.datetime:
    """UTC, to the millisecond (what BSON keeps), so the fake and Mongo agree."""
    if at.tzinfo is not dt.UTC:  # else UTC already (most are: made by this function)
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"naive datetime {at.isoformat()}: give it a time zone")
        at = at.astimezone(dt.UTC)
    if at.microsecond % 1000:
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    return at


def read_instant(value: Any) -> Any:
    # A client without tz_aware=True returns naive UTC datetimes.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
