"""The assessment figures read what their window needs, not the store's history: on the real
store, with cases received months before the window, the figures' reads (a PyMongo command
listener sees each command and its collection) touch only the window's months of summaries and
the open cases. FerretDB reads a collection whole for any filter but one on `_id`, so the
documents it reads are every document of the collections named: that is what is counted here.
Before the summaries were kept by month, this read `case_summaries`, every case ever received."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from fengqiao.contracts import CaseState
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.figures_metrics import AssessmentFigures
from tests.unit.tracker.cases import T0
from tests.unit.tracker.test_stats import cases

READS = frozenset({"find", "aggregate", "count", "distinct"})


class Reads(CommandListener):
    """The collections read while `on`."""

    def __init__(self) -> None:
        self.on, self.collections = False, set[str]()

    def started(self, event: CommandStartedEvent) -> None:
        if self.on and event.command_name in READS:
            self.collections.add(event.command[event.command_name])

    def succeeded(self, event: CommandSucceededEvent) -> None:
        return None

    def failed(self, event: CommandFailedEvent) -> None:
        return None


def old_cases() -> list[domain.Case]:
    """Closed cases received in July to October, months before the window."""
    return [
        replace(
            domain.new_case(f"c-{month}-{n}"),
            opened=True,
            state=CaseState.CLOSED,
            received_at=f"2026-{month:02d}-{10 + n}T03:00:00+00:00",
        )
        for month in (7, 8, 9, 10)
        for n in range(3)
    ]


async def test_the_figures_read_only_the_windows_months_and_the_open_cases(
    stack: StackSettings, run_id: str
) -> None:
    reads = Reads()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_uri, tz_aware=True, event_listeners=[reads]
    )
    database = f"itest_window_{run_id}"
    try:
        repo = MongoCaseRepository(client, database)
        await repo.ensure_indexes()
        for case in [*cases(), *old_cases()]:
            assert await repo.save(replace(case, version=1), expected_version=0)
        await repo.flush()
        figures = AssessmentFigures(
            repo, domain.Rules.default().calendar, CollectorRegistry(), window=timedelta(days=30)
        )
        reads.on = True
        await figures.refresh(T0 + timedelta(hours=12))  # the window: Nov 1 to Dec 1, 14:00
        reads.on = False
        volume = [v for labels, v in figures.figures.unit_cases if labels[1] == "volume"]
        assert volume == [5.0]  # the 4 cases of T0 and c-old, received Nov 22
        assert reads.collections == {"case_summaries_202611", "case_summaries_202612", "open_cases"}
        db = client[database]
        read = {n: await db[n].count_documents({}) for n in reads.collections}
        assert read["case_summaries_202611"] + read["case_summaries_202612"] == 5
        # The open ones of the window's cases; none of the 12 closed.
        assert read["open_cases"] == sum(c.state in domain.OPEN_STATES for c in cases())
    finally:
        await client.drop_database(database)
        await client.close()
