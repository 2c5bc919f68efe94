"""Where cases are kept: each version of a case is one MongoDB document, in one collection.

Writing version v+1 of a case is inserting the document `_id = "<case>:<v+1>"`; the unique `_id`
lets exactly one writer succeed, so two tracker replicas (or two subscribers of one) can never
apply a change twice or lose one. This is compare-and-set by unique index rather than by a
conditional update, because FerretDB 1.24 on SQLite does not apply conditional updates
atomically: of 20 concurrent `update_one({_id, version: 1}, ...)`, up to 4 matched (measured).
Unique inserts hold on FerretDB and MongoDB alike. Version documents are never updated in place
while they may be the latest: FerretDB's update of a document is not atomic against a concurrent
insert of the same `_id` (measured: with 4 writers on one case, 5 of 400 changes were lost while
outboxes were cleared by `$unset`). Clearing the outbox after publishing is a new version too.

## Every version exists, so the latest is found by `_id`

No version is ever deleted: versions 1 … latest of a case all exist. So an insert of v+1 fails
exactly when someone wrote v+1 — a true compare-and-set from any base, however old: a writer
needs no read after its write, and a guessed base (the version this process last saw) is always
safe to try. The latest version is found by point lookups on `_id` (a galloping search from a
version known to exist, as the timers do): FerretDB answers any other filter by reading the whole
collection, so nothing here queries by `case_id`. The versions' inserts go to the store together
(`GroupInsert`: one `insert_many` for all the cases being changed at that moment).

A case that has ended (closed or merged) with nothing left to do is compacted: its older versions
are replaced by stubs (`_id`, `case_id`, `version`, `stub`) — an in-place update of documents
that are no longer the latest, which keeps every version's `_id` while the storage of a finished
case shrinks to its last version. An open case keeps its versions (a case lives through tens of
versions, about 3 KB each).

Stores written before this layout kept versions in 64 collections `case_versions_00`…`_3f` and
deleted old ones; `ensure_indexes` moves them into the one collection and fills the deleted ones
with stubs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, Protocol

from pydantic_core import from_json, to_json
from pymongo import AsyncMongoClient, ReplaceOne

from fengqiao.contracts import CaseState, Outgoing, by_name
from fengqiao.runtime.store import GroupInsert, move_collections
from fengqiao.services.tracker.adapters.recent import Recent
from fengqiao.services.tracker.domain import OPEN_STATES, Case, TimelineEntry, evolve
from fengqiao.services.tracker.domain.effects import parsed_effects, stored_effects


class CaseRepository(Protocol):
    async def get(self, case_id: str) -> Case | None:
        """The latest version of the case, or None."""

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, Case | None]:
        """The latest version of each case, or None (e.g. the cases of a poll's appeals, most
        of them new)."""

    async def save(self, case: Case, *, expected_version: int) -> bool:
        """Write `case` as the version after `expected_version`; False when another writer
        wrote that version first."""

    async def all(self) -> list[Case]:
        """The latest version of every case."""

    async def overdue(self) -> int:
        """How many open cases are past their deadline."""

    async def find(self, case_id: str) -> dict[str, Any] | None:
        """The latest version as a document without the bookkeeping, for operators."""


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
        "effects": _effects(case),
        "version": case.version,
    }


def _effects(case: Case) -> list[dict[str, Any]]:
    return stored_effects(case.effects)


# A version as stored: these fields (lists and mappings, never queried) as one JSON text,
# `packed`. FerretDB stores a document field by field (each value with its type, in its own JSON
# form, which SQLite then parses again for the `_id` index): a case's version took 826 µs of its
# CPU as nested fields and 196 µs packed (measured, 4 KB versions), and case versions were most
# of what the tracker's store did. The scalars stay fields, for queries (`overdue`, `stub`) and
# for people reading the store.
PACKED = (
    *("reply_to", "chain", "hops", "co_units", "replies", "clocks", "timeline"),
    *("processed", "outbox", "effects"),
)
_SCALARS = tuple(name for name in _SIMPLE if name not in PACKED)
_JOINED = ("timeline", "outbox")  # joined from JSON made once (`stored`)
_AS_THEY_ARE = tuple(n for n in PACKED if n not in (*_JOINED, "processed", "effects"))


def stored(case: Case) -> dict[str, Any]:
    """The document to store for `case`: `to_document`'s, with the PACKED fields as one JSON
    text. The timeline's entries and the outbox's messages are each made JSON once (they are
    the bulk of a version, and the same in every version after theirs), and joined here."""
    doc: dict[str, Any] = {"_id": version_id(case.case_id, case.version)}
    for name in _SCALARS:
        doc[name] = getattr(case, name)
    doc["state"] = case.state.value
    doc["version"] = case.version
    rest = {name: getattr(case, name) for name in _AS_THEY_ARE}
    small = to_json(rest | {"processed": sorted(case.processed), "effects": _effects(case)})
    timeline = b",".join(entry.json for entry in case.timeline)
    outbox = b",".join(
        b'%b:{"topic":%b,"body":%b}' % (to_json(o.message.event_id), to_json(o.topic), o.body)
        for o in case.outbox
    )
    text = small[:-1] + b',"timeline":[' + timeline + b'],"outbox":{' + outbox + b"}}"
    doc["packed"] = text.decode()
    return doc


def unpacked(doc: dict[str, Any]) -> dict[str, Any]:
    """`to_document`'s form of a stored document (one written before `packed` is that already)."""
    if "packed" not in doc:
        return doc
    nested: dict[str, Any] = from_json(doc["packed"])
    return {k: v for k, v in doc.items() if k != "packed"} | nested


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
        effects=parsed_effects(doc.get("effects", ())),
        version=doc["version"],
    )


