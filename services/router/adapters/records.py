"""Where the router remembers what it dispatched for each case: one document per version, on
the store seam's versioned records (`fengqiao.runtime.store.Versions`: a new version is an insert
against the unique `_id = "<case>:<version>"`, so only one writer of a version succeeds; the
latest is found by lookups on `_id`).

The order template and the last orders are kept as JSON text, not as nested documents: FerretDB
stores with each document a description of every nested field's type, which for these two was
5.5 KB of a 7.4 KB version (the text form: about 2.5 KB). Versions written before hold them as
documents and read as they are."""

from __future__ import annotations

import json
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.contracts import DispatchOrdered
from fengqiao.runtime.store import MemoryRecords, MongoRecords, Records, Versions, insert_new
from fengqiao.services.router.returns import RoutingRecord

VERSIONS = "routing"
RETURNS = "returns"
REMEMBERED = 100_000  # cases whose latest version this process knows (where a search starts)


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


def version_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


def to_document(record: RoutingRecord, last_orders: list[DispatchOrdered]) -> dict[str, Any]:
    return {
        "_id": version_id(record.case_id, record.version),
        "case_id": record.case_id,
        "version": record.version,
        "holder": record.holder,
        "last_hop": record.last_hop,
        "round": record.round,
        "candidates": list(record.candidates),
        "tried": list(record.tried),
        "returns": [{"unit_id": u, "reason": r} for u, r in record.returns],
        "template": record.template.model_dump_json(),
        "processed": sorted(record.processed),
        "last_orders": json.dumps([o.model_dump(mode="json") for o in last_orders]),
    }


def _orders(doc: dict[str, Any]) -> list[DispatchOrdered]:
    orders = doc.get("last_orders", [])
    listed = json.loads(orders) if isinstance(orders, str) else orders
    return [DispatchOrdered.model_validate(o) for o in listed]


def _template(value: str | dict[str, Any]) -> DispatchOrdered:
    if isinstance(value, str):
        return DispatchOrdered.model_validate_json(value)
    return DispatchOrdered.model_validate(value)  # a version written as a nested document


def from_document(doc: dict[str, Any]) -> RoutingRecord:
    return RoutingRecord(
        case_id=doc["case_id"],
        holder=doc["holder"],
        last_hop=doc["last_hop"],
        round=doc["round"],
        candidates=tuple(doc["candidates"]),
        tried=tuple(doc["tried"]),
        returns=tuple((r["unit_id"], r["reason"]) for r in doc["returns"]),
        template=_template(doc["template"]),
        processed=frozenset(doc["processed"]),
        version=doc["version"],
    )


class VersionedRecordStore:
    """`RecordStore` over versioned records, in the store (`MongoRecordStore`) or in memory
    (`InMemoryRecordStore`): one algorithm for both."""

    def __init__(self, records: Records) -> None:
        self._versions = Versions(
            records, VERSIONS, id_of=version_id, key_field="case_id", remember=REMEMBERED
        )

    async def get(self, case_id: str) -> RoutingRecord | None:
        doc = await self._versions.latest(case_id)
        return from_document(doc) if doc else None

    async def save(self, record: RoutingRecord, last_orders: list[DispatchOrdered]) -> bool:
        doc = to_document(record, last_orders)
        return await self._versions.insert(record.case_id, record.version, doc)

    async def last_orders(self, case_id: str) -> list[DispatchOrdered]:
        doc = await self._versions.latest(case_id)
        return _orders(doc or {})


class MongoRecordStore(VersionedRecordStore):
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        super().__init__(MongoRecords(client, database))
        self._returns = client[database][RETURNS]

    async def ensure_indexes(self) -> None:
        await self._returns.create_index([("unit_id", 1)])

    async def count_return(
        self, action_event_id: str, case_id: str, unit_id: str, reason: str
    ) -> None:
        doc = {"_id": action_event_id, "case_id": case_id, "unit_id": unit_id, "reason": reason}
        await insert_new(self._returns, [doc])

    async def returns_by_unit(self) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$unit_id", "n": {"$sum": 1}}}]
        cursor = await self._returns.aggregate(pipeline)
        return {row["_id"]: row["n"] async for row in cursor}


class InMemoryRecordStore(VersionedRecordStore):
    def __init__(self) -> None:
        self.records = MemoryRecords()
        super().__init__(self.records)
        self.returns: dict[str, str] = {}  # action event id → unit id

    @property
    def docs(self) -> dict[str, dict[str, Any]]:
        """Every version written, by `_id` (for tests)."""
        return self.records.collections.get(VERSIONS, {})

    async def count_return(
        self, action_event_id: str, case_id: str, unit_id: str, reason: str
    ) -> None:
        self.returns.setdefault(action_event_id, unit_id)

    async def returns_by_unit(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for unit in self.returns.values():
            counts[unit] = counts.get(unit, 0) + 1
        return counts
