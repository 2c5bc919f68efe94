"""Versioned records: every change of a record is a new document, the next version of its key.

Writing version v+1 of a key is inserting the document `_id = id_of(key, v+1)`: the unique `_id`
lets exactly one writer succeed, so two replicas (or two tasks of one) never apply a change twice
or lose one. It is compare-and-set by unique insert, not by a conditional update: FerretDB 1.24
does not apply conditional updates atomically (on SQLite and on PostgreSQL several of 20
concurrent `update_one({_id, version}, ...)` matched; measured). A version that may be the latest
is never updated in place either: FerretDB's update is not atomic against a concurrent insert of
the same `_id` (with 4 writers on one case, 5 of 400 changes were lost; measured).

Versions 1 … latest of a key all exist (none is ever deleted), so the insert of v+1 fails exactly
when someone wrote v+1, from any base however old: a writer needs no read after its write, and a
guessed base (the version this process last saw, `Recent`) is always safe to try. The latest
version is found by point lookups on `_id` (gallop up from a version known to exist, then bisect):
FerretDB answers any other filter by reading the whole collection. The inserts of many keys go to
the store together (`GroupInsert`).

Compaction replaces versions below the latest by stubs (`_id`, the key, `version`, `stub`): an
update of documents that are no longer the latest, which keeps every version's `_id` (so the
compare-and-set and the search stay true) while a finished record shrinks to its last version,
and a long-lived one to its newest versions and a stub (about 100 bytes) per older version.

Why stubs and not deletion: a writer may build on a base of any age (the version this process
last wrote, `Recent`); were version x deleted, its insert from base x-1 would succeed, and that
writer would go on writing versions nobody reads (below the latest), its changes lost. Deleting
would need a floor every writer checks after each insert (one more lookup per write) and a
search that starts from that floor instead of version 1.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pymongo import AsyncMongoClient, ReplaceOne

from fengqiao.runtime.store.inserts import GroupInsert
from fengqiao.runtime.store.recent import Recent

Doc = dict[str, Any]


class Records(Protocol):
    """What versioned records need of a store: unique inserts and reads by `_id`."""

    async def insert(self, collection: str, doc: Doc) -> bool:
        """Insert; False when a document with that `_id` exists."""

    async def get(self, collection: str, doc_id: str) -> Doc | None: ...

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Doc]:
        """The documents of those `_id`s that exist."""

    async def replace_many(self, collection: str, docs: Sequence[Doc]) -> None:
        """Write each of `docs` over the document of its `_id` (compaction only)."""


class MongoRecords:
    """`Records` in a MongoDB (or FerretDB) database; inserts go in groups (`GroupInsert`)."""

    def __init__(self, client: AsyncMongoClient[Doc], database: str) -> None:
        self.database = client[database]
        self._inserts = GroupInsert(self.database)

    async def insert(self, collection: str, doc: Doc) -> bool:
        return await self._inserts.insert(collection, doc)

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        return await self.database[collection].find_one({"_id": doc_id})

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Doc]:
        # One lookup by the `_id` index per id (deploy/ferretdb/patches.json pushes $in down).
        return await self.database[collection].find({"_id": {"$in": list(doc_ids)}}).to_list()

    async def replace_many(self, collection: str, docs: Sequence[Doc]) -> None:
        if docs:
            await self.database[collection].bulk_write(
                [ReplaceOne({"_id": d["_id"]}, d) for d in docs]
            )


class MemoryRecords:
    """`Records` in memory with the same semantics (tests inspect `collections`)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Doc]] = {}

    async def insert(self, collection: str, doc: Doc) -> bool:
        docs = self.collections.setdefault(collection, {})
        if doc["_id"] in docs:
            return False
        docs[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        doc = self.collections.get(collection, {}).get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Doc]:
        docs = self.collections.get(collection, {})
        return [copy.deepcopy(docs[i]) for i in dict.fromkeys(doc_ids) if i in docs]

    async def replace_many(self, collection: str, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self.collections.setdefault(collection, {})[doc["_id"]] = copy.deepcopy(doc)


def is_stub(doc: Doc) -> bool:
    return "stub" in doc


class Versions:
    """The versions of many keys in one collection (see the module docstring).

    It remembers the latest version of each key it wrote or read (up to `remember` keys; with its
    document when `keep_documents`): only ever a lower bound to start the search from, or the
    guess a writer builds the next version on."""

    def __init__(
        self,
        records: Records,
        collection: str,
        *,
        id_of: Callable[[str, int], str],
        key_field: str,
        remember: int,
        keep_documents: bool = False,
    ) -> None:
        self.records, self.collection = records, collection
        self._id_of, self._key_field, self._keep = id_of, key_field, keep_documents
        self._known: Recent[str, tuple[int, Doc | None]] = Recent(remember)

    def id_of(self, key: str, version: int) -> str:
        return self._id_of(key, version)

    def known(self, key: str) -> tuple[int, Doc | None]:
        """The latest version this process knows of `key` (0 when none), with its document when
        kept; a version that exists."""
        return self._known.get(key) or (0, None)

    def _remember(self, key: str, version: int, doc: Doc | None) -> None:
        self._known.put(key, (version, doc if self._keep else None))

    async def read(self, key: str, version: int) -> Doc | None:
        return await self.records.get(self.collection, self._id_of(key, version))

    async def insert(self, key: str, version: int, doc: Doc) -> bool:
        """Write `doc` as `version` of `key`; False when another writer wrote that version first
        (it exists then: the search for the latest starts there)."""
        inserted = await self.records.insert(self.collection, doc)
        self._remember(key, version, doc if inserted else None)
        return inserted

    async def latest(
        self, key: str, start: Doc | None = None, *, trust_known: bool = True
    ) -> Doc | None:
        """The latest version's document: gallop up from a version known to exist (`start`, a
        version just read, or the one remembered; from 0 when none is: version 1 is probed
        first, and without it there is no record), then bisect. Each step is a lookup by `_id`.
        """
        low, low_doc = self.known(key) if trust_known else (0, None)
        if start is not None and start["version"] >= low:
            low, low_doc = start["version"], start
        step = 1
        while (found := await self.read(key, low + step)) is not None:
            low, low_doc, step = low + step, found, step * 2
        high = low + step  # missing
        while high - low > 1:
            middle = (low + high) // 2
            if (found := await self.read(key, middle)) is None:
                high = middle
            else:
                low, low_doc = middle, found
        if low == 0:
            return None
        if low_doc is None or is_stub(low_doc):
            # Known but not read here, or compacted since it was read (so a later one exists).
            low_doc = await self.read(key, low)
            if low_doc is None or is_stub(low_doc):
                # Gone (a dropped store) or compacted: search again, from scratch or from it.
                if low_doc is None:
                    self._known.forget(key)
                else:
                    self._remember(key, low, None)
                return await self.latest(key)
        self._remember(key, low, low_doc)
        return low_doc

    async def latest_many(self, keys: Sequence[str]) -> dict[str, Doc | None]:
        """The first step of each key's search together: one `$in` of the version after the one
        known (version 1 for a key never seen) and of the known one. Without the next version,
        the known one is the latest (versions have no gaps) and a key never seen has no record
        (the common case: new); the others go on one by one."""
        keys = list(dict.fromkeys(keys))
        known = {k: self.known(k)[0] for k in keys}
        wanted = [self._id_of(k, v + 1) for k, v in known.items()]
        wanted += [self._id_of(k, v) for k, v in known.items() if v]
        found = (
            {d["_id"]: d for d in await self.records.get_many(self.collection, wanted)}
            if keys
            else {}
        )
        result: dict[str, Doc | None] = {}
        for key in keys:
            after = found.get(self._id_of(key, known[key] + 1))
            doc = found.get(self._id_of(key, known[key])) if known[key] else None
            if after is not None:
                result[key] = await self.latest(key, after)  # goes on from there
            elif not known[key]:
                result[key] = None
            elif doc is None or is_stub(doc):  # gone, or compacted since: search again
                result[key] = await self.latest(key)
            else:
                result[key] = doc
        return result

    async def compact(self, key: str, below: int, *, since: int = 1) -> None:
        """Replace the versions from `since` up to `below` (not included) by stubs; with `below`
        the latest version and `since` 1, the record has ended. Only ever versions below one that
        exists: never the latest (see the module docstring)."""
        stubs = [
            {"_id": self._id_of(key, v), self._key_field: key, "version": v, "stub": 1}
            for v in range(max(1, since), below)
        ]
        await self.records.replace_many(self.collection, stubs)
