"""The triage queue on the real MongoDB/FerretDB: an item is queued once, and of many
dispatchers ruling at once exactly one wins (an insert against the unique `_id`, the only
compare-and-set FerretDB applies atomically)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.adapters.triage_queue import MongoTriageQueue
from fengqiao.services.router.app import build_router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.router.triage import Correction, Item, Ruling, item_for
from fengqiao.services.router.triage_depth import TriageDepth
from fengqiao.testing.factories import appeal_message, triage_message

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
ROUTER = build_router(RouterSettings())


@pytest.fixture
async def queue(stack: StackSettings, run_id: str) -> AsyncIterator[MongoTriageQueue]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    queue = MongoTriageQueue(client, f"itest_triage_{run_id}")
    await queue.ensure_indexes()
    yield queue
    await client.drop_database(f"itest_triage_{run_id}")
    await client.close()


def item(n: int, *, urgent: bool = False, at: datetime = T0) -> Item:
    review = ("possibly_urgent",) if urgent else ("uncertain_category",)
    appeal = appeal_message(
        "博乐市的工地拖欠工资",
        event_id=f"appeal-{n}",
        case_id=f"c-{n}",
        posted_at=at,
        triage=triage_message("wage_arrears", urgent=urgent, review=review),
    )
    return item_for(appeal, ROUTER.decide(appeal), dispatched=True)


async def test_an_item_is_queued_once_and_reads_back_whole(queue: MongoTriageQueue) -> None:
    first = item(1)
    assert await queue.add(first)
    assert not await queue.add(first)
    assert await queue.get("appeal-1") == first


async def test_pending_lists_urgent_first_then_the_oldest(queue: MongoTriageQueue) -> None:
    for n, urgent, hours in ((1, False, 0), (2, True, 2), (3, False, 1), (4, True, 3)):
        await queue.add(item(n, urgent=urgent, at=T0 + timedelta(hours=hours)))
    pending = await queue.pending(limit=10, offset=0, review=None)
    assert [i.id for i in pending] == ["appeal-2", "appeal-4", "appeal-1", "appeal-3"]
    urgent_only = await queue.pending(limit=10, offset=0, review="possibly_urgent")
    assert [i.id for i in urgent_only] == ["appeal-2", "appeal-4"]
    assert [i.id for i in await queue.pending(limit=2, offset=1, review=None)] == [
        "appeal-4",
        "appeal-1",
    ]


async def test_of_twenty_dispatchers_ruling_at_once_exactly_one_wins(
    queue: MongoTriageQueue,
) -> None:
    queued = item(1, urgent=True)
    await queue.add(queued)
    rulings = [
        Ruling.of(queued, Correction(urgent=n % 2 == 0), person=f"p{n}", unit="xj", at=T0)
        for n in range(20)
    ]
    won = await asyncio.gather(*(queue.rule(r) for r in rulings))
    assert sum(won) == 1
    winner = rulings[won.index(True)]
    assert await queue.ruling("appeal-1") == winner
    assert await queue.pending(limit=10, offset=0, review=None) == []
    [example] = await queue.corrections()
    assert (example["person"], example["urgent"]) == (winner.person, winner.urgent)


async def test_a_lost_listing_mark_is_set_again_by_the_next_attempt(
    queue: MongoTriageQueue,
) -> None:
    queued = item(1)
    await queue.add(queued)
    ruling = Ruling.of(queued, Correction(), person="p", unit="xj", at=T0)
    assert await queue.rule(ruling)
    assert not await queue.rule(replace(ruling, person="q"))
    assert (await queue.ruling("appeal-1")).person == "p"  # type: ignore[union-attr]


async def test_the_depth_gauge_counts_what_waits_for_a_ruling(queue: MongoTriageQueue) -> None:
    for n, urgent in ((1, True), (2, False), (3, False)):
        await queue.add(item(n, urgent=urgent))
    await queue.rule(Ruling.of(item(3), Correction(), person="p", unit="xj", at=T0))
    registry = CollectorRegistry()
    await TriageDepth(queue, registry).refresh()
    for urgent, waiting in (("true", 1), ("false", 1)):
        value = registry.get_sample_value("fengqiao_router_triage_pending", {"urgent": urgent})
        assert value == waiting, urgent
