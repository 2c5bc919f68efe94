"""Bounded growth on the real store (issue 18, deliver 6): a case reposted 5,000 times stays a
small document, its older versions become stubs, and the statistics read the same bytes however
many versions the cases have."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import bson
import pytest
from pymongo import AsyncMongoClient, monitoring

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import stats
from fengqiao.services.tracker.adapters.case_view import CASES, unpack_view
from fengqiao.services.tracker.adapters.cases import (
    COMPACT_EVERY,
    KEEP_FULL,
    VERSIONS,
    MongoCaseRepository,
)
from fengqiao.services.tracker.domain import Case, open_case
from tests.unit.tracker.cases import PLAIN, T0, dispatched
from tests.unit.tracker.test_bounded_case import repeat

LIMIT = 256 * 1024


class Replies(monitoring.CommandListener):
    """The commands a client sent and the bytes of their replies."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.bytes = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.bytes += len(bson.encode(event.reply))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@pytest.fixture
def db(run_id: str) -> str:
    return f"itest_bounded_{run_id}"


@pytest.fixture
async def client(stack: StackSettings, db: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    await client.drop_database(db)
    await client.close()


async def repeat_and_save(repo: MongoCaseRepository, case: Case, start: int, count: int) -> Case:
    """`count` reposts, each applied and written as a version of its own (the worst case: a
    poll's several changes of a case are one version)."""
    for n in range(start, start + count):
        later = open_case(case, repeat(n), rules=PLAIN)
        assert await repo.save(later, expected_version=case.version)
        case = later
    return case


async def test_5000_repeats_keep_each_document_of_the_case_under_256_kb(
    client: AsyncMongoClient[Any], db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    base = dispatched()
    base = Case(**{**vars(base), "case_id": f"c-reposted-{run_id}", "version": 1})
    assert await repo.save(base, expected_version=0)
    started = time.monotonic()
    case = await repeat_and_save(repo, base, 0, 5000)
    await repo.flush()
    docs = await client[db][VERSIONS].find({"case_id": case.case_id}).to_list()
    sizes = {d["version"]: len(bson.encode(d)) for d in docs}
    newest = sizes[case.version]
    full = sorted(v for v, d in zip(sizes, docs, strict=True) if "stub" not in d)
    view = await client[db][CASES].find_one({"_id": case.case_id})
    assert view is not None
    print(
        f"\n5,000 repeats in {time.monotonic() - started:.1f} s: newest version {newest} bytes, "
        f"view {len(bson.encode(view))} bytes, {len(full)} full versions, all versions "
        f"{sum(sizes.values())} bytes"
    )
    assert newest < LIMIT and max(sizes.values()) < LIMIT
    assert len(bson.encode(view)) < LIMIT and unpack_view(view)["repeats"]["count"] == 5000
    assert sorted(sizes) == list(range(1, case.version + 1))  # every _id stays: compare-and-set
    assert len(full) <= KEEP_FULL + COMPACT_EVERY and full[-1] == case.version
    assert sum(sizes.values()) < 2 * 1024 * 1024
    reader = MongoCaseRepository(client, db)  # never saw it: searches from version 1
    assert await reader.get(case.case_id) == case
    stale = Case(**{**vars(case), "version": 3})  # a writer on a base long compacted
    assert not await repo.save(stale, expected_version=2)


async def stats_reads(client_of: Any, db: str, since: dt.datetime) -> Replies:
    listener = Replies()
    client = client_of(listener)
    try:
        repo = MongoCaseRepository(client, db)
        cases = await repo.received(since, since + dt.timedelta(days=30))
        report = stats.compute(cases, since, since + dt.timedelta(days=30))  # /ops/stats's path
        assert report.total["volume"] == 2
    finally:
        await client.close()
    return listener


async def test_the_statistics_read_the_same_bytes_however_many_versions_cases_have(
    client: AsyncMongoClient[Any], stack: StackSettings, db: str, run_id: str
) -> None:
    repo = MongoCaseRepository(client, db)
    cases = []
    for name in ("a", "b"):
        base = dispatched()
        base = Case(**{**vars(base), "case_id": f"c-stats-{name}-{run_id}", "version": 1})
        assert await repo.save(base, expected_version=0)
        cases.append(await repeat_and_save(repo, base, 0, 5))
    await repo.flush()

    def client_of(listener: Replies) -> AsyncMongoClient[Any]:
        return AsyncMongoClient(stack.mongo_uri, tz_aware=True, event_listeners=[listener])

    since = T0 - dt.timedelta(days=1)
    before = await stats_reads(client_of, db, since)
    await repeat_and_save(repo, cases[0], 5, 400)  # 400 more versions of one case
    await repo.flush()
    after = await stats_reads(client_of, db, since)
    print(f"\nstatistics: {before.commands} {before.bytes} bytes; then {after.bytes} bytes")
    assert after.commands == before.commands  # no lookup per version, nor per case
    assert after.bytes - before.bytes < 64  # a count's digits at most
