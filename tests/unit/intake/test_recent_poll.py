"""Linking a poll's posts together (services/intake/adapters/recent_poll.py): the store in
`MongoRecentAppeals`' layout over `MemoryRecords` (the same unique-insert semantics, no
server), checked against `assign_case` one post at a time on the in-memory store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import MemoryRecords
from fengqiao.services.intake.adapters.recent import (
    Holder,
    InMemoryRecentAppeals,
    Post,
    RecentAppeals,
    claim_key,
)
from fengqiao.services.intake.adapters.recent_mongo import (
    MongoRecentAppeals,
    period_name,
    period_of,
    version_id,
)
from fengqiao.services.intake.adapters.recent_poll import Assignment, assign_cases
from fengqiao.services.intake.linking import Policy, RecentAppeal, cues
from tests.integration.linking import T0, WAGES, appeal

FOLLOW = "上次反映的工资的事还没人联系我"


class CountedRecords(MemoryRecords):
    """`MemoryRecords` that counts reads and inserts, and can let another writer in first."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int]] = []
        self.inserts: list[str] = []
        self.before_insert: dict[str, dict[str, Any]] = {}  # `_id` → what another writes first

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        self.reads.append((collection, 1))
        return await super().get(collection, doc_id)

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[dict[str, Any]]:
        self.reads.append((collection, len(doc_ids)))
        return await super().get_many(collection, doc_ids)

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        if (first := self.before_insert.pop(doc["_id"], None)) is not None:
            await super().insert(collection, first)
        self.inserts.append(doc["_id"])
        return await super().insert(collection, doc)


def mongo(records: MemoryRecords) -> MongoRecentAppeals:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(connect=False)
    return MongoRecentAppeals(client, "unused", records=records)


def item(a: RecentAppeal, text: str) -> Assignment:
    return Assignment(
        a, Post(cues=cues(text), own_words=text), claim_key(a.platform, a.author, text, a.posted_at)
    )


async def link(store: RecentAppeals, items: list[Assignment]) -> list[tuple[Any, ...]]:
    decided = await assign_cases(
        store, items, policy=Policy(), similarity=lambda x, y: 1.0 if x == y else 0.0
    )
    return [(a.key, a.case_id, a.duplicate_of, a.follow_up_of, fresh) for a, fresh in decided]


def poll() -> list[Assignment]:
    """Two authors, each an appeal then a follow-up, and a copy of the first appeal."""
    return [
        item(appeal("p1", "u1"), WAGES),
        item(appeal("q1", "u2", at=T0 + timedelta(minutes=1)), WAGES),
        item(appeal("p2", "u1", FOLLOW, T0 + timedelta(hours=1)), FOLLOW),
        item(appeal("q2", "u2", FOLLOW, T0 + timedelta(hours=2)), FOLLOW),
        item(appeal("p3", "u1", at=T0 + timedelta(hours=3)), WAGES),
    ]


async def test_a_poll_decides_as_one_post_at_a_time_with_one_read_and_two_inserts() -> None:
    records = CountedRecords()
    grouped = await link(mongo(records), poll())
    assert grouped == await link(InMemoryRecentAppeals(), poll())
    # The second post of an author sees the first: the follow-up and the copy join its case.
    assert [d[1] for d in grouped] == ["c-p1", "c-q1", "c-p1", "c-q1", "c-p1"]
    assert grouped[2][3] == "c-p1" and grouped[4][2] == "e-p1"
    assert all(d[4] for d in grouped)
    # One `$in` of the authors' records per period their windows touch (two here); then the
    # claims, then the texts and versions.
    periods = range(period_of(T0 - Policy().lookback()), period_of(T0) + 1)
    assert sorted(records.reads) == [(period_name(p), 2) for p in periods]
    assert sorted(records.inserts) == sorted(
        [f"claim:{poll()[0].claim}", f"claim:{poll()[1].claim}"]
        + [f"text:weibo\x1f{d}" for d in _digests()]
        + [version_id("weibo\x1fu1", 1), version_id("weibo\x1fu2", 1)]
    )


def _digests() -> list[str]:
    from fengqiao.services.intake.linking import text_digest

    return [text_digest(WAGES)]


async def test_a_claim_held_by_another_post_makes_the_loser_and_its_follow_up_join_that_case(
) -> None:  # fmt: skip
    other = Holder("elsewhere", "e-elsewhere", "c-elsewhere")
    claim = claim_key("weibo", "u1", WAGES, T0)
    records = CountedRecords()
    # Another normalizer claims the same words of u1 between this poll's read and its claim.
    records.before_insert[f"claim:{claim}"] = {"_id": f"claim:{claim}", "key": other.key,
                                               "event_id": other.event_id,
                                               "case_id": other.case_id}  # fmt: skip
    items = poll()[::2]  # u1: the appeal, its follow-up, the copy
    grouped = await link(mongo(records), items)
    alone = InMemoryRecentAppeals()
    alone.claims[claim] = (other, T0)
    assert grouped == await link(alone, items)
    assert [d[1] for d in grouped] == ["c-elsewhere"] * 3
    assert grouped[0][2] == "e-elsewhere"  # a duplicate of the winner's post


async def test_a_version_written_meanwhile_is_read_and_both_posts_are_kept() -> None:
    records = CountedRecords()
    first = mongo(records)
    await link(first, [item(appeal("p0", "u1", "另一件事：邻居噪音", T0), "另一件事：邻居噪音")])
    # The other normalizer writes u1's version 2 (its own post) just before this poll does.
    theirs = await first.versions(period_of(T0)).latest("weibo\x1fu1")
    assert theirs is not None
    other = mongo(records)
    await other.add(appeal("x1", "u1", "第三件事", T0 + timedelta(minutes=5)))
    stored_v2 = records.collections[period_name(period_of(T0))][version_id("weibo\x1fu1", 2)]
    del records.collections[period_name(period_of(T0))][version_id("weibo\x1fu1", 2)]
    records.before_insert[version_id("weibo\x1fu1", 2)] = stored_v2
    grouped = await link(first, [item(appeal("p1", "u1"), WAGES)])
    assert [(d[0], d[4]) for d in grouped] == [("p1", True)]
    assert version_id("weibo\x1fu1", 3) in records.collections[period_name(period_of(T0))]
    kept = await mongo(records).history("weibo", "u1", T0 - timedelta(days=1), T0 + timedelta(1))
    assert {a.key for a in kept} == {"p0", "x1", "p1"}


async def test_a_redelivered_poll_reads_back_its_decisions() -> None:
    records = CountedRecords()
    first = await link(mongo(records), poll())
    again = await link(mongo(records), [*poll()[2:], item(appeal("p4", "u3"), WAGES)])
    assert again[:3] == [(*d[:4], False) for d in first[2:]]  # as decided, not again
    assert again[3] == ("p4", "c-p4", None, None, True)
    # Nothing written again but the new author's claim and version (and its text, which one
    # of the first poll's posts holds already: the same words).
    assert len(records.inserts) == 5 + 3
