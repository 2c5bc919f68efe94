"""Where the router remembers what it dispatched for each case: one document per version.

As in the tracker, a new version is an insert with `_id = "<case>:<version>"`, so only one
writer of a version succeeds (FerretDB does not apply conditional updates atomically).
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from fengqiao.contracts import DispatchOrdered
from fengqiao.runtime.store import ShardedCollection
from fengqiao.services.router.returns import RoutingRecord


class RecordStore(Protocol):
    async def get(self, case_id: str) -> RoutingRecord | None:
        """The latest record of the case, or None."""

    async def save(self, record: RoutingRecord, last_orders: list[DispatchOrdered]) -> bool:
        """Write `record` as a new version, with the orders it led to; False if that version
        was written already (by a re-delivery or another replica)."""

    async def last_orders(self, case_id: str) -> list[DispatchOrdered]:
        """The orders the latest version led to (to publish again after a crash)."""

    async def count_return(
        self, action_event_id: str, case_id: str, unit_id: str, reason: str
    ) -> None:
        """Count one return (idempotent by the action's event id)."""

    async def returns_by_unit(self) -> dict[str, int]:
        """How many returns each unit has made, over all cases."""


def to_document(record: RoutingRecord, last_orders: list[DispatchOrdered]) -> dict[str, Any]:
    return {
        "_id": f"{record.case_id}:{record.version:08d}",
        "case_id": record.case_id,
        "version": record.version,
        "holder": record.holder,
        "last_hop": record.last_hop,
        "round": record.round,
        "candidates": list(record.candidates),
        "tried": list(record.tried),
        "returns": [{"unit_id": u, "reason": r} for u, r in record.returns],
        "template": record.template.model_dump(mode="json"),
        "processed": sorted(record.processed),
        "last_orders": [o.model_dump(mode="json") for o in last_orders],
    }


def from_document(doc: dict[str, Any]) -> RoutingRecord:
    return RoutingRecord(
        case_id=doc["case_id"],
        holder=doc["holder"],
        last_hop=doc["last_hop"],
        round=doc["round"],
        candidates=tuple(doc["candidates"]),
        tried=tuple(doc["tried"]),
        returns=tuple((r["unit_id"], r["reason"]) for r in doc["returns"]),
        template=DispatchOrdered.model_validate(doc["template"]),
        processed=frozenset(doc["processed"]),
        version=doc["version"],
    )


class MongoRecordStore:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._records = ShardedCollection(client[database], "routing")
        self._returns = client[database]["returns"]

    async def ensure_indexes(self) -> None:
        await self._records.create_index([("case_id", 1), ("version", -1)])
        await self._returns.create_index([("unit_id", 1)])

    async def get(self, case_id: str) -> RoutingRecord | None:
        doc = await self._latest(case_id)
        return from_document(doc) if doc else None

    async def save(self, record: RoutingRecord, last_orders: list[DispatchOrdered]) -> bool:
        try:
            await self._records.for_key(record.case_id).insert_one(to_document(record, last_orders))
        except DuplicateKeyError:
            return False
        return True

    async def last_orders(self, case_id: str) -> list[DispatchOrdered]:
        doc = await self._latest(case_id)
        return [DispatchOrdered.model_validate(o) for o in (doc or {}).get("last_orders", [])]

    async def count_return(
        self, action_event_id: str, case_id: str, unit_id: str, reason: str
    ) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self._returns.insert_one(
                {"_id": action_event_id, "case_id": case_id, "unit_id": unit_id, "reason": reason}
            )

    async def returns_by_unit(self) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$unit_id", "n": {"$sum": 1}}}]
        cursor = await self._returns.aggregate(pipeline)
        return {row["_id"]: row["n"] async for row in cursor}

    async def _latest(self, case_id: str) -> dict[str, Any] | None:
        return await self._records.for_key(case_id).find_one(
            {"case_id": case_id}, sort=[("version", -1)]
        )


class InMemoryRecordStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.returns: dict[str, str] = {}  # action event id → unit id

    async def get(self, case_id: str) -> RoutingRecord | None:
        doc = self._latest(case_id)
        return from_document(doc) if doc else None

    async def save(self, record: RoutingRecord, last_orders: list[DispatchOrdered]) -> bool:
        doc = to_document(record, last_orders)
        if doc["_id"] in self.docs:
            return False
        self.docs[doc["_id"]] = doc
        return True

    async def last_orders(self, case_id: str) -> list[DispatchOrdered]:
        doc = self._latest(case_id)
        return [DispatchOrdered.model_validate(o) for o in (doc or {}).get("last_orders", [])]

    async def count_return(
        self, action_event_id: str, case_id: str, unit_id: str, reason: str
    ) -> None:
        self.returns.setdefault(action_event_id, unit_id)

    async def returns_by_unit(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for unit in self.returns.values():
            counts[unit] = counts.get(unit, 0) + 1
        return counts

    def _latest(self, case_id: str) -> dict[str, Any] | None:
        versions = [d for d in self.docs.values() if d["case_id"] == case_id]
        return max(versions, key=lambda d: d["version"]) if versions else None
