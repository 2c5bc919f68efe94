"""The views' small projections on the real store (services/tracker/adapters/projections.py):
the open cases and the cases' summaries follow each case's latest version, a stale write is
corrected by its writer's check, and a store written before them gets them at start. What is
read every minute (the overdue gauge, supervision) no longer reads every case received."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.contracts import CaseState
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.case_view import CASES, MongoCaseViews, view
from fengqiao.services.tracker.adapters.cases import VERSIONS, MongoCaseRepository
from fengqiao.services.tracker.adapters.projections import (
    BUILT,
    OPEN_CASES,
    SUMMARIES,
    build_missing,
    projections,
)
from fengqiao.services.tracker.domain import Case, new_case

RECEIVED = "2026-11-02T03:00:00+00:00"
NOVEMBER = f"{SUMMARIES}_202611"  # RECEIVED's month


@pytest.fixture
async def client(stack: StackSettings, run_id: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    await client.drop_database(f"itest_projections_{run_id}")
    await client.close()


@pytest.fixture
def db(run_id: str) -> str:
    return f"itest_projections_{run_id}"


async def write(repo: MongoCaseRepository, case: Case, **changes: Any) -> Case:
    case = replace(case, version=case.version + 1, **changes)
    assert await repo.save(case, expected_version=case.version - 1)
    await repo.flush()
    return case


async def ids(client: AsyncMongoClient[Any], db: str, name: str) -> dict[str, int]:
    return {d["_id"]: d["version"] async for d in client[db][name].find({})}


async def test_open_cases_hold_the_open_ones_and_summaries_every_one(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    await repo.ensure_indexes()
    late = await write(repo, new_case(f"c-late-{run_id}"), received_at=RECEIVED, overdue=True)
    done = await write(repo, new_case(f"c-done-{run_id}"), received_at=RECEIVED)
    assert await ids(client, db, OPEN_CASES) == {late.case_id: 1, done.case_id: 1}
    done = await write(repo, done, state=CaseState.CLOSED)
    assert await ids(client, db, OPEN_CASES) == {late.case_id: 1}
    assert await ids(client, db, NOVEMBER) == {late.case_id: 1, done.case_id: 2}
    assert await repo.overdue() == 1
    assert [c.case_id for c in await repo.open_cases()] == [late.case_id]
    since = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    received = await repo.received(since, since + dt.timedelta(days=2))
    assert sorted(c.case_id for c in received) == sorted([late.case_id, done.case_id])
    assert {c.case_id: c.state for c in received}[done.case_id] == CaseState.CLOSED


async def test_a_stale_projection_that_landed_last_is_written_again(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    """Another replica's delete and insert of an open case's projection landed after the
    close's: the writer of the close, its view standing, writes its projection again."""
    repo = MongoCaseRepository(client, db)
    opened = await write(repo, new_case(f"c-stale-{run_id}"), received_at=RECEIVED)
    closed = await write(repo, opened, state=CaseState.CLOSED)
    stale = view(opened)
    await client[db][OPEN_CASES].insert_one(stale)
    await client[db][NOVEMBER].replace_one({"_id": opened.case_id}, stale)
    other = MongoCaseViews(client, db, VERSIONS, MongoCaseRepository(client, db).get)
    other.written(closed)
    await other.flush()
    assert await ids(client, db, OPEN_CASES) == {}
    assert await ids(client, db, NOVEMBER) == {closed.case_id: closed.version}


async def test_a_store_written_before_the_projections_gets_them_at_start(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    first = await write(repo, new_case(f"c-old-{run_id}"), received_at=RECEIVED)
    ended = await write(repo, new_case(f"c-ended-{run_id}"), received_at=RECEIVED)
    ended = await write(repo, ended, state=CaseState.CLOSED)
    early = await write(repo, new_case(f"c-early-{run_id}"), state=CaseState.DISPATCHED)
    for name in (OPEN_CASES, NOVEMBER, BUILT):
        await client[db].drop_collection(name)
    # What a store written before the months held: one collection of every summary.
    await client[db][SUMMARIES].insert_one({"_id": first.case_id, "version": 1})
    await MongoCaseRepository(client, db).ensure_indexes()
    assert await ids(client, db, OPEN_CASES) == {first.case_id: 1, early.case_id: 1}
    assert await ids(client, db, NOVEMBER) == {first.case_id: 1, ended.case_id: 2}
    names = await client[db].list_collection_names()
    assert SUMMARIES not in names  # dropped once the months are written
    assert [n for n in names if n.startswith(SUMMARIES)] == [NOVEMBER]  # none for `early`
    marked = {d["_id"] async for d in client[db][BUILT].find({})}
    assert marked == {OPEN_CASES, SUMMARIES}


async def test_a_store_of_before_the_marks_with_open_cases_is_marked_not_rebuilt(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    await repo.ensure_indexes()  # an empty store: both marked, nothing to read
    await write(repo, new_case(f"c-open-{run_id}"), received_at=RECEIVED)
    await client[db][BUILT].delete_one({"_id": OPEN_CASES})
    assert await build_missing(client[db], CASES, projections(client[db])) == 0
    assert await client[db][BUILT].find_one({"_id": OPEN_CASES}) is not None


async def test_a_store_of_closed_cases_reads_its_views_once(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    """Every case closed (`open_cases` empty): a start after the projections were built reads
    no view (before the marks, every start read every view to build `open_cases` again)."""
    repo = MongoCaseRepository(client, db)
    await write(repo, new_case(f"c-closed-{run_id}"), received_at=RECEIVED, state=CaseState.CLOSED)
    for name in (OPEN_CASES, NOVEMBER, BUILT):
        await client[db].drop_collection(name)
    assert await build_missing(client[db], CASES, projections(client[db])) == 1
    assert await build_missing(client[db], CASES, projections(client[db])) == 0
    assert await ids(client, db, OPEN_CASES) == {}
