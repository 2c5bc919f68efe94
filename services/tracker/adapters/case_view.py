"""The readable projection of the cases: one document per case in `cases`, for people and reads.

The version documents (`case_versions`) are the truth, written by compare-and-set; they are made
for writing (one document per version, lists packed in one JSON text). After each version is
written, the case's document in `cases` is replaced by its view: the latest state as plain fields,
instants as real dates (BSON, to the millisecond), the timeline in time order, and `version`.
The unit API's lists and the operators' case read it; the statistics, supervision and the
overdue gauge read its small projections (`projections.py`: `case_summaries_<YYYYMM>`,
`open_cases`).

## Safe against reordering, without a conditional update

FerretDB does not apply a conditional update atomically (a replace "only if older" may overwrite
a newer document), so the writer converges instead: it writes the view of the newest version it
knows of each case, then reads back what is on record (version p) and checks that version p+1 does
not exist among the versions (a lookup by `_id`). A write of an older version that lands after a
newer one is thus always followed by its writer's check, which finds the newer version and writes
the latest again; the last write to land is therefore checked by its own writer, and stands only
if it is the latest. Versions are inserted before their views are written, so the check never
misses a version whose view was written before it.

The views are written in the background, many cases at once (a batch gathers for `GATHER_FOR`,
each case at its newest version only), off the path of a change: the projection trails its
versions by a fraction of a second, and a process that stops writes what it holds
(`flush`). A tracker that crashed between a version and its view leaves that view one behind
until the case's next change. A view is replaced by a delete and an insert (see `_write`): a
reader may miss it for the instant between the two (and until the next change, after a crash
between them). A store without views gets them at start (`MongoCaseRepository.ensure_indexes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.contracts import CaseState
from fengqiao.runtime.messaging import Outages, is_transient
from fengqiao.runtime.store import insert_new
from fengqiao.services.tracker.adapters.case_codec import version_id
from fengqiao.services.tracker.adapters.projections import (
    OPEN_CASES,
    build_missing,
    open_case,
    projections,
    received,
    summary,
)
from fengqiao.services.tracker.domain import Case, TimelineEntry

log = logging.getLogger("fengqiao.tracker.cases")

CASES = "cases"
# Instants of a case (ISO 8601 text in the domain), dates in its view.
INSTANTS = frozenset(
    {"received_at", "sign_due", "signed_at", "first_progress_at", "deadline", "paused_since"}
    | {"resolved_at", "closed_at"}
)
_HIDDEN = {"processed", "repeat_ids", "outbox", "effects", "clocks"}  # the tracker's bookkeeping
_PLAIN = tuple(f.name for f in fields(Case) if f.name not in _HIDDEN | {"state", "timeline"})
_TUPLES = {"chain", "hops", "co_units"}
# The nested values of a view, each kept as one JSON text (instants in it as ISO 8601 text, UTC):
# FerretDB stores with each document a description of every nested field's type, 2.9 KB of a
# 6.8 KB view for these (measured); `unpack_view` reads them back.
PACKED = ("reply_to", "hops", "extension", "replies", "repeats", "timeline")
NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
_ENTRY = tuple(f.name for f in fields(TimelineEntry))
RETRY_AFTER = 1.0  # seconds, after the store failed a batch
# Seconds the views gather before a batch is written: a case changes several times in a burst and
# only its newest view is written, so the views cost at most one write per changing case and
# second, whatever the rate of changes. A view is a nested document, the form FerretDB stores
# slowest: written after each batch as soon as the one before was done, FerretDB's CPU per case
# event went from 150–264 µs to 389–475 µs; gathering 0.25 s, 279–429 µs (bench/tracker.py).
GATHER_FOR = 1.0


def _date(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return value


def _iso(text: str | None) -> str | None:
    """An instant of a packed value as a BSON date would read: UTC, to the millisecond."""
    at = _date(text)
    if at is None:
        return None
    at = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000).isoformat()


def view(case: Case) -> dict[str, Any]:
    """The document of `case` in `cases`."""
    doc: dict[str, Any] = {"_id": case.case_id}
    for name in _PLAIN:
        value = getattr(case, name)
        if name in INSTANTS:
            value = _date(value)
        elif name == "hops":
            value = [{**h, "at": _iso(h.get("at"))} for h in value]
        elif name in _TUPLES:
            value = list(value)
        doc[name] = value
    doc["state"] = case.state.value
    entries = sorted(case.timeline, key=lambda e: _date(e.at) or NEVER)  # stable: as happened
    doc["timeline"] = [{f: getattr(e, f) for f in _ENTRY} | {"at": _iso(e.at)} for e in entries]
    for name in PACKED:
        if doc.get(name) is not None:
            doc[name] = json.dumps(doc[name], ensure_ascii=False, separators=(",", ":"))
    return doc


def unpack_view(doc: dict[str, Any]) -> dict[str, Any]:
    """A view with its packed values read (a view written before they were packed: as it is)."""
    return {k: json.loads(v) if k in PACKED and isinstance(v, str) else v for k, v in doc.items()}


def case_of(doc: dict[str, Any]) -> Case:
    """A `Case` with what its view holds (no bookkeeping): for the statistics."""
    doc = unpack_view(doc)
    plain = {n: doc[n] for n in _PLAIN if n in doc}
    for name in INSTANTS & plain.keys():
        plain[name] = _text(plain[name])
    plain["hops"] = tuple({**h, "at": _text(h.get("at"))} for h in plain.get("hops", ()))
    plain["chain"], plain["co_units"] = (
        tuple(plain.get("chain", ())),
        tuple(plain.get("co_units", ())),
    )
    timeline = tuple(TimelineEntry(**(e | {"at": _text(e["at"])})) for e in doc.get("timeline", ()))
    return Case(**plain, state=CaseState(doc["state"]), timeline=timeline)


def readable(doc: dict[str, Any]) -> dict[str, Any]:
    """A view as the APIs answer it: without `_id`, instants as ISO 8601 text (UTC)."""
    doc = unpack_view(doc)
    out = {k: _text(v) if k in INSTANTS else v for k, v in doc.items() if k != "_id"}
    out["timeline"] = [e | {"at": _text(e["at"])} for e in doc.get("timeline", ())]
    out["hops"] = [h | {"at": _text(h.get("at"))} for h in doc.get("hops", ())]
    return out


class MongoCaseViews:
    """The `cases` collection: written in the background after each version (see above)."""

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str,
        versions: str,
        latest: Callable[[str], Awaitable[Case | None]],
        outages: Outages | None = None,
    ) -> None:
        self._db = db = client[database]
        # A store outage is waited out with the service; the views catch up after.
        self.outages = outages or Outages("tracker")
        self._cases, self._versions, self._latest = db[CASES], db[versions], latest
        self._open = db[OPEN_CASES]
        self._projections = projections(db)
        self._pending: dict[str, Case] = {}
        self._writer: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set by `flush`: write now

    async def ensure_indexes(self) -> None:
        # No index: a month's summaries are read whole by the statistics of a period.
        await build_missing(self._db, CASES, self._projections)

    async def empty(self) -> bool:
        return await self._cases.count_documents({}, limit=1) == 0

    def written(self, case: Case) -> None:
        """`case` was written as its latest version: its view is to be written."""
        pending = self._pending.get(case.case_id)
        if pending is None or pending.version < case.version:
            self._pending[case.case_id] = case
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())

    async def flush(self) -> None:
        """Wait until every view noted so far is written."""
        while self._writer is not None:
            self._hurry.set()
            await asyncio.shield(self._writer)
        self._hurry.clear()

    async def _write_all(self) -> None:
        try:
            while self._pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), GATHER_FOR)
                batch, self._pending = self._pending, {}
                try:
                    await self._write(batch)
                except Exception as exc:
                    for case in batch.values():
                        self.written(case)
                    if is_transient(exc):  # the store is away: wait with the service
                        await self.outages.wait(exc, "cases view", self)
                        continue
                    log.exception("cases: writing %d views failed; trying again", len(batch))
                    await asyncio.sleep(RETRY_AFTER)
                else:
                    self.outages.passed(self)
        finally:
            self._writer = None

    async def _on_record(self, ids: Sequence[str]) -> dict[str, int]:
        found = self._cases.find({"_id": {"$in": list(ids)}}, {"version": 1})
        return {d["_id"]: d["version"] async for d in found}

    async def _write(self, batch: dict[str, Case]) -> None:
        """Replace the views older than the batch's versions: deleted and inserted together (a
        batch of inserts is one transaction on FerretDB; its updates go one by one, 2–3 times
        slower, and a bulk of upserts stalled it; measured); then their projections."""
        on_record = await self._on_record(list(batch))
        views = {c: view(case) for c, case in batch.items() if on_record.get(c, 0) <= case.version}
        newer = [c for c in batch.values() if on_record.get(c.case_id, 0) < c.version]
        if newer:
            await self._cases.delete_many({"_id": {"$in": [c.case_id for c in newer]}})
            for case_id in await insert_new(self._cases, [views[c.case_id] for c in newer]):
                self.written(batch[case_id])  # another writer's came in between: compare again
        for projection in self._projections:
            recorded = await projection.on_record(list(views.values()))
            stale = [v for c, v in views.items() if projection.stale(batch[c], v, recorded)]
            await projection.write(stale)
        await self._check(batch, views)

    async def _check(self, batch: dict[str, Case], views: dict[str, dict[str, Any]]) -> None:
        """Read back what is on record; write again what an older write overwrote, and the
        latest where a later version exists than the one on record."""
        on_record = await self._on_record(list(batch))
        for case in batch.values():
            if on_record.get(case.case_id, 0) < case.version:
                self.written(case)
        current = [c for c, v in on_record.items() if v == batch[c].version and c in views]
        for projection in self._projections:
            recorded = await projection.on_record([views[c] for c in current])
            for c in current:
                if projection.stale(batch[c], views[c], recorded):
                    self.written(batch[c])  # its view stands: its projection is written again
        after = [version_id(c, v + 1) for c, v in on_record.items() if v >= batch[c].version]
        found = self._versions.find({"_id": {"$in": after}}, {"case_id": 1})
        behind = [
            d["case_id"]
            async for d in found
            # A later version written here is on its way already.
            if self._pending.get(d["case_id"], batch[d["case_id"]]).version
            <= on_record[d["case_id"]]
        ]
        for latest in await asyncio.gather(*(self._latest(case_id) for case_id in behind)):
            if latest is not None:
                self.written(latest)

    async def get(self, case_id: str) -> dict[str, Any] | None:
        return await self._cases.find_one({"_id": case_id})

    async def many(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The views of those cases that have one, in the order asked."""
        found = {d["_id"]: d async for d in self._cases.find({"_id": {"$in": list(case_ids)}})}
        return [found[c] for c in dict.fromkeys(case_ids) if c in found]

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
        """The views received in [since, until), with the fields the statistics read only (no
        timeline, texts or replies: what a case reads stays the same size however long it
        lives), from the summaries of the period's months only."""
        return await received(self._db, since, until)

    async def overdue_open(self) -> int:
        return await self._open.count_documents({"overdue": True})

    async def open_cases(self) -> list[dict[str, Any]]:
        """The views of the open cases, with the fields supervision reads only."""
        return await self._open.find({}).to_list()


class InMemoryCaseViews:
    """The fake: views kept in a mapping as they would be stored (`docs`), written at once."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def written(self, case: Case) -> None:
        if self.docs.get(case.case_id, {}).get("version", 0) < case.version:
            self.docs[case.case_id] = view(case)

    async def flush(self) -> None:
        return None

    async def get(self, case_id: str) -> dict[str, Any] | None:
        return self.docs.get(case_id)

    async def many(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [self.docs[c] for c in dict.fromkeys(case_ids) if c in self.docs]

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[dict[str, Any]]:
        return [
            s
            for s in map(summary, self.docs.values())
            if s is not None and since <= s["received_at"] < until
        ]

    async def overdue_open(self) -> int:
        return sum(d["overdue"] for d in await self.open_cases())

    async def open_cases(self) -> list[dict[str, Any]]:
        return [d for d in map(open_case, self.docs.values()) if d is not None]
