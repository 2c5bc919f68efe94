"""MongoDB collections split by key.

FerretDB 1.24 on SQLite (the local store) evaluates every filter but an `_id` match by reading
the whole collection: a `find_one({"case_id": ...})` over 623 case documents took 0.32 s here,
and grows with the collection. Splitting a collection by a hash of the key keeps each scan to the
documents of a few keys on FerretDB; on MongoDB the split costs nothing but more collections.
The number of shards of a collection must never change on a live store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import zlib
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, WriteError

DEFAULT_SHARDS = 64
DUPLICATE_KEY = 11000

_Waiting = tuple[dict[str, Any], "asyncio.Future[bool]"]  # a document and its caller's answer


class ShardedCollection:
    """`<base>_<nn>` collections; a key's documents all live in the shard of its hash."""

    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], base: str, shards: int = DEFAULT_SHARDS
    ) -> None:
        self._database, self._base, self._shards = database, base, shards

    def name(self, key: str) -> str:
        return f"{self._base}_{zlib.crc32(key.encode()) % self._shards:02x}"

    def for_key(self, key: str) -> AsyncCollection[dict[str, Any]]:
        """The collection that holds `key`'s documents."""
        return self._database[self.name(key)]

    def all(self) -> list[AsyncCollection[dict[str, Any]]]:
        """Every shard (for indexes and for queries across keys)."""
        return [self._database[f"{self._base}_{i:02x}"] for i in range(self._shards)]

    async def create_index(self, keys: list[tuple[str, int]]) -> None:
        for collection in self.all():
            await collection.create_index(keys)


async def move_collections(
    database: AsyncDatabase[dict[str, Any]],
    pattern: re.Pattern[str],
    target: str,
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list,
) -> dict[str, int]:
    """Move the documents of every collection whose name matches `pattern` into `target` (as
    `prepare` makes them from one collection's documents), then drop that collection; the
    number of documents moved from each. For a store written in a sharded layout before: run at
    start, before anything writes. Safe to run again after an interruption: a document already
    in `target` is skipped."""
    moved = {}
    for name in sorted(await database.list_collection_names()):
        if not pattern.match(name):
            continue
        docs = await database[name].find({}).to_list()
        if documents := prepare(docs):
            with contextlib.suppress(BulkWriteError):  # moved already (an interrupted move)
                await database[target].insert_many(documents, ordered=False)
        await database.drop_collection(name)
        moved[name] = len(docs)
    return moved


class GroupInsert:
    """Single-document inserts, written together (group commit).

    While an `insert_many` into a collection is in flight, the inserts into that collection queue
    up; the next `insert_many(ordered=False)` writes them all. Each caller still learns about its
    own document only: True when inserted, False when its `_id` existed — the compare-and-set of
    a unique insert is kept, since each document is checked against the unique index on its own
    (two callers racing for one `_id` in one batch: the first wins). One round trip carries many
    documents: on FerretDB (SQLite) 64 writers inserting case-sized documents went from 622 to
    2,897 documents/s (measured). A write that fails otherwise fails every caller of its batch.
    """

    MAX_BATCH = 500

    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._database = database
        self._queued: dict[str, list[_Waiting]] = {}
        self._unanswered: dict[str, list[_Waiting]] = {}  # taken by the writer, not yet answered
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        """Insert `doc`; False when a document with its `_id` exists."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.setdefault(collection, []).append((doc, done))
        if collection not in self._writers:
            writer = asyncio.create_task(self._write(collection))
            self._writers[collection] = writer
            writer.add_done_callback(functools.partial(self._ended, collection))
        return await done

    async def _write(self, collection: str) -> None:
        while queued := self._queued.pop(collection, None):
            for start in range(0, len(queued), self.MAX_BATCH):
                self._unanswered[collection] = queued[start:]
                await self._write_batch(collection, queued[start : start + self.MAX_BATCH])
            del self._unanswered[collection]
        del self._writers[collection]  # right after finding the queue empty: no insert is lost

    def _ended(self, collection: str, writer: asyncio.Task[None]) -> None:
        if self._writers.get(collection) is writer:  # cancelled (the loop is closing)
            del self._writers[collection]
            for _, done in self._unanswered.pop(collection, []) + self._queued.pop(collection, []):
                done.cancel()  # nobody waits forever

    async def _write_batch(self, collection: str, batch: list[_Waiting]) -> None:
        errors: dict[int, dict[str, Any]] = {}
        try:
            await self._database[collection].insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            errors = {e["index"]: e for e in exc.details.get("writeErrors", ())}
        except Exception as exc:  # the connection, the server: nobody knows what was written
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for index, (_, done) in enumerate(batch):
            if done.done():  # its caller was cancelled
                continue
            error = errors.get(index)
            if error is None:
                done.set_result(True)
            elif error.get("code") == DUPLICATE_KEY:
                done.set_result(False)
            else:
                done.set_exception(
                    WriteError(error.get("errmsg", "write error"), error.get("code"), error)
                )
