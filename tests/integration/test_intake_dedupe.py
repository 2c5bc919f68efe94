"""The recent-appeals store on the real MongoDB/FerretDB: insert-only decisions hold under
concurrency and re-delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.settings import StackSettings
from fengqiao.store import ShardedCollection
from services.intake.adapters.recent import MongoRecentAppeals, assign_case, claim_key
from services.intake.similarity import Policy, RecentAppeal, fingerprint

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
WAGES = "我在博乐市工地干活老板拖欠工资三个月了求助"


@pytest.fixture
async def store(stack: StackSettings, run_id: str) -> AsyncIterator[MongoRecentAppeals]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    store = MongoRecentAppeals(client, f"itest_intake_{run_id}")
    await store.ensure_indexes()
    yield store
    await client.drop_database(f"itest_intake_{run_id}")
    await client.close()


def appeal(key: str, author: str, text: str = WAGES, at: datetime = T0) -> RecentAppeal:
    return RecentAppeal(
        key=key,
        platform="weibo",
        author=author,
        post_id=key,
        event_id=f"e-{key}",
        case_id=f"c-{key}",
        posted_at=at,
        fingerprint=fingerprint(text),
    )


async def assign(store: MongoRecentAppeals, a: RecentAppeal, text: str = WAGES) -> RecentAppeal:
    decided, _ = await assign_case(
        store,
        a,
        refers_back=False,
        claim=claim_key(a.platform, a.author, text, a.posted_at),
        policy=Policy(),
    )
    return decided


async def test_copies_sent_at_the_same_moment_join_one_case(
    store: MongoRecentAppeals, run_id: str
) -> None:
    copies = [appeal(f"{run_id}-{i}", f"u-{run_id}") for i in range(8)]
    decided = await asyncio.gather(*(assign(store, a) for a in copies))
    assert len({d.case_id for d in decided}) == 1
    assert sum(d.duplicate_of is None for d in decided) == 1


async def test_concurrent_re_deliveries_agree(store: MongoRecentAppeals, run_id: str) -> None:
    first = await assign(store, appeal(f"{run_id}-a", f"u-{run_id}"))
    again = appeal(f"{run_id}-b", f"u-{run_id}", at=T0 + timedelta(hours=1))
    decided = await asyncio.gather(*(assign(store, again) for _ in range(6)))
    assert {d.case_id for d in decided} == {first.case_id}
    assert {d.duplicate_of for d in decided} == {first.event_id}
    stored = await store.get(again.key, platform="weibo", author=f"u-{run_id}")
    assert stored is not None and stored.fingerprint == again.fingerprint


async def test_a_re_delivery_is_not_its_own_duplicate(
    store: MongoRecentAppeals, run_id: str
) -> None:
    a = appeal(f"{run_id}-a", f"u-{run_id}")
    first = await assign(store, a)
    second = await assign(store, a)
    assert first.case_id == second.case_id == a.case_id
    assert second.duplicate_of is None


async def test_between_reads_one_author_newest_first(
    store: MongoRecentAppeals, run_id: str
) -> None:
    author = f"u-{run_id}"
    for i in range(3):
        await store.add(appeal(f"{run_id}-{i}", author, f"第{i}件事", at=T0 + timedelta(days=i)))
    await store.add(appeal(f"{run_id}-x", f"other-{run_id}"))
    found = await store.between("weibo", author, T0, T0 + timedelta(days=1), limit=10)
    assert [a.key for a in found] == [f"{run_id}-1", f"{run_id}-0"]
    assert await store.prune(T0 + timedelta(days=1)) >= 2
    assert await store.get(f"{run_id}-0", platform="weibo", author=author) is None


async def test_an_authors_appeals_live_in_the_shard_of_that_author(
    stack: StackSettings, store: MongoRecentAppeals, run_id: str
) -> None:
    author = f"u-{run_id}"
    await store.add(appeal(f"{run_id}-0", author))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    try:
        database = client[f"itest_intake_{run_id}"]
        shard = ShardedCollection(database, "recent_appeals").name(f"weibo\x1f{author}")
        assert await database[shard].count_documents({"author": author}) == 1
        assert "recent_appeals" not in await database.list_collection_names()
    finally:
        await client.close()
