"""The notifier's outbox: one document per (case, purpose, hop), so a reply is posted at most once.

A reply is claimed by inserting its key (FerretDB applies only inserts against a unique `_id`
atomically): `sending` when it goes out at once, `queued` when it waits for its rate limit,
`held` when it waits for an operator, or its final state. Finding a claim still `sending` means
an earlier attempt may have reached the platform without being recorded (a crash, a timeout):
it is reconciled against the platform or held, never sent blindly again.

Beside the outbox, small collections keyed by the reply's key, so nothing ever scans the outbox:
`queue` (replies waiting for their rate limit, reloaded at start), `held` (waiting for an
operator), `attempts` (an attempt about to be posted from the queue or by an operator: the
insert is the guard between replicas) and `decisions` (an operator's approval or rejection).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

State = Literal["queued", "sending", "sent", "failed", "held"]
FINAL: frozenset[str] = frozenset({"sent", "failed", "held"})


class Outbox(Protocol):
    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Claim `key` with `record` (which holds its state); None when claimed, else the
        existing record."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None: ...

    async def attempt(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Record an attempt about to be posted; None when recorded, else the earlier one."""

    async def park(self, key: str, record: dict[str, Any]) -> None: ...

    async def unpark(self, key: str) -> None: ...

    async def parked(self) -> list[dict[str, Any]]: ...

    async def hold(self, key: str, record: dict[str, Any]) -> None: ...

    async def release(self, key: str) -> None: ...

    async def held(self) -> list[dict[str, Any]]: ...

    async def decide(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Record an operator's decision; None when recorded, else the earlier decision."""


class MongoOutbox:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        db = client[database]
        self._replies, self._queue, self._held = db["outbox"], db["queue"], db["held"]
        self._attempts, self._decisions = db["attempts"], db["decisions"]

    async def ensure_indexes(self) -> None:
        return None  # every lookup is by _id

    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return await _insert(self._replies, key, record)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self._replies.find_one({"_id": key})

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        await self._replies.update_one({"_id": key}, {"$set": {"state": state, **fields}})

    async def attempt(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return await _insert(self._attempts, key, record)

    async def park(self, key: str, record: dict[str, Any]) -> None:
        await _insert(self._queue, key, record)

    async def unpark(self, key: str) -> None:
        await self._queue.delete_one({"_id": key})

    async def parked(self) -> list[dict[str, Any]]:
        return [doc async for doc in self._queue.find({})]

    async def hold(self, key: str, record: dict[str, Any]) -> None:
        await _insert(self._held, key, record)

    async def release(self, key: str) -> None:
        await self._held.delete_one({"_id": key})

    async def held(self) -> list[dict[str, Any]]:
        return [doc async for doc in self._held.find({})]

    async def decide(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return await _insert(self._decisions, key, record)


async def _insert(collection: Any, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
    try:
        await collection.insert_one({**record, "_id": key})
    except DuplicateKeyError:
        found: dict[str, Any] | None = await collection.find_one({"_id": key})
        return found or {"_id": key}
    return None


class InMemoryOutbox:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}
        self.queue: dict[str, dict[str, Any]] = {}
        self.holds: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _insert(
        into: dict[str, dict[str, Any]], key: str, record: dict[str, Any]
    ) -> dict[str, Any] | None:
        if key in into:
            return into[key]
        into[key] = {**record, "_id": key}
        return None

    async def claim(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return self._insert(self.records, key, record)

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        self.records[key].update(state=state, **fields)

    async def attempt(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return self._insert(self.attempts, key, record)

    async def park(self, key: str, record: dict[str, Any]) -> None:
        self._insert(self.queue, key, record)

    async def unpark(self, key: str) -> None:
        self.queue.pop(key, None)

    async def parked(self) -> list[dict[str, Any]]:
        return list(self.queue.values())

    async def hold(self, key: str, record: dict[str, Any]) -> None:
        self._insert(self.holds, key, record)

    async def release(self, key: str) -> None:
        self.holds.pop(key, None)

    async def held(self) -> list[dict[str, Any]]:
        return list(self.holds.values())

    async def decide(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        return self._insert(self.decisions, key, record)
