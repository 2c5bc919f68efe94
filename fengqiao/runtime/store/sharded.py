"""MongoDB collections split by a hash of a key.

FerretDB 1.24 on SQLite (the local store) answers a lookup by `_id` (or `_id: {$in: ...}`) with
the `_id` index (deploy/ferretdb/patches.json), but every other filter by reading the whole
collection: a `find_one({"case_id": ...})` over 623 case documents took 0.32 s here, and grows
with the collection. Where a key is looked up by another field (a unit's cases, an author's
appeals), splitting the collection by a hash of that key keeps each scan to the documents of a
few keys; on MongoDB the split costs nothing but more collections. The number of shards of a
collection must never change on a live store.
"""

from __future__ import annotations

import zlib
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

DEFAULT_SHARDS = 64


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
