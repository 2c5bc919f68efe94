"""Where cases are kept: each version of a case is one MongoDB document.

Writing version v+1 of a case is inserting the document `_id = "<case>:<v+1>"`; the unique `_id`
lets exactly one writer succeed, so two tracker replicas (or two subscribers of one) can never
apply a change twice or lose one. This is compare-and-set by unique index rather than by a
conditional update, because FerretDB 1.24 on SQLite does not apply conditional updates
atomically: of 20 concurrent `update_one({_id, version: 1}, ...)`, up to 4 matched (measured).
Unique inserts hold on FerretDB and MongoDB alike.

Version documents are never updated in place: FerretDB's update of a document is not atomic
against a concurrent insert of the same `_id` (measured: with 4 writers on one case, 5 of 400
changes were lost while outboxes were cleared by `$unset`). Clearing the outbox after publishing
is therefore a new version too.

## Pruning, and why a write needs no read after it

Old versions are deleted, which opens a hole: a writer that read version v long ago could insert
v+1 after v+1 was pruned, and its insert would succeed although v+1+k is the latest. Two rules
close it without a read after each write:

- Version 1 is never deleted, so inserting version 1 is a true compare-and-set: a new case needs
  no read at all.
- A version is deleted only when it is older than `PRUNE_AFTER` (10 minutes; its `written_ms`),
  and a writer trusts the version it last read or wrote as its base for `TRUST_SECONDS` (30 s)
  only. A trusted base v was the latest at some instant t0 (taken before the read or the insert
  that showed it), so any v+1 was written after t0 and cannot have been pruned before
  t0 + PRUNE_AFTER, long after the writer's insert (before t0 + TRUST_SECONDS). Assumed, as for
  the timers: replicas' clocks agree, and no writer stalls between its check and its insert,
  within the 9.5 minutes between the two bounds.

A write from a base this repository did not see recently (another replica's version, or one
read long ago) reads the latest version after its insert, as before, and undoes the insert if
it is not the latest. Each version document lists the versions below it that still exist, with
their age (`older`), so that the writer of a later version deletes the ones that have become old
enough by `_id`, without searching the collection (FerretDB scans it for any other filter).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from contracts import CaseState, by_name
from fengqiao.store import ShardedCollection
from services.tracker.adapters.recent import Recent
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

    async def find(self, case_id: str) -> dict[str, Any] | None:
        """The latest version as a document without the bookkeeping, for operators."""

    async def clear_outbox(self, case: Case, event_ids: list[str], effects: list[str]) -> None:
        """Forget outbox entries and effects of this version of `case` once they are published
        and done (as a new version; if another writer got there first, it carries them and does
        them again: publishing with the same event ids, effects that are idempotent)."""


def version_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


_SPECIAL = {"state", "timeline", "processed", "outbox", "effects", "version"}
_TUPLES = {"chain", "hops", "co_units"}
_SIMPLE = tuple(f.name for f in fields(Case) if f.name not in _SPECIAL)
_ENTRY = tuple(f.name for f in fields(TimelineEntry))


def to_document(case: Case) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": version_id(case.case_id, case.version)}
    for name in _SIMPLE:
        value = getattr(case, name)
        doc[name] = list(value) if name in _TUPLES else value
    return doc | {
        "state": case.state.value,
        # Field by field: `asdict` deep-copies, and was a tenth of a change's time.
        "timeline": [{f: getattr(e, f) for f in _ENTRY} for e in case.timeline],
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
        name: tuple(doc[name]) if name in _TUPLES else doc[name] for name in _SIMPLE if name in doc
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


KEEP_VERSIONS = 4  # versions kept below the latest for whoever is reading them
PRUNE_AFTER_MS = 10 * 60 * 1000  # a version is deleted only once it is this old (see above)
TRUST_SECONDS = 30.0  # a version read or written here is trusted as the latest for this long
SEEN_CASES = 50_000  # how many cases' latest versions this process remembers


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


# Left out of what operators and statistics read.
_BOOKKEEPING = {"processed": 0, "outbox": 0, "effects": 0, "older": 0}


@dataclass(frozen=True)
class _Seen:
    """A version of a case that was the latest when this process read or wrote it."""

    version: int
    written_ms: int
    older: tuple[tuple[int, int], ...]  # (version, written_ms) of the versions below, from 2 on
    confirmed: float  # monotonic instant before the read or insert that showed it


class MongoCaseRepository:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str,
        *,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._versions = ShardedCollection(client[database], "case_versions")
        self._seen: Recent[str, _Seen] = Recent(SEEN_CASES)
        self._wall_ms, self._monotonic = wall_ms, monotonic

    async def ensure_indexes(self) -> None:
        await self._versions.create_index([("case_id", 1), ("version", -1)])
        await self._versions.create_index([("assigned_unit", 1), ("state", 1)])

    async def get(self, case_id: str) -> Case | None:
        started = self._monotonic()
        doc = await self._latest(case_id)
        if doc is None:
            return None
        self._seen.put(case_id, _seen_in(doc, started))
        return from_document(doc)

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        collection = self._versions.for_key(case.case_id)
        trusted, older = await self._base(case.case_id, expected_version)
        now = self._wall_ms()
        # Delete what has become old enough (before the insert: a crash leaves them listed in
        # the base for the next writer). Never version 1, never the latest KEEP_VERSIONS.
        due = [
            (v, ms)
            for v, ms in older
            if v < case.version - KEEP_VERSIONS and ms < now - PRUNE_AFTER_MS
        ]
        for v, _ in due:
            await collection.delete_one({"_id": version_id(case.case_id, v)})
        older = tuple(entry for entry in older if entry not in due)
        # Objects, not pairs: FerretDB refuses nested arrays.
        listed = [{"version": v, "written_ms": ms} for v, ms in older]
        doc = to_document(case) | {"written_ms": now, "older": listed}
        started = self._monotonic()
        try:
            await collection.insert_one(doc)
        except DuplicateKeyError:
            self._seen.forget(case.case_id)
            return False
        if not trusted:
            latest = await self._latest(case.case_id, {"version": 1})
            if latest is not None and latest["version"] != case.version:
                # A writer that read a version long ago can re-create a version id that was
                # pruned: its insert succeeds but it is not the latest. Undo it; the caller retries.
                await collection.delete_one({"_id": doc["_id"]})
                self._seen.forget(case.case_id)
                return False
        self._seen.put(case.case_id, _Seen(case.version, now, older, started))
        return True

    async def _base(self, case_id: str, version: int) -> tuple[bool, tuple[tuple[int, int], ...]]:
        """Whether the base `version` can be trusted as the latest, and the versions below the
        one to write (as far as known)."""
        if version == 0:
            return True, ()  # version 1 is never deleted: its insert is a true compare-and-set
        seen = self._seen.get(case_id)
        if seen is not None and seen.version == version:
            trusted = self._monotonic() - seen.confirmed < TRUST_SECONDS
            return trusted, _below_next(seen.older, version, seen.written_ms)
        doc = await self._versions.for_key(case_id).find_one(
            {"_id": version_id(case_id, version)}, {"version": 1, "written_ms": 1, "older": 1}
        )
        if doc is None:  # pruned (the caller is stale: the check after the insert says so)
            return False, ()  # or never written (a case seeded at a later version)
        seen = _seen_in(doc, 0.0)
        return False, _below_next(seen.older, version, seen.written_ms)

    async def clear_outbox(self, case: Case, event_ids: list[str], effects: list[str]) -> None:
        if event_ids or effects:
            await self.save(without_outbox(case, event_ids, effects), expected_version=case.version)

    async def all(self) -> list[Case]:
        """The latest version of every case (statistics: reads every shard once)."""
        latest: dict[str, dict[str, Any]] = {}
        for shard in self._versions.all():
            async for doc in shard.find({}, _BOOKKEEPING):
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
        doc = await self._latest(case_id, _BOOKKEEPING)
        if doc is not None:
            doc.pop("_id")
        return doc

    async def _latest(
        self, case_id: str, projection: dict[str, int] | None = None
    ) -> dict[str, Any] | None:
        collection = self._versions.for_key(case_id)
        # Version 1 is never deleted: without it there is no case, and a lookup by `_id` says so
        # without the search by `case_id` (which FerretDB answers by reading the whole shard).
        # Most cases a tracker has not seen yet are new ones.
        if await collection.find_one({"_id": version_id(case_id, 1)}, {"_id": 1}) is None:
            return None
        return await collection.find_one({"case_id": case_id}, projection, sort=[("version", -1)])


def _seen_in(doc: dict[str, Any], confirmed: float) -> _Seen:
    # Documents written before versions carried their age count as old.
    return _Seen(
        version=doc["version"],
        written_ms=int(doc.get("written_ms", 0)),
        older=tuple((int(o["version"]), int(o["written_ms"])) for o in doc.get("older", ())),
        confirmed=confirmed,
    )


def _below_next(
    older: tuple[tuple[int, int], ...], version: int, written_ms: int
) -> tuple[tuple[int, int], ...]:
    """The versions below the one after `version`: those below `version`, and it (never 1)."""
    return (*older, (version, written_ms)) if version >= 2 else older


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

    async def find(self, case_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(case_id)
        if doc is None:
            return None
        return {k: v for k, v in doc.items() if k != "_id" and k not in _BOOKKEEPING}
