"""Case versions on the real store: every version stays, so the latest is found by `_id` and an
insert from any base is a compare-and-set; ended cases are compacted to stubs; stores of the
sharded layout are moved (adapters/cases.py explains why)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.contracts import CaseState
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import (
    PACKED,
    VERSIONS,
    MongoCaseRepository,
    to_document,
    version_id,
)
from fengqiao.services.tracker.domain import Case, new_case


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
    assert await repo.overdue() == 1
    found = await repo.find(case.case_id)
    assert found is not None and found["chain"] == ["xj", "652700"] and "packed" not in found
    # A version written before (every field as a field) reads the same.
    older = replace(case, version=2, chain=("xj", "652700", "652701"))
    await client[db][VERSIONS].insert_one(to_document(older))
    assert await MongoCaseRepository(client, db).get(case.case_id) == older
    assert [c.chain for c in await repo.all() if c.case_id == case.case_id] == [older.chain]


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
    for reader in (repo, MongoCaseRepository(client, db)):
        assert await reader.get(case.case_id) == closed
        found = await reader.find(case.case_id)
        assert found is not None and found["state"] == "closed" and found["version"] == 7
    assert [c.case_id for c in await repo.all() if c.case_id == case.case_id] == [case.case_id]
    # Reopened: the case goes on from its latest version; a stale writer is still refused.
    assert not await repo.save(replace(case, version=6), expected_version=5)
    reopened = await write(repo, closed, 1, state=CaseState.REOPENED)
    assert await MongoCaseRepository(client, db).get(case.case_id) == reopened


async def test_a_known_version_whose_store_was_dropped_reads_as_no_case(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    case = await write(repo, new_case(f"c-dropped-{run_id}"), 3)
    await client[db].drop_collection(VERSIONS)
    assert await repo.get(case.case_id) is None
    assert await repo.save(replace(new_case(case.case_id), version=1), expected_version=0)


async def test_the_sharded_layout_is_moved_and_its_deleted_versions_come_back_as_stubs(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    """Before: `case_versions_NN` shards, old versions deleted (1 kept), `older`/`written_ms`."""
    pruned = new_case(f"c-pruned-{run_id}")
    kept = [1, 6, 7, 8, 9]
    old = client[db]["case_versions_2a"]
    for v in kept:
        doc = to_document(replace(pruned, version=v, returns=v))
        await old.insert_one(doc | {"written_ms": 1, "older": [{"version": 1, "written_ms": 1}]})
    young = replace(new_case(f"c-young-{run_id}"), version=1)
    await client[db]["case_versions_07"].insert_one(to_document(young))
    # An interrupted move had copied one version already.
    await client[db][VERSIONS].insert_one(to_document(replace(pruned, version=6, returns=6)))

    repo = MongoCaseRepository(client, db)
    await repo.ensure_indexes()

    names = set(await client[db].list_collection_names())
    assert not {"case_versions_2a", "case_versions_07"} & names
    assert await stored(client, db, pruned.case_id) == {v: v not in kept for v in range(1, 10)}
    latest = await repo.get(pruned.case_id)
    assert latest == replace(pruned, version=9, returns=9)
    found = await repo.find(pruned.case_id)
    assert found is not None and "older" not in found and "written_ms" not in found
    assert await MongoCaseRepository(client, db).get(young.case_id) == young
    assert await repo.save(replace(latest, version=10), expected_version=9)
    await repo.ensure_indexes()  # nothing left to move
