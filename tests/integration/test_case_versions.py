"""Case versions on the real store: old ones are pruned by age, and a writer whose base is too old
to trust checks its write (adapters/cases.py explains why)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.settings import StackSettings
from fengqiao.store import ShardedCollection
from services.tracker.adapters.cases import (
    KEEP_VERSIONS,
    PRUNE_AFTER_MS,
    TRUST_SECONDS,
    MongoCaseRepository,
    version_id,
)
from services.tracker.domain import Case, new_case


class Clocks:
    """The wall clock (ms) and monotonic clock (s) a repository reads, moved by the test."""

    def __init__(self) -> None:
        self.wall_ms = 1_800_000_000_000
        self.mono = 1_000.0

    def repository(self, client: AsyncMongoClient[dict[str, Any]], db: str) -> MongoCaseRepository:
        return MongoCaseRepository(
            client, db, wall_ms=lambda: self.wall_ms, monotonic=lambda: self.mono
        )


@pytest.fixture
async def client(stack: StackSettings, run_id: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    await client.drop_database(f"itest_versions_{run_id}")
    await client.close()


async def stored_versions(client: AsyncMongoClient[Any], db: str, case_id: str) -> list[int]:
    shard = ShardedCollection(client[db], "case_versions").for_key(case_id)
    return [
        v
        for v in range(1, 40)
        if await shard.find_one({"_id": version_id(case_id, v)}, {"_id": 1}) is not None
    ]


async def write(repo: MongoCaseRepository, case: Case, times: int) -> Case:
    for _ in range(times):
        case = replace(case, version=case.version + 1, returns=case.returns + 1)
        assert await repo.save(case, expected_version=case.version - 1)
    return case


async def test_versions_are_pruned_once_old_enough_and_version_1_never(
    client: AsyncMongoClient[Any], run_id: str
) -> None:
    db, clocks = f"itest_versions_{run_id}", Clocks()
    repo = clocks.repository(client, db)
    case = await write(repo, new_case(f"c-prune-{run_id}"), 12)
    # A burst within minutes keeps every version (a writer may still trust any of them).
    assert await stored_versions(client, db, case.case_id) == list(range(1, 13))
    clocks.wall_ms += PRUNE_AFTER_MS + 1
    clocks.mono += 1
    case = await write(repo, case, 1)
    kept = [1, *range(13 - KEEP_VERSIONS, 14)]
    assert await stored_versions(client, db, case.case_id) == kept
    stored = await repo.get(case.case_id)
    assert stored == case


async def test_a_writer_with_an_untrusted_base_does_not_recreate_a_pruned_version(
    client: AsyncMongoClient[Any], run_id: str
) -> None:
    db, clocks = f"itest_versions_{run_id}", Clocks()
    stale, other = clocks.repository(client, db), clocks.repository(client, db)
    case = await write(stale, new_case(f"c-stale-{run_id}"), 2)  # `stale` saw version 2
    latest = await other.get(case.case_id)
    assert latest is not None
    latest = await write(other, latest, 8)  # versions 3..10
    clocks.wall_ms += PRUNE_AFTER_MS + 1
    clocks.mono += TRUST_SECONDS + 1  # `stale` no longer trusts its version 2
    latest = await write(other, latest, 1)  # version 11 prunes 2..6
    assert 3 not in await stored_versions(client, db, case.case_id)
    # Its insert of the pruned version 3 succeeds, but it is not the latest: undone, refused.
    assert not await stale.save(replace(case, version=3, returns=99), expected_version=2)
    assert 3 not in await stored_versions(client, db, case.case_id)
    # The same from version 1 (kept forever) in a replica that never saw the case.
    fresh = clocks.repository(client, db)
    first = replace(new_case(case.case_id), version=2, returns=1)
    assert not await fresh.save(first, expected_version=1)
    assert 2 not in await stored_versions(client, db, case.case_id)
    # A base that is gone: the same.
    assert not await fresh.save(replace(case, version=5, returns=7), expected_version=4)
    assert 5 not in await stored_versions(client, db, case.case_id)
    assert await other.get(case.case_id) == latest
