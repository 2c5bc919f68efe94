"""The per-author records of linking on the real FerretDB (issue 21): two normalizers racing on
one author both end up recorded and agree on every post; the appeal path sends no filter but
`_id`; a store of the old layout (one document per appeal, 64 shards) is migrated at start and
its appeals still take follow-ups."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.recent import Post, claim_key
from fengqiao.services.intake.adapters.recent_mongo import MongoRecentAppeals, period_of
from fengqiao.services.intake.adapters.recent_poll import Assignment, assign_cases
from fengqiao.services.intake.linking import Policy, RecentAppeal, cues, text_digest
from tests.integration.linking import T0, WAGES, appeal, assign


class Commands(monitoring.CommandListener):
    """Every command a client sends, by name, with its body."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


OPENED: list[AsyncMongoClient[dict[str, Any]]] = []


@pytest.fixture
async def database(stack: StackSettings, run_id: str) -> AsyncIterator[str]:
    name = f"itest_link_{run_id}"
    yield name
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    await client.drop_database(name)
    await client.close()
    while OPENED:
        await OPENED.pop().close()


async def opened(
    stack: StackSettings, database: str, *listeners: monitoring.CommandListener
) -> MongoRecentAppeals:
    """A store on its own client (as a replica has), closed after the test."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        stack.mongo_uri, tz_aware=True, event_listeners=list(listeners)
    )
    OPENED.append(client)
    return MongoRecentAppeals(client, database)


async def test_two_normalizers_racing_on_one_author_agree(
    stack: StackSettings, database: str, run_id: str
) -> None:
    one, two = await opened(stack, database), await opened(stack, database)
    author = f"u-{run_id}"
    texts = [f"第{i}件事：{'甲乙丙丁戊己庚辛壬癸'[i]}公司欠我{i + 1}万元不给" for i in range(10)]
    posts = [
        appeal(f"{run_id}-{i}", author, t, T0 + timedelta(minutes=i)) for i, t in enumerate(texts)
    ]
    # Each post reaches both replicas (a re-delivery after a rebalance), all at the same moment.
    jobs = [assign(store, p, t) for p, t in zip(posts, texts, strict=True) for store in (one, two)]
    decided = await asyncio.gather(*jobs)
    by_key: dict[str, set[tuple[str, str | None]]] = {}
    for d in decided:
        by_key.setdefault(d.key, set()).add((d.case_id, d.duplicate_of))
    assert all(len(seen) == 1 for seen in by_key.values()), by_key  # both replicas agree
    stored = {a.key: a for a in await one.history("weibo", author, T0, T0 + timedelta(hours=1))}
    assert set(stored) == {p.key for p in posts}  # nobody's post was lost
    for d in decided:
        assert (stored[d.key].case_id, stored[d.key].duplicate_of) == (d.case_id, d.duplicate_of)
    again = await asyncio.gather(*(assign(two, p, t) for p, t in zip(posts, texts, strict=True)))
    assert [a.case_id for a in again] == [stored[p.key].case_id for p in posts]


def _filters(name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if name == "find":
        return [body["filter"]]
    if name == "update":
        return [u["q"] for u in body["updates"]]
    if name == "delete":
        return [d["q"] for d in body["deletes"]]
    return []


async def test_the_appeal_path_reads_by_id_only(
    stack: StackSettings, database: str, run_id: str
) -> None:
    listener = Commands()
    store = await opened(stack, database, listener)
    author = f"u-{run_id}"
    for i in range(40):  # history enough to compact: versions become stubs by `_id`
        await store.add(appeal(f"{run_id}-{i}", author, f"第{i}件", T0 - timedelta(days=i)))
    await assign(store, appeal(f"{run_id}-o", f"n-{run_id}"), WAGES, name=f"n-{run_id}")
    post = appeal(f"{run_id}-new", author, "还是没人来处理工资的事", T0 + timedelta(hours=1))
    listener.sent.clear()
    # A repost path too: no text matches, so the name it quotes and that author's history.
    words, reposted = "还是没人来处理工资的事", ((f"n-{run_id}", "别的字"),)
    await assign(store, post, words, name=f"self-{run_id}", reposted=reposted)
    await assign(store, post, words)  # and its re-delivery
    names = {name for name, _ in listener.sent}
    assert names <= {"find", "insert", "update"}, names
    filters = [f for name, body in listener.sent for f in _filters(name, body)]
    assert filters and all(set(f) == {"_id"} for f in filters), filters
    ids = [f["_id"] for f in filters]
    assert all(isinstance(i, str) or set(i) == {"$in"} for i in ids), ids


def old_document(a: RecentAppeal, doc_id: str) -> dict[str, Any]:
    return {
        "_id": doc_id,
        "key": a.key,
        "platform": a.platform,
        "author": a.author,
        "post_id": a.post_id,
        "event_id": a.event_id,
        "case_id": a.case_id,
        "posted_at": a.posted_at,
        "fingerprint": struct.pack(f">{len(a.fingerprint)}Q", *a.fingerprint),
        "words": a.words,
        "category": a.category,
        "amounts": sorted(a.amounts),
        "phones": [],
        "is_appeal": True,
    }


async def test_a_store_of_the_old_layout_is_migrated_and_still_links(
    stack: StackSettings, database: str, run_id: str
) -> None:
    store = await opened(stack, database)
    old = store.client[database]
    author, first = f"u-{run_id}", appeal(f"{run_id}-old", f"u-{run_id}")
    await old["recent_appeals_1f"].insert_one(old_document(first, first.key))
    claim = claim_key("weibo", author, WAGES, T0)
    await old["appeal_claims_1f"].insert_one(old_document(first, claim))
    digest = text_digest(WAGES)
    await old["appeal_texts"].insert_one(old_document(first, f"weibo\x1f{digest}"))
    await old["author_names"].insert_one({"_id": f"weibo\x1fn-{run_id}", "author": author,
                                          "posted_at": T0})  # fmt: skip
    await store.ensure_indexes()  # at start: migrated, the old collections dropped
    assert all(n.startswith("linking_") for n in await old.list_collection_names())
    follow = appeal(f"{run_id}-f", author, "上次反映的工资的事还没人联系我", T0 + timedelta(days=5))
    decided = await assign(store, follow, "上次反映的工资的事还没人联系我")
    assert (decided.follow_up_of, decided.case_id) == (first.case_id, first.case_id)
    holder = await store.by_text("weibo", digest, T0 + timedelta(days=1))
    assert holder is not None and holder.case_id == first.case_id
    assert await store.author_named("weibo", f"n-{run_id}", T0) == author
    copy = await assign(store, appeal(f"{run_id}-c", author), WAGES)  # same words, same week
    assert copy.case_id == first.case_id
    assert await store.ensure_indexes() is None  # nothing left to migrate


async def test_pruning_drops_old_periods_and_reads_nothing(
    stack: StackSettings, database: str, run_id: str
) -> None:
    listener = Commands()
    store = await opened(stack, database, listener)
    for days in (0, 75, 150):  # three periods
        await store.add(appeal(f"{run_id}-{days}", f"u-{run_id}", at=T0 + timedelta(days=days)))
    listener.sent.clear()
    assert await store.prune(T0 + timedelta(days=150)) == 2
    assert {name for name, _ in listener.sent} == {"listCollections", "drop"}
    kept = await store.history("weibo", f"u-{run_id}", T0, T0 + timedelta(days=200))
    assert [a.key for a in kept] == [f"{run_id}-150"]


def _poll(run_id: str, authors: int) -> list[Assignment]:
    """Each author's appeal, then its follow-up (which claims nothing: it joins the appeal)."""
    firsts = [(f"a{i}", i, WAGES, T0 + timedelta(seconds=i)) for i in range(authors)]
    laters = [(f"f{i}", i, FOLLOW, T0 + timedelta(hours=1)) for i in range(authors)]
    items = []
    for name, i, text, at in firsts + laters:
        a = appeal(f"{run_id}-{name}", f"u{i}-{run_id}", text, at)
        claim = claim_key("weibo", a.author, text, a.posted_at)
        items.append(Assignment(a, Post(cues=cues(text), own_words=text), claim))
    return items


