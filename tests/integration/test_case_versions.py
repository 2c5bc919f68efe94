"""Case versions on the real store: every version stays, so the latest is found by `_id` and an
insert from any base is a compare-and-set; ended cases are compacted to stubs (adapters/cases.py
explains why); each case's view in `cases` follows its latest version."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.contracts import CaseState
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.case_view import CASES, MongoCaseViews, unpack_view, view
from fengqiao.services.tracker.adapters.cases import (
    PACKED,
    VERSIONS,
    MongoCaseRepository,
    version_id,
)
from fengqiao.services.tracker.domain import Case, TimelineEntry, new_case


@pytest.fixture
async def client(stack: StackSettings, run_id: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    await client.drop_database(f"itest_versions_{run_id}")
    await client.close()


@pytest.fixture
def db(run_id: str) -> str:
    return f"itest_versions_{run_id}"


async def stored(client: AsyncMongoClient[Any], db: str, case_id: str) -> dict[int, bool]:
    """Version → whether it is a stub, for every stored version of the case."""
    found = {}
    for v in range(1, 40):
        doc = await client[db][VERSIONS].find_one({"_id": version_id(case_id, v)})
        if doc is not None:
            found[v] = "stub" in doc
    return found


async def write(repo: MongoCaseRepository, case: Case, times: int, **changes: Any) -> Case:
    for _ in range(times):
        case = replace(case, version=case.version + 1, returns=case.returns + 1, **changes)
        assert await repo.save(case, expected_version=case.version - 1)
    await repo.flush()  # its views written before the test reads (or closes the client)
    return case


@pytest.mark.parametrize("versions", [1, 2, 3, 7, 8, 9, 17])
async def test_the_latest_version_is_found_from_scratch_and_from_a_known_one(
    client: AsyncMongoClient[Any], db: str, run_id: str, versions: int
) -> None:
    writer = MongoCaseRepository(client, db)
    case = await write(writer, new_case(f"c-find-{versions}-{run_id}"), versions)
    assert await stored(client, db, case.case_id) == dict.fromkeys(range(1, versions + 1), False)
    assert await MongoCaseRepository(client, db).get(case.case_id) == case  # never saw it
    assert await writer.get(case.case_id) == case  # knows its latest version
    reader = MongoCaseRepository(client, db)
    assert await reader.get(case.case_id) == case
    later = await write(writer, case, 5)  # the reader's known version is now 5 behind
    assert await reader.get(case.case_id) == later
    assert await reader.get(f"c-none-{run_id}") is None
    assert await reader.find(f"c-none-{run_id}") is None


async def test_cases_read_together_are_each_their_latest_version(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    writer = MongoCaseRepository(client, db)
    cases = [await write(writer, new_case(f"c-many-{n}-{run_id}"), n) for n in (1, 2, 5)]
    ended = await write(writer, new_case(f"c-many-ended-{run_id}"), 3, state=CaseState.CLOSED)
    cases.append(ended)  # compacted: its versions below the latest are stubs
    none = f"c-many-none-{run_id}"
    ids = [none, *(c.case_id for c in cases), cases[0].case_id]  # a repeat is read once
    expected = {none: None} | {c.case_id: c for c in cases}
    assert await MongoCaseRepository(client, db).get_many(ids) == expected  # never saw them
    assert await writer.get_many(ids) == expected  # knows their latest versions
    reader = MongoCaseRepository(client, db)
    await reader.get_many(ids)
    later = await write(writer, cases[1], 4)  # the reader's known version is now 4 behind
    assert (await reader.get_many([later.case_id, none])) == {later.case_id: later, none: None}
    assert await reader.get_many([]) == {}


async def test_a_version_keeps_its_lists_and_mappings_packed_and_its_scalars_as_fields(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    case = replace(
        new_case(f"c-packed-{run_id}"),
        version=1,
        state=CaseState.DISPATCHED,
        chain=("xj", "652700"),
        processed=frozenset({"e-1"}),
        overdue=True,
        replies={"k": {"status": "sent", "text": '已受理 "引号" ✓'}},
    )
    assert await repo.save(case, expected_version=0)
    raw = await client[db][VERSIONS].find_one({"_id": version_id(case.case_id, 1)})
    assert raw is not None and isinstance(raw["packed"], str)
    assert not set(PACKED) & set(raw)
    assert raw["state"] == "dispatched" and raw["overdue"] is True  # queried as fields
    assert await MongoCaseRepository(client, db).get(case.case_id) == case
    await repo.flush()
    assert await repo.overdue() == 1
    found = await repo.find(case.case_id)
    assert found is not None and found["chain"] == ["xj", "652700"] and "packed" not in found


async def test_an_insert_from_any_stale_base_is_refused(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    stale, other = MongoCaseRepository(client, db), MongoCaseRepository(client, db)
    case = await write(stale, new_case(f"c-stale-{run_id}"), 2)  # `stale` saw version 2
    latest = await other.get(case.case_id)
    assert latest is not None
    latest = await write(other, latest, 8)  # versions 3..10
    assert not await stale.save(replace(case, version=3, returns=99), expected_version=2)
    # A replica that never saw the case, from "nothing": version 1 exists.
    fresh = MongoCaseRepository(client, db)
    assert not await fresh.save(replace(new_case(case.case_id), version=1), expected_version=0)
    # After losing, the stale writer finds the latest from the version it lost on.
    assert await stale.get(case.case_id) == latest
    assert await stored(client, db, case.case_id) == dict.fromkeys(range(1, 11), False)


async def test_an_ended_case_is_compacted_to_stubs_below_its_latest_version(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    case = await write(repo, new_case(f"c-ended-{run_id}"), 5)
    resolved = await write(repo, case, 1, state=CaseState.RESOLVED)
    assert not any((await stored(client, db, case.case_id)).values())  # not ended: all kept
    closed = await write(repo, resolved, 1, state=CaseState.CLOSED)
    assert await stored(client, db, case.case_id) == {**dict.fromkeys(range(1, 7), True), 7: False}
    await repo.flush()
    for reader in (repo, MongoCaseRepository(client, db)):
        assert await reader.get(case.case_id) == closed
        found = await reader.find(case.case_id)
        assert found is not None and found["state"] == "closed" and found["version"] == 7
    # Reopened: the case goes on from its latest version; a stale writer is still refused.
    assert not await repo.save(replace(case, version=6), expected_version=5)
    reopened = await write(repo, closed, 1, state=CaseState.REOPENED)
    assert await MongoCaseRepository(client, db).get(case.case_id) == reopened
    await repo.flush()


async def test_a_known_version_whose_store_was_dropped_reads_as_no_case(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    case = await write(repo, new_case(f"c-dropped-{run_id}"), 3)
    await client[db].drop_collection(VERSIONS)
    assert await repo.get(case.case_id) is None
    assert await repo.save(replace(new_case(case.case_id), version=1), expected_version=0)


def entry(at: str, event: str) -> TimelineEntry:
    return TimelineEntry(
        at=at, event=event, state="received", unit_id=None, detail=None, event_id=event
    )


async def test_the_view_has_plain_fields_real_dates_and_the_timeline_in_time_order(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    case = replace(
        new_case(f"c-view-{run_id}"),
        received_at="2026-11-02T03:04:05.678000+00:00",
        chain=("xj", "652700"),
        hops=({"hop": 1, "at": "2026-11-02T04:00:00+00:00", "final": True},),
        timeline=(entry("2026-11-02T05:00:00+00:00", "b"), entry("2026-11-02T04:00:00+00:00", "a")),
        processed=frozenset({"e-1"}),
    )
    await write(repo, case, 2)
    raw = await client[db][CASES].find_one({"_id": case.case_id})
    assert raw is not None and raw["version"] == 2 and raw["chain"] == ["xj", "652700"]
    assert raw["received_at"] == dt.datetime(2026, 11, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    shown = unpack_view(raw)  # nested values are JSON text, their instants ISO 8601 (UTC)
    assert shown["hops"][0]["at"] == "2026-11-02T04:00:00+00:00"
    assert [e["event"] for e in shown["timeline"]] == ["a", "b"]
    assert not {"processed", "outbox", "effects", "packed"} & set(raw)
    since = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    received = await repo.received(since, since + dt.timedelta(days=2))
    assert [c.case_id for c in received if c.case_id == case.case_id] == [case.case_id]
    assert await repo.received(since - dt.timedelta(days=2), since) == []


async def test_a_view_of_an_older_version_never_stays_over_a_newer_one(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    """Another replica's write of an older view lands last (FerretDB's replace is not atomic):
    the check after it finds the later version and writes the latest again."""
    repo = MongoCaseRepository(client, db)
    first = await write(repo, new_case(f"c-order-{run_id}"), 1)
    latest = await write(repo, first, 3)  # version 4
    views = client[db][CASES]
    await views.replace_one({"_id": first.case_id}, view(first))  # the stale write landed last
    replica = MongoCaseRepository(client, db)
    other = MongoCaseViews(client, db, VERSIONS, replica.get)
    other.written(first)  # its writer goes on to check
    await other.flush()
    found = await views.find_one({"_id": first.case_id})
    assert found is not None and found["version"] == latest.version == 4
    # A note of an older version than the one on record writes nothing older.
    other.written(replace(latest, version=2))
    await other.flush()
    found = await views.find_one({"_id": first.case_id})
    assert found is not None and found["version"] == 4


async def test_ops_cases_finds_a_case_in_the_store_by_id_author_or_text(
    client: AsyncMongoClient[Any],
    db: str,
    run_id: str,
    stack: StackSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fengqiao.ops import cases as case_search

    monkeypatch.setenv("FENGQIAO_TRACKER_DATABASE", db)
    repo = MongoCaseRepository(client, db)
    case = replace(
        new_case(f"c-ops-{run_id}"),
        author_id=f"u-{run_id}",
        masked_text="工资 (拖欠) 三个月",
        received_at="2026-11-02T03:00:00+00:00",
        timeline=(entry("2026-11-02T03:00:00+00:00", "opened"),),
    )
    await write(repo, case, 1)
    for query, by in ((case.case_id, "id"), (f"u-{run_id}", "author"), ("(拖欠)", "text")):
        found = await case_search.stored(stack, query, by=by)  # type: ignore[arg-type]
        assert [c["case_id"] for c in found] == [case.case_id], by
        assert found[0]["timeline"][0]["at"] == "2026-11-02T03:00:00+00:00"
    assert await case_search.stored(stack, f"nobody-{run_id}") == []
    assert case_search.tables(found)


async def test_a_store_without_views_gets_them_at_start_from_the_latest_versions(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    from fengqiao.services.tracker.adapters.cases import stored as stored_form

    case = new_case(f"c-rebuilt-{run_id}")
    for v in (1, 2, 3):  # written before there were views
        version = replace(case, version=v, returns=v)
        await client[db][VERSIONS].insert_one(stored_form(version))
    repo = MongoCaseRepository(client, db)
    await repo.ensure_indexes()
    found = await repo.find(case.case_id)
    assert found is not None and found["version"] == 3 and found["returns"] == 3
    await repo.ensure_indexes()  # views exist: nothing read again
    assert await repo.rebuild_views() == 1


async def test_supervision_reads_the_open_cases_views_with_their_clocks(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    deadline = "2026-11-09T10:00:00+00:00"
    base = replace(new_case(f"c-open-{run_id}"), opened=True, chain=("xj", "652700", "652701"),
                   assigned_unit="652701", deadline=deadline, escalation_level=1,
                   masked_text="不读", state=CaseState.IN_PROGRESS)  # fmt: skip
    await write(repo, base, 2)
    await write(repo, replace(base, case_id=f"c-shut-{run_id}"), 1, state=CaseState.CLOSED)
    [found] = await repo.open_cases()
    assert found.case_id == base.case_id and found.state is CaseState.IN_PROGRESS
    assert dt.datetime.fromisoformat(found.deadline or "") == dt.datetime.fromisoformat(deadline)
    assert found.escalation_level == 1 and found.chain == base.chain
    assert found.masked_text is None and found.timeline == ()  # the fields supervision reads only
