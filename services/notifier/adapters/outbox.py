"""The notifier's outbox: one document per (case, purpose, hop), so a reply is posted at most once.

A reply is claimed (`sending`) before it is sent and marked `sent` after. Finding a claim still
`sending` means an earlier attempt may have reached the platform without being recorded (a
crash or a timeout): it is never sent blindly again but held for an operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

State = Literal["sending", "sent", "failed", "held"]


class Outbox(Protocol):
    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Claim `key` for sending; None when claimed, else the existing record."""

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None: ...


class MongoOutbox:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._replies = client[database]["outbox"]

    async def ensure_indexes(self) -> None:
        await self._replies.create_index([("state", 1), ("claimed_at", 1)])

    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        try:
            await self._replies.insert_one({"_id": key, "state": "sending", **record})
        except DuplicateKeyError:
            return await self._replies.find_one({"_id": key})
        return None

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        await self._replies.update_one({"_id": key}, {"$set": {"state": state, **fields}})


class InMemoryOutbox:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        if key in self.records:
            return self.records[key]
        self.records[key] = {"_id": key, "state": "sending", **record}
        return None

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        self.records[key].update(state=state, **fields)


def claim_record(
    request_event_id: str, case_id: str, purpose: str, now: datetime
) -> dict[str, Any]:
    return {
        "request_event_id": request_event_id,
        "case_id": case_id,
        "purpose": purpose,
        "claimed_at": now,
    }
