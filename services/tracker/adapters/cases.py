"""Where cases are kept: one MongoDB document per case, written with optimistic concurrency.

Every write is a single-document conditional write (`version` must be what was read), so two
tracker replicas, or a re-delivered message, can never apply a change twice or lose one.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from contracts import by_name
from services.tracker.domain import Case, CaseState, Outgoing, TimelineEntry


class CaseRepository(Protocol):
    async def get(self, case_id: str) -> Case | None: ...

    async def save(self, case: Case, *, expected_version: int) -> bool:
        """Write `case` if the stored version is still `expected_version`; False on conflict."""

    async def clear_outbox(self, case_id: str, event_ids: list[str]) -> None: ...


def to_document(case: Case) -> dict[str, Any]:
    return {
        "_id": case.case_id,
        "state": case.state.value,
        "opened": case.opened,
        "account": case.account,
        "author_id": case.author_id,
        "masked_text": case.masked_text,
        "reply_to": case.reply_to,
        "chain": list(case.chain),
        "hops": list(case.hops),
        "assigned_unit": case.assigned_unit,
        "category": case.category,
        "urgency": case.urgency,
        "acknowledged": case.acknowledged,
        "replies": case.replies,
        "timeline": [asdict(e) for e in case.timeline],
        "processed": sorted(case.processed),
        "outbox": {
            o.message.event_id: {"topic": o.topic, "body": o.message.model_dump(mode="json")}
            for o in case.outbox
        },
        "version": case.version,
    }


def from_document(doc: dict[str, Any]) -> Case:
    return Case(
        case_id=doc["_id"],
        state=CaseState(doc["state"]),
        opened=doc["opened"],
        account=doc.get("account"),
        author_id=doc.get("author_id"),
        masked_text=doc.get("masked_text"),
        reply_to=doc.get("reply_to"),
        chain=tuple(doc.get("chain", ())),
        hops=tuple(doc.get("hops", ())),
        assigned_unit=doc.get("assigned_unit"),
        category=doc.get("category"),
        urgency=doc.get("urgency"),
        acknowledged=doc.get("acknowledged", False),
        replies=doc.get("replies", {}),
        timeline=tuple(TimelineEntry(**e) for e in doc.get("timeline", ())),
        processed=frozenset(doc.get("processed", ())),
        outbox=tuple(
            Outgoing(o["topic"], by_name(o["topic"]).message.model_validate(o["body"]))
            for o in doc.get("outbox", {}).values()
        ),
        version=doc["version"],
    )


class MongoCaseRepository:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._cases = client[database]["cases"]

    async def ensure_indexes(self) -> None:
        await self._cases.create_index([("assigned_unit", 1), ("state", 1)])

    async def get(self, case_id: str) -> Case | None:
        doc = await self._cases.find_one({"_id": case_id})
        return from_document(doc) if doc else None

    async def save(self, case: Case, *, expected_version: int) -> bool:
        doc = to_document(case)
        if expected_version == 0:
            try:
                await self._cases.insert_one(doc)
            except DuplicateKeyError:
                return False
            return True
        result = await self._cases.replace_one(
            {"_id": case.case_id, "version": expected_version}, doc
        )
        return result.matched_count == 1

    async def clear_outbox(self, case_id: str, event_ids: list[str]) -> None:
        if event_ids:
            await self._cases.update_one(
                {"_id": case_id},
                {"$unset": {f"outbox.{e}": "" for e in event_ids}, "$inc": {"version": 1}},
            )

    async def find(self, case_id: str) -> dict[str, Any] | None:
        return await self._cases.find_one({"_id": case_id}, {"processed": 0, "outbox": 0})


class InMemoryCaseRepository:
    """A fake for tests; stores documents exactly as Mongo would (through the same mapping)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def get(self, case_id: str) -> Case | None:
        doc = self.docs.get(case_id)
        return from_document(doc) if doc else None

    async def save(self, case: Case, *, expected_version: int) -> bool:
        current = self.docs.get(case.case_id)
        if (current["version"] if current else 0) != expected_version:
            return False
        self.docs[case.case_id] = to_document(case)
        return True

    async def clear_outbox(self, case_id: str, event_ids: list[str]) -> None:
        if not event_ids:  # as MongoCaseRepository: nothing to clear writes nothing
            return
        doc = self.docs[case_id]
        for e in event_ids:
            doc["outbox"].pop(e, None)
        doc["version"] += 1
