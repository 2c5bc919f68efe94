"""Small projections of the case views, kept beside `cases` so that what is read often does not
read every case ever received.

FerretDB answers any filter but one on `_id` by reading the whole collection, and a view with its
timeline is about 7 KB (most of it FerretDB's description of the nested fields' types): counting
the overdue open cases in `cases` read every view every minute, 4.3 s of FerretDB's CPU for
12,700 cases (docs/performance.md, "Where FerretDB's CPU goes"). So:

- `open_cases`: the open cases only, with the fields supervision reads (`SUPERVISED`): the overdue
  gauge, 督办 and the figures' open part read it; its size follows the work in hand, not history.
- `case_summaries_<YYYYMM>`: every case with the fields the statistics count (`SUMMARY`), a
  fraction of a view's size, in the collection of the month (UTC) it was received in: the
  statistics of a period (the 30-day figures every 5 minutes, `fengqiao stats`, the APIs) read
  the period's months only, so their cost follows the period, not the store's history (one
  collection read whole was 200,000 summaries for 42,000 in the window, ~9 s of FerretDB's CPU;
  docs/performance.md). A case's month never changes: `received_at` is set once, when the
  appeal opens the case; a case not opened yet (a dispatch first) has no summary.

Each is written by the views' writer after the views of a batch (`MongoCaseViews._write`), by a
delete and an insert like the views, and converges the same way: after writing, the writer reads
back the versions on record and writes again where its write was overtaken. A projection is
checked against the view on record: a case whose view shows a later version is left to the writer
of that version.

A store written before a projection gets it at start, from the views (`build_missing`, once: the
projection is then marked built in `projections_built`, so that a store whose cases are all
closed does not read every view again at each start).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fengqiao.contracts import CaseState
from fengqiao.runtime.store import insert_new
from fengqiao.services.tracker.domain import OPEN_STATES, Case

log = logging.getLogger("fengqiao.tracker.cases")

OPEN_CASES = "open_cases"
SUMMARIES = "case_summaries"  # the months' collections: case_summaries_<YYYYMM>
BUILT = "projections_built"  # {_id: projection name}: written from the views (or none to write)
BATCH = 1_000  # views read and projections inserted at a time when building them at start
# What a summary holds of a view (for the statistics): scalars, lists bounded by the chain.
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

Doc = dict[str, Any]


def _utc(at: dt.datetime) -> dt.datetime:
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def month_of(at: dt.datetime) -> str:
    """The summaries' collection of the cases received at `at`: case_summaries_<YYYYMM> (UTC)."""
    return f"{SUMMARIES}_{_utc(at):%Y%m}"


