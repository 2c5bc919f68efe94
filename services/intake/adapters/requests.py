"""The Open311 read model's store: requests taken, and the case events that concern them.

Every write is an insert keyed by a natural id (the request id; the case event's id), so a
re-delivered event or a retried accept changes nothing and no write depends on a read: FerretDB
does not apply conditional updates atomically, a unique insert is its reliable compare-and-set.
The view a client sees is computed from these rows at read time (`read_model.view`).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from fengqiao.runtime.store import ShardedCollection

REQUESTS = "open311_requests"
CASE_EVENTS = "open311_case_events"


@dataclass(frozen=True)
class RequestRecord:
    """A service request as taken at accept time (masked: no private data)."""

    request_id: str
    case_id: str
    service_code: str
    description: str
    requested_at: datetime


@dataclass(frozen=True)
class CaseEventRow:
    """One `case.events` message about a request's case, as the read model keeps it."""

    event_id: str
    case_id: str
    event: str
    state: str
    unit_id: str | None
    detail: str | None
    occurred_at: datetime
    offset: int


class RequestsStore(Protocol):
    """Where the Open311 read model lives."""

    async def ensure_indexes(self) -> None:
        """Create the indexes the queries need (idempotent)."""

    async def add_request(self, record: RequestRecord) -> None:
        """Insert `record`; a second insert of the same request id is ignored."""

    async def get_request(self, request_id: str) -> RequestRecord | None:
        """The request, or None when unknown."""

    async def tracked(self, case_ids: Iterable[str]) -> set[str]:
        """Those of `case_ids` some request maps to."""

    async def map_case(self, request_id: str, case_id: str) -> None:
        """The normalizer put the request in `case_id` (another case than the one computed at
        accept time, when it merged the request into an earlier case); first mapping wins."""

    async def case_of(self, request_id: str) -> str | None:
        """The case the normalizer put the request in, if it said so."""

    async def add_event(self, row: CaseEventRow) -> None:
        """Insert `row`; a second insert of the same event id is ignored."""

    async def events_of(self, case_id: str) -> list[CaseEventRow]:
        """Every event kept for `case_id`, in no particular order."""


class MongoRequestsStore:
    """The read model in intake's own database."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        db = client[database]
        self._requests = db[REQUESTS]
        # Looked up by case id for every poll of case events: a marker per tracked case, read by
        # `_id` (`$in`), and the events split by case (FerretDB scans a whole collection for
        # other filters).
        self._tracked = db[f"{REQUESTS}_by_case"]
        self._mapped = db[f"{REQUESTS}_cases"]
        self._events = ShardedCollection(db, CASE_EVENTS)

    async def ensure_indexes(self) -> None:
        await self._events.create_index([("case_id", ASCENDING)])

    async def add_request(self, record: RequestRecord) -> None:
        doc = asdict(record)
        doc["_id"] = doc.pop("request_id")
        await _insert_once(self._tracked, {"_id": record.case_id})
        await _insert_once(self._requests, doc)

    async def get_request(self, request_id: str) -> RequestRecord | None:
        doc = await self._requests.find_one({"_id": request_id})
        if doc is None:
            return None
        doc["request_id"] = doc.pop("_id")
        return RequestRecord(**doc)

    async def tracked(self, case_ids: Iterable[str]) -> set[str]:
        asked = list(dict.fromkeys(case_ids))
        if not asked:
            return set()
        found = self._tracked.find({"_id": {"$in": asked}}, {"_id": 1})
        return {str(doc["_id"]) async for doc in found}

    async def map_case(self, request_id: str, case_id: str) -> None:
        await _insert_once(self._tracked, {"_id": case_id})
        await _insert_once(self._mapped, {"_id": request_id, "case_id": case_id})

    async def case_of(self, request_id: str) -> str | None:
        doc = await self._mapped.find_one({"_id": request_id})
        return str(doc["case_id"]) if doc else None

    async def add_event(self, row: CaseEventRow) -> None:
        doc = asdict(row)
        doc["_id"] = doc.pop("event_id")
        await _insert_once(self._events.for_key(row.case_id), doc)

    async def events_of(self, case_id: str) -> list[CaseEventRow]:
        rows = []
        async for doc in self._events.for_key(case_id).find({"case_id": case_id}):
            doc["event_id"] = doc.pop("_id")
            rows.append(CaseEventRow(**doc))
        return rows


async def _insert_once(collection: Any, doc: dict[str, Any]) -> None:
    with suppress(DuplicateKeyError):  # written before: the same fact again
        await collection.insert_one(doc)


class InMemoryRequestsStore:
    """A fake for tests, with the same insert-once semantics."""

    def __init__(self) -> None:
        self.requests: dict[str, RequestRecord] = {}
        self.events: dict[str, CaseEventRow] = {}
        self.mapped: dict[str, str] = {}

    async def ensure_indexes(self) -> None:
        return None

    async def map_case(self, request_id: str, case_id: str) -> None:
        self.mapped.setdefault(request_id, case_id)

    async def case_of(self, request_id: str) -> str | None:
        return self.mapped.get(request_id)

    async def add_request(self, record: RequestRecord) -> None:
        self.requests.setdefault(record.request_id, record)

    async def get_request(self, request_id: str) -> RequestRecord | None:
        return self.requests.get(request_id)

    async def tracked(self, case_ids: Iterable[str]) -> set[str]:
        cases = {r.case_id for r in self.requests.values()} | set(self.mapped.values())
        return cases & set(case_ids)

    async def add_event(self, row: CaseEventRow) -> None:
        self.events.setdefault(row.event_id, row)

    async def events_of(self, case_id: str) -> list[CaseEventRow]:
        return [e for e in self.events.values() if e.case_id == case_id]


__all__ = [
    "CaseEventRow",
    "InMemoryRequestsStore",
    "MongoRequestsStore",
    "RequestRecord",
    "RequestsStore",
]
