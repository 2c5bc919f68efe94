"""The notifier's outbox: one document per (case, purpose, hop), so a reply is posted at most once.

A reply is claimed by inserting its key (FerretDB applies only inserts against a unique `_id`
atomically): `sending` when it goes out at once, `queued` when it waits for its rate limit,
`held` when it waits for an operator, or its final state. Finding a claim still `sending` means
an earlier attempt may have reached the platform without being recorded (a crash, a timeout):
it is reconciled against the platform or held, never sent blindly again.

Outcomes are inserted into `results` (same key) rather than written over the claim: FerretDB
takes a batch of inserts in one transaction (about 8,000 a second here) but each update on its
own (about 400 a second), and the notifier records replies in batches. A reply's state is its
result's, or its claim's while it has none.

A claim's state and times are fields of their own; the rest of it (the request, where it was
read, the parts to post...) is one JSON text, `packed`: FerretDB stores a document field by
field, and a batch of 500 claims took 150 ms as nested documents, 60 ms packed. Nothing is
ever looked up by a packed field.

Beside them, small collections keyed by the reply's key, so nothing ever scans the outbox:
`queue` (replies waiting for their rate limit, reloaded at start), `held` (waiting for an
operator), `attempts` (an attempt about to be posted from the queue or by an operator: the
insert is the guard between replicas), `decisions` (an operator's approval or rejection) and
`edits` (the text an operator approved in place of the template's: what any later attempt of
that reply posts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import insert_new, insert_or_get, pack, unpack

State = Literal["queued", "sending", "sent", "failed", "held"]
FINAL: frozenset[str] = frozenset({"sent", "failed", "held"})


class Outbox(Protocol):
    async def claim_many(self, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Claim each key with its record (which holds its state); return the existing record
        of every key claimed before."""

    async def get(self, key: str) -> dict[str, Any] | None:
        """The claim with its result, if any."""

    async def record_many(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Record the outcome (state and fields) of freshly claimed keys."""

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        """Record a later state of `key` (reconciled, approved, held...)."""

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

    async def edit(self, key: str, record: dict[str, Any]) -> None:
        """Keep the text an operator approved for `key` (`text`; the latest approval's)."""

    async def edited(self, key: str) -> dict[str, Any] | None:
        """The text an operator approved for `key`, if one did."""


class MongoOutbox:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        db = client[database]
        self._replies, self._results, self._queue = db["outbox"], db["results"], db["queue"]
        self._held, self._attempts, self._decisions = db["held"], db["attempts"], db["decisions"]
        self._edits = db["edits"]

    async def ensure_indexes(self) -> None:
        return None  # every lookup is by _id

    async def claim_many(self, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not records:
            return {}
        keys = list(records)
        taken = await insert_new(self._replies, [{**_packed(records[k]), "_id": k} for k in keys])
        existing = {}
        for key in (k for k in keys if k in taken):
            existing[key] = await self.get(key) or {"_id": key}
        return existing

    async def get(self, key: str) -> dict[str, Any] | None:
        claim = await self._replies.find_one({"_id": key})
        if claim is None:
            return None
        result = await self._results.find_one({"_id": key})
        return {**unpack(claim), **(result or {})}

    async def record_many(self, outcomes: dict[str, dict[str, Any]]) -> None:
        if not outcomes:
            return
        docs = [{**fields, "_id": key} for key, fields in outcomes.items()]
        for key in await insert_new(self._results, docs):  # recorded before: the later wins
            await self._results.replace_one({"_id": key}, {**outcomes[key], "_id": key})

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        await self._results.update_one(
            {"_id": key}, {"$set": {"state": state, **fields}}, upsert=True
        )

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

    async def edit(self, key: str, record: dict[str, Any]) -> None:
        # Written once its decision's insert won: no two writers of one hold.
        await self._edits.replace_one({"_id": key}, {**record, "_id": key}, upsert=True)

    async def edited(self, key: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._edits.find_one({"_id": key})
        return found


def _packed(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its state and times as fields, the rest as one JSON text."""
    return pack(record, lambda name, value: name == "state" or isinstance(value, datetime))


async def _insert(collection: Any, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
    return await insert_or_get(collection, {**record, "_id": key})


class InMemoryOutbox:
    def __init__(self) -> None:
        self.claims: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}
        self.queue: dict[str, dict[str, Any]] = {}
        self.holds: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.edits: dict[str, dict[str, Any]] = {}

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Every reply as `get` shows it."""
        return {key: {**claim, **self.results.get(key, {})} for key, claim in self.claims.items()}

    @staticmethod
    def _insert(
        into: dict[str, dict[str, Any]], key: str, record: dict[str, Any]
    ) -> dict[str, Any] | None:
        if key in into:
            return into[key]
        into[key] = {**record, "_id": key}
        return None

    async def claim_many(self, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        existing = {}
        for key, record in records.items():
            if self._insert(self.claims, key, record) is not None:
                existing[key] = self.records[key]
        return existing

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    async def record_many(self, outcomes: dict[str, dict[str, Any]]) -> None:
        for key, fields in outcomes.items():
            self.results[key] = {**fields, "_id": key}

    async def finish(self, key: str, state: State, fields: dict[str, Any]) -> None:
        self.results.setdefault(key, {"_id": key}).update(state=state, **fields)

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

    async def edit(self, key: str, record: dict[str, Any]) -> None:
        self.edits[key] = {**record, "_id": key}

    async def edited(self, key: str) -> dict[str, Any] | None:
        return self.edits.get(key)
