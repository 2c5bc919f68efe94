"""The recent-appeals store on the real MongoDB/FerretDB: insert-only decisions hold under
concurrency and re-delivery; reposts find their appeal by its words or by the name they quote;
the appeal path reads by `_id` only; old periods are dropped whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.recent import Post, assign_case, between, claim_key
from fengqiao.services.intake.adapters.recent_mongo import (
    MongoRecentAppeals,
    period_name,
    period_of,
)
from fengqiao.services.intake.linking import Policy, RecentAppeal, cues
from tests.integration import linking
from tests.integration.linking import T0, WAGES, assign


@pytest.fixture
async def store(stack: StackSettings, run_id: str) -> AsyncIterator[MongoRecentAppeals]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    store = MongoRecentAppeals(client, f"itest_intake_{run_id}")
    await store.ensure_indexes()
    yield store
    await client.drop_database(f"itest_intake_{run_id}")
    await client.close()


def appeal(key: str, author: str, text: str = WAGES, at: datetime = T0) -> RecentAppeal:
    return linking.appeal(key, author, text, at, urgent=True)


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
    [stored] = [a for a in await history(store, f"u-{run_id}") if a.key == again.key]
    assert stored.fingerprint == again.fingerprint


async def test_a_re_delivery_is_not_its_own_duplicate(
    store: MongoRecentAppeals, run_id: str
) -> None:
    a = appeal(f"{run_id}-a", f"u-{run_id}")
    first = await assign(store, a)
    second = await assign(store, a)
    assert first.case_id == second.case_id == a.case_id
    assert second.duplicate_of is None


async def history(store: MongoRecentAppeals, author: str) -> list[RecentAppeal]:
    return await store.history("weibo", author, T0 - timedelta(days=90), T0 + timedelta(days=90))


async def test_between_reads_one_author_newest_first_across_periods(
    store: MongoRecentAppeals, run_id: str
) -> None:
    author = f"u-{run_id}"
    days = [0, 1, 2, 80]  # the last in the next period: one collection per period
    for i in days:
        await store.add(appeal(f"{run_id}-{i}", author, f"第{i}件事", at=T0 + timedelta(days=i)))
    await store.add(appeal(f"{run_id}-x", f"other-{run_id}"))
    found = await between(store, "weibo", author, T0, T0 + timedelta(days=90), 3)
    assert [a.key for a in found] == [f"{run_id}-80", f"{run_id}-2", f"{run_id}-1"]
    found = await between(store, "weibo", author, T0, T0 + timedelta(days=1), 10)
    assert [a.key for a in found] == [f"{run_id}-1", f"{run_id}-0"]
    names = {period_name(period_of(T0)), period_name(period_of(T0 + timedelta(days=80)))}
    assert len(names) == 2
    assert set(await store.client[store.database_name].list_collection_names()) == names
    # The first period ends before the second: dropped whole, the second kept.
    assert await store.prune(T0 + timedelta(days=80)) == 1
    assert [a.key for a in await history(store, author)] == [f"{run_id}-80"]


async def test_what_linking_reads_survives_the_store(
    store: MongoRecentAppeals, run_id: str
) -> None:
    a = appeal(f"{run_id}-a", f"u-{run_id}", "工地欠我们三万四")
    await store.add(a)
    [stored] = await history(store, a.author)
    assert stored == a
    assert stored.amounts == {34000} and stored.urgent


async def test_a_repost_joins_the_appeal_it_quotes_by_its_words(
    store: MongoRecentAppeals, run_id: str
) -> None:
    original = await assign(store, appeal(f"{run_id}-o", f"u-{run_id}"), name=f"n-{run_id}")
    repost = appeal(f"{run_id}-r", f"friend-{run_id}", "帮转", at=T0 + timedelta(hours=2))
    joined = await assign(store, repost, "帮转", reposted=((f"n-{run_id}", WAGES),))
    assert joined.case_id == original.case_id
    assert joined.link_reason == f"repost of @n-{run_id}'s appeal"
    assert joined.urgent_case  # the original is urgent: so is the case the repost joins


async def test_a_repost_with_other_words_joins_by_the_name_it_quotes(
    store: MongoRecentAppeals, run_id: str
) -> None:
    name = f"n-{run_id}"
    original = await assign(store, appeal(f"{run_id}-o", f"u-{run_id}"), name=name)
    assert await store.author_named("weibo", name, T0) == f"u-{run_id}"
    repost = appeal(f"{run_id}-r", f"friend-{run_id}", "扩散", at=T0 + timedelta(hours=2))
    quoted = "老板拖欠工资三个月了，我在博乐市工地干活"  # cut and reordered: another digest
    joined, _ = await assign_case(
        store,
        repost,
        Post(cues=cues("扩散"), own_words="扩散", reposted=((name, quoted),)),
        claim=claim_key("weibo", repost.author, "扩散", repost.posted_at),
        policy=Policy(),
        similarity=lambda a, b: 0.5 if {a, b} == {quoted, WAGES} else 0.0,
    )
    assert joined.case_id == original.case_id
    assert joined.link_reason == f"repost of @{name}'s appeal (0.50)"


async def test_a_name_and_a_text_keep_their_first_holder(
    store: MongoRecentAppeals, run_id: str
) -> None:
    await store.remember_name("weibo", f"n-{run_id}", "first", T0)
    await store.remember_name("weibo", f"n-{run_id}", "second", T0)
    assert await store.author_named("weibo", f"n-{run_id}", T0) == "first"
    first, second = appeal(f"{run_id}-1", "u1"), appeal(f"{run_id}-2", "u2")
    await asyncio.gather(
        store.remember_text("weibo", f"d-{run_id}", first),
        store.remember_text("weibo", f"d-{run_id}", second),
    )
    holder = await store.by_text("weibo", f"d-{run_id}", T0)
    assert holder is not None and holder.key in {first.key, second.key}
    assert await store.by_text("weibo", f"d-{run_id}", T0 + timedelta(days=100)) == holder
    assert await store.prune(T0 + timedelta(days=100)) == 1
    assert await store.by_text("weibo", f"d-{run_id}", T0) is None
    assert await store.author_named("weibo", f"n-{run_id}", T0) is None