FOLLOW = "上次反映的工资的事还没人联系我"


async def _assign_poll(store: MongoRecentAppeals, items: list[Assignment]) -> list[Any]:
    decided = await assign_cases(
        store, items, policy=Policy(), similarity=lambda x, y: 1.0 if x == y else 0.0
    )
    return [(a.key, a.case_id, a.duplicate_of, a.follow_up_of) for a, _ in decided]


async def test_a_poll_costs_one_find_per_period_and_two_inserts(
    stack: StackSettings, database: str, run_id: str
) -> None:
    listener = Commands()
    store = await opened(stack, database, listener)
    decided = await _assign_poll(store, _poll(run_id, 10))
    assert [d[1] for d in decided] == [f"c-{run_id}-a{i}" for i in range(10)] * 2
    periods = len(range(period_of(T0 - Policy().lookback()), period_of(T0) + 1))
    sent = [name for name, _ in listener.sent]
    # 20 posts: a `$in` per period, the claims in one insert, the texts and versions in one.
    assert (sent.count("find"), sent.count("insert")) == (periods, 2), sent


async def test_two_normalizers_racing_on_one_poll_agree(
    stack: StackSettings, database: str, run_id: str
) -> None:
    one, two = await opened(stack, database), await opened(stack, database)
    items = _poll(run_id, 5)
    # The same poll on two replicas at once (a rebalance), and copies of the appeals (the same
    # words, other posts) on the second: each author's words are claimed by one post only.
    copies = [Assignment(_copy(i.appeal), i.post, i.claim) for i in items[:5]]
    first, second = await asyncio.gather(
        _assign_poll(one, items), _assign_poll(two, copies + items)
    )
    assert second[5:] == first  # both agree on every post
    for (key, case, duplicate_of, _), original in zip(second[:5], first[:5], strict=True):
        # One case: whichever claimed the words first holds it, the other is its duplicate.
        assert case == original[1], (key, case, original)
        assert (duplicate_of is None) != (original[2] is None), (key, duplicate_of, original)
    stored = await one.history("weibo", f"u0-{run_id}", T0, T0 + timedelta(hours=2))
    assert {a.key for a in stored} == {f"{run_id}-a0", f"{run_id}-f0", f"{run_id}-a0-copy"}


def _copy(a: RecentAppeal) -> RecentAppeal:
    key = f"{a.key}-copy"
    return replace(a, key=key, case_id=f"c-{key}", event_id=f"e-{key}")
