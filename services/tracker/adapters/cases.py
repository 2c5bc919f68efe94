"""Where cases are kept: each version of a case is one MongoDB document.

Writing version v+1 of a case is inserting the document `_id = "<case>:<v+1>"`; the unique `_id`
lets exactly one writer succeed, so two tracker replicas (or two subscribers of one) can never
apply a change twice or lose one. This is compare-and-set by unique index rather than by a
conditional update, because FerretDB 1.24 on SQLite does not apply conditional updates
atomically: of 20 concurrent `update_one({_id, version: 1}, ...)`, up to 4 matched (measured).
Unique inserts hold on FerretDB and MongoDB alike. Older versions are pruned after each write.

Version documents are never updated in place: FerretDB's update of a document is not atomic
against a concurrent insert of the same `_id` (measured: with 4 writers on one case, 5 of 400
changes were lost while outboxes were cleared by `$unset`). Clearing the outbox after publishing
is therefore a new version too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from contracts import CaseState, by_name
from fengqiao.store import ShardedCollection
from services.tracker.domain import OPEN_STATES, Case, Outgoing, TimelineEntry


class CaseRepository(Protocol):
    async def get(self, case_id: str) -> Case | None:
        """The latest version of the case, or None."""

    async def save(self, case: Case, *, expected_version: int) -> bool:
        """Write `case` as the version after `expected_version`; False when another writer
        wrote that version first."""

    async def all(self) -> list[Case]:
        """The latest version of every case."""

    async def overdue(self) -> int:
        """How many open cases are past their deadline."""

    async def clear_outbox(self, case: Case, event_ids: list[str], effects: list[str]) -> None:
        """Forget outbox entries and effects of this version of `case` once they are published
        and done (as a new version; if another writer got there first, it carries them and does
        them again: publishing with the same event ids, effects that are idempotent)."""


def version_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


_SPECIAL = {"state", "timeline", "processed", "outbox", "effects", "version"}
_TUPLES = {"chain", "hops", "co_units"}


def to_document(case: Case) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": version_id(case.case_id, case.version)}
    for f in fields(Case):
        if f.name not in _SPECIAL:
            value = getattr(case, f.name)
            doc[f.name] = list(value) if f.name in _TUPLES else value
    return doc | {
        "state": case.state.value,
        "timeline": [asdict(e) for e in case.timeline],
        "processed": sorted(case.processed),
        "outbox": {
            o.message.event_id: {"topic": o.topic, "body": o.message.model_dump(mode="json")}
            for o in case.outbox
        },
        # A list, not a mapping: effect keys hold author ids, which may contain dots.
        "effects": [{"key": k, "value": v} for k, v in case.effects.items()],
        "version": case.version,
    }


def from_document(doc: dict[str, Any]) -> Case:
    simple: dict[str, Any] = {
        f.name: tuple(doc[f.name]) if f.name in _TUPLES else doc[f.name]
        for f in fields(Case)
        if f.name not in _SPECIAL and f.name in doc
    }
    return Case(
        **simple,
        state=CaseState(doc["state"]),
        timeline=tuple(TimelineEntry(**e) for e in doc.get("timeline", ())),
        processed=frozenset(doc.get("processed", ())),
        outbox=tuple(
            Outgoing(o["topic"], by_name(o["topic"]).message.model_validate(o["body"]))
            for o in doc.get("outbox", {}).values()
        ),
        effects={e["key"]: e["value"] for e in doc.get("effects", ())},
        version=doc["version"],
    )


KEEP_VERSIONS = 4  # older versions are pruned; a few are kept for whoever is reading them


def without_outbox(case: Case, event_ids: Sequence[str], effects: Sequence[str] = ()) -> Case:
    """The next version of `case`, with those outbox entries published and effects done."""
    gone = set(event_ids)
    return replace(
        case,
        outbox=tuple(o for o in case.outbox if o.message.event_id not in gone),
        effects={k: v for k, v in case.effects.items() if k not in effects},
        version=case.version + 1,
    )


def _check_next(case: Case, expected_version: int) -> None:
    if case.version != expected_version + 1:
        raise ValueError(
            f"case {case.case_id}: version {case.version} does not follow {expected_version}"
        )


class MongoCaseRepository:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._versions = ShardedCollection(client[database], "case_versions")

    async def ensure_indexes(self) -> None:
        await self._versions.create_index([("case_id", 1), ("version", -1)])
        await self._versions.create_index([("assigned_unit", 1), ("state", 1)])

    async def get(self, case_id: str) -> Case | None:
        doc = await self._latest(case_id)
        return from_document(doc) if doc else None

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        doc = to_document(case)
        try:
            await self._versions.for_key(case.case_id).insert_one(doc)
        except DuplicateKeyError:
            return False
        latest = await self._latest(case.case_id, {"version": 1})
        if latest is not None and latest["version"] != case.version:
            # A writer that read a version long ago can re-create a version id that was
            # pruned: its insert succeeds but it is not the latest. Undo it; the caller retries.
            await self._versions.for_key(case.case_id).delete_one({"_id": doc["_id"]})
            return False
        await self._versions.for_key(case.case_id).delete_many(
            {"case_id": case.case_id, "version": {"$lt": case.version - KEEP_VERSIONS}}
        )
        return True

    async def clear_outbox(self, case: Case, event_ids: list[str], effects: list[str]) -> None:
        if event_ids or effects:
            await self.save(without_outbox(case, event_ids, effects), expected_version=case.version)

    async def all(self) -> list[Case]:
        """The latest version of every case (statistics: reads every shard once)."""
        latest: dict[str, dict[str, Any]] = {}
        for shard in self._versions.all():
            async for doc in shard.find({}, {"processed": 0, "outbox": 0, "effects": 0}):
                seen = latest.get(doc["case_id"])
                if seen is None or seen["version"] < doc["version"]:
                    latest[doc["case_id"]] = doc
        return [from_document(d) for d in latest.values()]

    async def overdue(self) -> int:
        """Open cases past their deadline (a gauge): candidates by a scan of each shard, each
        confirmed on its latest version (older versions are kept for a while)."""
        candidates: set[str] = set()
        for shard in self._versions.all():
            async for doc in shard.find({"overdue": True}, {"case_id": 1}):
                candidates.add(doc["case_id"])
        count = 0
        for case_id in candidates:
            case = await self.get(case_id)
            count += case is not None and case.overdue and case.state in OPEN_STATES
        return count

    async def find(self, case_id: str) -> dict[str, Any] | None:
        """The latest version without the bookkeeping, for operators."""
        doc = await self._latest(case_id, {"processed": 0, "outbox": 0, "effects": 0})
        if doc is not None:
            doc.pop("_id")
        return doc

    async def _latest(
        self, case_id: str, projection: dict[str, int] | None = None
    ) -> dict[str, Any] | None:
        return await self._versions.for_key(case_id).find_one(
            {"case_id": case_id}, projection, sort=[("version", -1)]
        )


class InMemoryCaseRepository:
    """A fake for tests with the same semantics: the first writer of a version wins.

    `docs` maps each case id to its latest stored document (as Mongo would store it)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def get(self, case_id: str) -> Case | None:
        doc = self.docs.get(case_id)
        return from_document(doc) if doc else None

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        current = self.docs.get(case.case_id)
        if (current["version"] if current else 0) >= case.version:
            return False
        self.docs[case.case_id] = to_document(case)
        return True

    async def clear_outbox(self, case: Case, event_ids: list[str], effects: list[str]) -> None:
        if event_ids or effects:
            await self.save(without_outbox(case, event_ids, effects), expected_version=case.version)

    async def all(self) -> list[Case]:
        return [from_document(d) for d in self.docs.values()]

    async def overdue(self) -> int:
        return sum(c.overdue and c.state in OPEN_STATES for c in await self.all())
