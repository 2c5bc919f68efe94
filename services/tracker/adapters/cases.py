"""Where cases are kept: each version of a case is a versioned record in `case_versions`
(`fengqiao.runtime.store.versions`: the next version by unique insert, the latest by `_id`), and
each case has a readable view in `cases` (`case_view`), written after each of its versions.

Writing version v+1 of a case is inserting `_id = "<case>:<v+1:08d>"`; exactly one writer wins,
so two tracker replicas (or two subscribers of one) never apply a change twice or lose one.
Clearing the outbox after publishing is a new version too (a version that may be the latest is
never updated in place). The versions' inserts go to the store together (`GroupInsert`).

A case that has ended (closed or merged) with nothing left to do is compacted: its older versions
become stubs. An open case keeps its newest versions (most cases have tens of versions, about 3 KB
each); every `COMPACT_EVERY` versions, those below its newest `KEEP_FULL` become stubs too, so a
case posted about thousands of times keeps about 40 full versions and a stub per older version.

Reads by the tracker's changes (`get`, `get_many`) use the versions, the truth; reads for people
(`find`, `views`, `received`, `overdue`) use the views.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.contracts import CaseState
from fengqiao.runtime.messaging import Outages
from fengqiao.runtime.store import MongoRecords, Versions, unpack
from fengqiao.services.tracker.adapters.case_codec import (
    PACKED,
    from_document,
    stored,
    to_document,
    unpacked,
    version_id,
)
from fengqiao.services.tracker.adapters.case_view import (
    InMemoryCaseViews,
    MongoCaseViews,
    case_of,
    readable,
)
from fengqiao.services.tracker.domain import Case, evolve

__all__ = [
    "PACKED",
    "VERSIONS",
    "CaseRepository",
    "InMemoryCaseRepository",
    "MongoCaseRepository",
    "from_document",
    "stored",
    "to_document",
    "unpacked",
    "version_id",
    "without_outbox",
]


class CaseRepository(Protocol):
    async def get(self, case_id: str) -> Case | None:
        """The latest version of the case, or None."""

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, Case | None]:
        """The latest version of each case, or None (e.g. the cases of a poll's appeals, most
        of them new)."""

    async def save(self, case: Case, *, expected_version: int) -> bool:
        """Write `case` as the version after `expected_version`; False when another writer
        wrote that version first."""

    async def find(self, case_id: str) -> dict[str, Any] | None:
        """The case's view as the APIs answer it (plain fields, ISO 8601 instants), or None."""

    async def views(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The views of those cases that have one, in the order asked (as `find`'s)."""

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[Case]:
        """The cases received in [since, until), from their views (for the statistics)."""

    async def overdue(self) -> int:
        """How many open cases are past their deadline."""

    async def open_cases(self) -> list[Case]:
        """The open cases, from their views, with their clocks (for supervision, 督办)."""


VERSIONS = "case_versions"  # every case's versions, found by `_id`
ENDED = frozenset({CaseState.CLOSED, CaseState.MERGED})  # compacted once nothing is left to do
# An open case is compacted too, every COMPACT_EVERY versions: its versions below the newest
# KEEP_FULL become stubs, so a case keeps at most KEEP_FULL + COMPACT_EVERY full versions (each
# of bounded size: `domain.Bounds`) and a stub per older one, whatever its age.
COMPACT_EVERY = 32
KEEP_FULL = 8
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


def _case(doc: dict[str, Any] | None) -> Case | None:
    return from_document(unpack(doc)) if doc is not None else None


class MongoCaseRepository:
    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str,
        outages: Outages | None = None,
    ) -> None:
        self._records = MongoRecords(client, database)
        self._versions = Versions(
            self._records,
            VERSIONS,
            id_of=version_id,
            key_field="case_id",
            remember=KNOWN_CASES,
        )
        self._views = MongoCaseViews(client, database, VERSIONS, self.get, outages)

    async def ensure_indexes(self) -> None:
        """The versions need none (every lookup is by `_id`); the views' period index, and the
        views of a store written before there were views (once: while `cases` is empty)."""
        await self._views.ensure_indexes()
        if await self._views.empty():
            await self.rebuild_views()

    async def rebuild_views(self) -> int:
        """Write the view of every case from its latest version (reads every version once: for
        a store without views; run before the tracker writes). The number of views written."""
        latest: dict[str, dict[str, Any]] = {}
        versions = self._records.database[VERSIONS]
        async for doc in versions.find({"stub": {"$exists": False}}):
            if doc["version"] > latest.get(doc["case_id"], {"version": 0})["version"]:
                latest[doc["case_id"]] = doc
        for doc in latest.values():
            self._views.written(from_document(unpack(doc)))
        await self._views.flush()
        return len(latest)

    async def flush(self) -> None:
        """Wait until the views of every version written so far are written."""
        await self._views.flush()

    async def get(self, case_id: str) -> Case | None:
        return _case(await self._versions.latest(case_id))

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, Case | None]:
        found = await self._versions.latest_many(case_ids)
        return {case_id: _case(doc) for case_id, doc in found.items()}

    async def save(self, case: Case, *, expected_version: int) -> bool:
        _check_next(case, expected_version)
        if not await self._versions.insert(case.case_id, case.version, stored(case)):
            return False
        self._views.written(case)
        if case.state in ENDED and not case.outbox and not case.effects:
            await self._versions.compact(case.case_id, case.version)
        elif case.version % COMPACT_EVERY == 0 and case.version > KEEP_FULL:
            # The step's versions, and the step's before it (in case its writer stopped first).
            below = case.version - KEEP_FULL
            await self._versions.compact(case.case_id, below, since=below - 2 * COMPACT_EVERY)
        return True

    async def find(self, case_id: str) -> dict[str, Any] | None:
        doc = await self._views.get(case_id)
        return readable(doc) if doc is not None else None

    async def views(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [readable(doc) for doc in await self._views.many(case_ids)]

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[Case]:
        return [case_of(doc) for doc in await self._views.received(since, until)]

    async def overdue(self) -> int:
        return await self._views.overdue_open()

    async def open_cases(self) -> list[Case]:
        return [case_of(doc) for doc in await self._views.open_cases()]


class InMemoryCaseRepository:
    """A fake for tests with the same semantics: the first writer of a version wins.

    `docs` maps each case id to its latest stored document (as Mongo would store it); `views`
    holds the cases' views."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.views_ = InMemoryCaseViews()

    async def flush(self) -> None:
        return None

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
        self.views_.written(case)
        return True

    async def find(self, case_id: str) -> dict[str, Any] | None:
        doc = await self.views_.get(case_id)
        return readable(doc) if doc is not None else None

    async def views(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [readable(doc) for doc in await self.views_.many(case_ids)]

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[Case]:
        return [case_of(doc) for doc in await self.views_.received(since, until)]

    async def overdue(self) -> int:
        return await self.views_.overdue_open()

    async def open_cases(self) -> list[Case]:
        return [case_of(doc) for doc in await self.views_.open_cases()]
