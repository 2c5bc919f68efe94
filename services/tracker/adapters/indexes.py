"""Small lookups the tracker keeps beside the cases, each written as a case's effect.

- which cases each unit may see (`unit_cases`, sharded by unit: a unit lists its cases without
  reading every case), insert-only;
- which case waits for a citizen's answer to its callback (`awaiting_callback`, by `_id`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import GroupInsert, Recent, ShardedCollection


class Indexes(Protocol):
    async def add_unit_case(self, unit_id: str, case_id: str) -> None: ...

    async def unit_cases(self, unit_id: str, limit: int) -> list[str]:
        """Ids of the cases indexed for `unit_id` (newest first, at most `limit`)."""

    async def set_awaiting(self, key: str, case_id: str | None) -> None:
        """The case whose callback waits for the citizen of `key`, or None: none any more."""

    async def awaiting(self, keys: Sequence[str]) -> dict[str, str]:
        """The cases whose callbacks wait for the citizens of `keys` (those that have one)."""


INDEXED_REMEMBERED = 50_000  # (unit, case) entries this process knows to exist


class MongoIndexes:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        db = client[database]
        self._units = ShardedCollection(db, "unit_cases")
        self._inserts = GroupInsert(db)
        self._awaiting = db["awaiting_callback"]
        # Entries are never removed, so one known to exist needs no second insert (every hop of
        # a dispatch names the whole chain again).
        self._indexed: Recent[str, bool] = Recent(INDEXED_REMEMBERED)

    async def add_unit_case(self, unit_id: str, case_id: str) -> None:
        entry = f"{unit_id}|{case_id}"
        if self._indexed.get(entry):
            return
        # False when indexed already (a re-delivery, a hop). The entries of one unit go to the
        # store together (many cases reach a unit at once).
        await self._inserts.insert(
            self._units.name(unit_id), {"_id": entry, "unit": unit_id, "case_id": case_id}
        )
        self._indexed.put(entry, True)

    async def unit_cases(self, unit_id: str, limit: int) -> list[str]:
        cursor = self._units.for_key(unit_id).find({"unit": unit_id}, {"case_id": 1})
        docs = await cursor.to_list()
        return [d["case_id"] for d in reversed(docs)][:limit]

    async def set_awaiting(self, key: str, case_id: str | None) -> None:
        if case_id is None:
            await self._awaiting.delete_one({"_id": key})
        else:
            await self._awaiting.replace_one({"_id": key}, {"case_id": case_id}, upsert=True)

    async def awaiting(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        # One lookup by `_id` per key (deploy/ferretdb/patches.json pushes $in down), all at once.
        found = self._awaiting.find({"_id": {"$in": list(dict.fromkeys(keys))}})
        return {doc["_id"]: str(doc["case_id"]) async for doc in found}


class InMemoryIndexes:
    def __init__(self) -> None:
        self.units: dict[str, list[str]] = {}
        self.waiting: dict[str, str] = {}

    async def add_unit_case(self, unit_id: str, case_id: str) -> None:
        cases = self.units.setdefault(unit_id, [])
        if case_id not in cases:
            cases.append(case_id)

    async def unit_cases(self, unit_id: str, limit: int) -> list[str]:
        return list(reversed(self.units.get(unit_id, [])))[:limit]

    async def set_awaiting(self, key: str, case_id: str | None) -> None:
        if case_id is None:
            self.waiting.pop(key, None)
        else:
            self.waiting[key] = case_id

    async def awaiting(self, keys: Sequence[str]) -> dict[str, str]:
        return {key: self.waiting[key] for key in keys if key in self.waiting}