def months(since: dt.datetime, until: dt.datetime) -> list[str]:
    """The summaries' collections of the cases received in [since, until), oldest first."""
    first, last = _utc(since), _utc(until) - dt.timedelta(microseconds=1)
    names, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        names.append(f"{SUMMARIES}_{year:04d}{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return names


def summary_place(view: Doc) -> str | None:
    """A view's summary collection: its received month's; None before the case is opened."""
    received = view.get("received_at")
    return month_of(received) if received is not None else None


class Projection:
    """One projection of the views: `project(view)` its document for a case, or None when the
    case is not in it; `place(view)` the collection that holds it (the projection's own, or for
    the summaries the month's; None: none can hold it)."""

    def __init__(
        self,
        database: AsyncDatabase[Doc],
        name: str,
        project: Callable[[Doc], Doc | None],
        place: Callable[[Doc], str | None] | None = None,
    ) -> None:
        self.database, self.name, self.project = database, name, project
        self.place = place or (lambda _view: name)
        self.one_collection = place is None

    def _placed(self, docs: Iterable[Doc]) -> dict[str, list[Doc]]:
        """`docs` (views) by the collection that holds their projection."""
        placed: dict[str, list[Doc]] = {}
        for doc in docs:
            if (where := self.place(doc)) is not None:
                placed.setdefault(where, []).append(doc)
        return placed

    async def on_record(self, views: Sequence[Doc]) -> dict[str, int]:
        """The versions of the projections on record of these views' cases."""
        found: dict[str, int] = {}
        for where, placed in self._placed(views).items():
            ids = [v["_id"] for v in placed]
            async for d in self.database[where].find({"_id": {"$in": ids}}, {"version": 1}):
                found[d["_id"]] = d["version"]
        return found

    def stale(self, case: Case, view: Doc, on_record: dict[str, int]) -> bool:
        """Whether the projection of `case` (at its view `view`) is not what is on record."""
        found = on_record.get(case.case_id)
        if found is not None and found > case.version:
            return False  # a later version's writer wrote it
        return found != case.version if self.project(view) is not None else found is not None

    async def write(self, views: Sequence[Doc]) -> None:
        """Replace the projections of these views (deleted, then inserted where they belong)."""
        for where, placed in self._placed(views).items():
            collection = self.database[where]
            await collection.delete_many({"_id": {"$in": [v["_id"] for v in placed]}})
            docs = [d for d in map(self.project, placed) if d is not None]
            await insert_new(collection, docs)  # one there already: the check writes again

    async def build(self, views: Iterable[Doc]) -> None:
        for where, placed in self._placed(views).items():
            docs = [d for d in map(self.project, placed) if d is not None]
            await insert_new(self.database[where], docs)

    async def built(self) -> bool:
        """Whether the store has this projection: marked built, or (a store written before the
        marks) its collection holds a document."""
        if await self.database[BUILT].find_one({"_id": self.name}) is not None:
            return True
        if self.one_collection and await self.database[self.name].find_one({}, {"_id": 1}):
            await self.mark_built()  # a store of before the marks: so marked, once
            return True
        return False

    async def mark_built(self) -> None:
        await insert_new(self.database[BUILT], [{"_id": self.name}])


def fields_of(view: Doc, names: Sequence[str]) -> Doc:
    return {"_id": view["_id"]} | {n: view[n] for n in names if n in view}


def open_case(view: Doc) -> Doc | None:
    """A view's document in `open_cases`; None for a case that is not open."""
    return fields_of(view, SUPERVISED) if CaseState(view["state"]) in OPEN_STATES else None


def summary(view: Doc) -> Doc | None:
    """A view's summary (in its month's collection, `summary_place`); None before it is opened."""
    return fields_of(view, SUMMARY) if view.get("received_at") is not None else None


def projections(database: AsyncDatabase[Doc]) -> list[Projection]:
    """`open_cases` and the months' `case_summaries_<YYYYMM>` (above)."""
    return [
        Projection(database, OPEN_CASES, open_case),
        Projection(database, SUMMARIES, summary, summary_place),
    ]


async def received(
    database: AsyncDatabase[Doc], since: dt.datetime, until: dt.datetime
) -> list[Doc]:
    """The summaries of the cases received in [since, until): the period's months only."""
    period = {"received_at": {"$gte": since, "$lt": until}}
    present = set(await database.list_collection_names())
    found: list[Doc] = []
    for name in months(since, until):
        if name in present:
            found += await database[name].find(period).to_list()
    return found


async def build_missing(database: AsyncDatabase[Doc], cases: str, wanted: list[Projection]) -> int:
    """Write the projections not built yet while views exist (a store written before them):
    every view is read once; then mark them built (and drop the summaries of before the months,
    `case_summaries`, one collection). The number of views read."""
    missing = [p for p in wanted if not await p.built()]
    if not missing:
        return 0
    read, batch = 0, []
    if await database[cases].find_one({}, {"_id": 1}) is not None:
        log.warning("cases: writing %s from the views (once)", ", ".join(p.name for p in missing))
        async for doc in database[cases].find({}):
            batch.append(doc)
            if len(batch) >= BATCH:
                for projection in missing:
                    await projection.build(batch)
                read, batch = read + len(batch), []
        for projection in missing:
            await projection.build(batch)
    for projection in missing:
        if projection.name == SUMMARIES:
            await database.drop_collection(SUMMARIES)  # the one collection of before the months
        await projection.mark_built()
    return read + len(batch)
