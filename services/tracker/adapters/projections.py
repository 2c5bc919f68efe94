"""Small projections of the case views, kept beside `cases` so that what is read often does not
read every case ever received.

FerretDB answers any filter but one on `_id` by reading the whole collection, and a view with its
timeline is about 7 KB (most of it FerretDB's description of the nested fields' types): counting
the overdue open cases in `cases` read every view every minute, 4.3 s of FerretDB's CPU for
12,700 cases (docs/performance.md, "Where FerretDB's CPU goes"). So:

- `open_cases`: the open cases only, with the fields supervision reads (`SUPERVISED`): the overdue
  gauge, 督办 and the figures' open part read it; its size follows the work in hand, not history.
- `case_summaries`: every case with the fields the statistics count (`SUMMARY`), a fraction of
  a view's size.

Each is written by the views' writer after the views of a batch (`MongoCaseViews._write`), by a
delete and an insert like the views, and converges the same way: after writing, the writer reads
back the versions on record and writes again where its write was overtaken. A projection is
checked against the view on record: a case whose view shows a later version is left to the writer
of that version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fengqiao.contracts import CaseState
from fengqiao.runtime.store import insert_new
from fengqiao.services.tracker.domain import OPEN_STATES, Case

log = logging.getLogger("fengqiao.tracker.cases")

OPEN_CASES = "open_cases"
SUMMARIES = "case_summaries"
BATCH = 1_000  # views read and projections inserted at a time when building them at start
# What `case_summaries` holds of a view (for the statistics): scalars, lists bounded by the chain.
SUMMARY = (
    *("case_id", "state", "opened", "received_at", "chain", "co_units", "assigned_unit", "hops"),
    *("sign_due", "signed_at", "signed_in_time", "resolved_at", "resolved_in_time"),
    *("satisfaction", "overdue", "returns", "amount_recovered", "version", "assigned_handle"),
)
# What `open_cases` holds of a view (for supervision, 督办): the summary and the clocks.
SUPERVISED = (
    *SUMMARY,
    *("deadline", "escalation_level", "paused_since", "urgency", "category"),
)


class Projection:
    """One projection of the views: `project(view)` its document for a case, or None when the
    case is not in it."""

    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        name: str,
        project: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> None:
        self.name = name
        self.collection = database[name]
        self.project = project

    async def on_record(self, ids: Sequence[str]) -> dict[str, int]:
        found = self.collection.find({"_id": {"$in": list(ids)}}, {"version": 1})
        return {d["_id"]: d["version"] async for d in found}

    def stale(self, case: Case, view: dict[str, Any], on_record: dict[str, int]) -> bool:
        """Whether the projection of `case` (at its view `view`) is not what is on record."""
        found = on_record.get(case.case_id)
        if found is not None and found > case.version:
            return False  # a later version's writer wrote it
        return found != case.version if self.project(view) is not None else found is not None

    async def write(self, views: Sequence[dict[str, Any]]) -> None:
        """Replace the projections of these views (deleted, then inserted where they belong)."""
        if not views:
            return
        await self.collection.delete_many({"_id": {"$in": [v["_id"] for v in views]}})
        docs = [d for d in map(self.project, views) if d is not None]
        await insert_new(self.collection, docs)  # one there already: the check writes again

    async def build(self, views: Iterable[dict[str, Any]]) -> None:
        await insert_new(self.collection, [d for d in map(self.project, views) if d is not None])

    async def empty(self) -> bool:
        return await self.collection.find_one({}, {"_id": 1}) is None


def fields_of(view: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {"_id": view["_id"]} | {n: view[n] for n in names if n in view}


def open_case(view: dict[str, Any]) -> dict[str, Any] | None:
    """A view's document in `open_cases`; None for a case that is not open."""
    return fields_of(view, SUPERVISED) if CaseState(view["state"]) in OPEN_STATES else None


def summary(view: dict[str, Any]) -> dict[str, Any]:
    """A view's document in `case_summaries`."""
    return fields_of(view, SUMMARY)


def projections(database: AsyncDatabase[dict[str, Any]]) -> list[Projection]:
    """`open_cases` and `case_summaries` (above)."""
    return [Projection(database, OPEN_CASES, open_case), Projection(database, SUMMARIES, summary)]


async def build_missing(
    database: AsyncDatabase[dict[str, Any]], cases: str, wanted: list[Projection]
) -> int:
    """Write the projections that are empty while views exist (a store written before them):
    every view is read once. The number of views read."""
    missing = [p for p in wanted if await p.empty()]
    if not missing or await database[cases].find_one({}, {"_id": 1}) is None:
        return 0
    log.warning("cases: writing %s from the views (once)", ", ".join(p.name for p in missing))
    read, batch = 0, []
    async for doc in database[cases].find({}):
        batch.append(doc)
        if len(batch) >= BATCH:
            for projection in missing:
                await projection.build(batch)
            read, batch = read + len(batch), []
    for projection in missing:
        await projection.build(batch)
    return read + len(batch)