log = logging.getLogger("fengqiao.tracker.cases")

VERSIONS = "case_versions"  # every case's versions, found by `_id`
OLD_VERSION_SHARDS = re.compile(rf"^{VERSIONS}_[0-9a-f]{{2}}$")  # the layout before, see above
ENDED = frozenset({CaseState.CLOSED, CaseState.MERGED})  # compacted once nothing is left to do
KNOWN_CASES = 50_000  # cases whose latest version this process remembers (a lower bound)


def without_outbox(case: Case, event_ids: Sequence[str], effects: Sequence[str] = ()) -> Case:
    """The next version of `case`, with those outbox entries published and effects done."""
    gone = set(event_ids)
    return evolve(
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


# Left out of what operators and statistics read (`older`, `written_ms`: layouts before).
_BOOKKEEPING = {"processed": 0, "outbox": 0, "effects": 0, "older": 0, "written_ms": 0}


def _without_bookkeeping(doc: dict[str, Any]) -> dict[str, Any]:
    # The projection leaves them out of documents stored before `packed` only.
    return {k: v for k, v in doc.items() if k not in _BOOKKEEPING}


def _stub(case_id: str, version: int) -> dict[str, Any]:
    return {"_id": version_id(case_id, version), "case_id": case_id, "version": version, "stub": 1}


def _with_stubs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents of a shard of the layout before, without its bookkeeping, and stubs for the
    versions it deleted: every version exists again."""
    latest: dict[str, int] = {}
    for doc in docs:
        latest[doc["case_id"]] = max(latest.get(doc["case_id"], 0), doc["version"])
    present = {doc["_id"] for doc in docs}
    stubs = [
        _stub(case_id, v)
        for case_id, last in latest.items()
        for v in range(1, last)
        if version_id(case_id, v) not in present
    ]
    old = ("older", "written_ms")
    return [{k: v for k, v in d.items() if k not in old} for d in docs] + stubs


class MongoCaseRepository:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._db = client[database]
        self._versions = self._db[VERSIONS]
        self._inserts = GroupInsert(self._db)
        # The latest version this process wrote or read of each case: versions are never
        # deleted, so it is a version that exists, where the search for the latest starts.
        self._known: Recent[str, int] = Recent(KNOWN_CASES)

    async def ensure_indexes(self) -> None:
        """No index to create (every lookup is by `_id`); moves the versions of a store written
        before into the one collection (run before the tracker starts, with no older tracker
        running: one that still wrote to the old collections would lose those writes)."""
        moved = await move_collections(self._db, OLD_VERSION_SHARDS, VERSIONS, _with_stubs)
        for name, count in moved.items():
            log.info("cases: moved %d versions from %s into %s", count, name, VERSIONS)

    async def get(self, case_id: str) -> Case | None:
        doc = await self._latest(case_id)
        return from_document(doc) if doc is not None else None

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, Case | None]:
        """The first step of each case's search for its latest version together: one `$in` of
        the version after the one known (version 1 for a case never seen) and of the known one.
        Without the next version, the known one is the latest (versions have no gaps) and a case
        never seen is None (the common case: new); the others go on side by side."""
        ids = list(dict.fromkeys(case_ids))
        if not ids:
            return {}
        known = {c: self._known.get(c) or 0 for c in ids}
        wanted = [version_id(c, v + 1) for c, v in known.items()]
        wanted += [version_id(c, v) for c, v in known.items() if v]
        versions = self._versions.find({"_id": {"$in": wanted}})
        found = {doc["_id"]: unpacked(doc) async for doc in versions}

        async def latest(case_id: str) -> dict[str, Any] | None:
            after = found.get(version_id(case_id, known[case_id] + 1))
            if after is not None:
                return await self._latest(case_id, after)  # goes on from there
            if not known[case_id]:
                return None
            doc = found.get(version_id(case_id, known[case_id]))
            if doc is None or "stub" in doc:  # gone, or compacted since: search again
                return await self._latest(case_id)
            return doc

        docs = await asyncio.gather(*(latest(c) for c in ids))
        return {
            c: from_document(d) if d is not None else None for c, d in zip(ids, docs, strict=True)
        }

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        if not await self._inserts.insert(VERSIONS, stored(case)):
            # Someone wrote that version: it exists, the search for the latest starts there.
            self._known.put(case.case_id, case.version)
            return False
        self._known.put(case.case_id, case.version)
        if case.state in ENDED and not case.outbox and not case.effects:
            await self._compact(case)
        return True

    async def _compact(self, case: Case) -> None:
        """Replace the versions below `case` (the latest) by stubs: the case has ended."""
        stubs = [_stub(case.case_id, v) for v in range(1, case.version)]
        if stubs:
            await self._versions.bulk_write([ReplaceOne({"_id": s["_id"]}, s) for s in stubs])

    async def all(self) -> list[Case]:
        """The latest version of every case (statistics: reads the whole collection once)."""
        latest: dict[str, dict[str, Any]] = {}
        async for doc in self._versions.find({"stub": {"$exists": False}}, _BOOKKEEPING):
            seen = latest.get(doc["case_id"])
            if seen is None or seen["version"] < doc["version"]:
                latest[doc["case_id"]] = doc
        return [from_document(_without_bookkeeping(unpacked(d))) for d in latest.values()]

    async def overdue(self) -> int:
        """Open cases past their deadline (a gauge): candidates by a scan, each confirmed on its
        latest version (the older versions of a case stay)."""
        candidates = {
            doc["case_id"] async for doc in self._versions.find({"overdue": True}, {"case_id": 1})
        }
        count = 0
        for case_id in candidates:
            case = await self.get(case_id)
            count += case is not None and case.overdue and case.state in OPEN_STATES
        return count

    async def find(self, case_id: str) -> dict[str, Any] | None:
        """The latest version without the bookkeeping, for operators."""
        doc = await self._latest(case_id)
        return {k: v for k, v in _without_bookkeeping(doc).items() if k != "_id"} if doc else None

    async def _latest(
        self, case_id: str, start: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The latest version's document: gallop up from a version known to exist (`start`, a
        version document just read, or the one this process knows; from 0 when none is: version
        1 is probed first, and without it there is no case), then bisect. Each step is a lookup
        by `_id`."""
        low, low_doc, step = self._known.get(case_id) or 0, None, 1
        if start is not None and start["version"] >= low:
            low, low_doc = start["version"], start
        while (found := await self._version(case_id, low + step)) is not None:
            low, low_doc, step = low + step, found, step * 2
        high = low + step  # missing
        while high - low > 1:
            middle = (low + high) // 2
            if (found := await self._version(case_id, middle)) is None:
                high = middle
            else:
                low, low_doc = middle, found
        if low == 0:
            return None
        if low_doc is None or "stub" in low_doc:
            # Known but not read here, or compacted since it was read (so a later one exists).
            low_doc = await self._version(case_id, low)
            if low_doc is None or "stub" in low_doc:
                # Gone (a dropped store) or compacted: search again, from scratch or from it.
                if low_doc is None:
                    self._known.forget(case_id)
                else:
                    self._known.put(case_id, low)
                return await self._latest(case_id)
        self._known.put(case_id, low)
        return low_doc

    async def _version(self, case_id: str, version: int) -> dict[str, Any] | None:
        doc = await self._versions.find_one({"_id": version_id(case_id, version)})
        return unpacked(doc) if doc is not None else None


class InMemoryCaseRepository:
    """A fake for tests with the same semantics: the first writer of a version wins.

    `docs` maps each case id to its latest stored document (as Mongo would store it)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def get(self, case_id: str) -> Case | None:
        doc = self.docs.get(case_id)
        return from_document(doc) if doc else None

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, Case | None]:
        return {case_id: await self.get(case_id) for case_id in case_ids}

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        current = self.docs.get(case.case_id)
        if (current["version"] if current else 0) >= case.version:
            return False
        self.docs[case.case_id] = to_document(case)
        return True

    async def all(self) -> list[Case]:
        return [from_document(d) for d in self.docs.values()]

    async def overdue(self) -> int:
        return sum(c.overdue and c.state in OPEN_STATES for c in await self.all())

    async def find(self, case_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(case_id)
        if doc is None:
            return None
        return {k: v for k, v in doc.items() if k != "_id" and k not in _BOOKKEEPING}
