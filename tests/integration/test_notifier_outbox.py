"""The notifier's outbox on the real store: every claim is an insert against a unique _id, so
of many concurrent claimants exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.notifier.adapters.outbox import MongoOutbox

KEY = "c1:acknowledgment:0"


@pytest.fixture
async def outbox(stack: StackSettings, run_id: str) -> AsyncIterator[MongoOutbox]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    database = f"itest_outbox_{run_id}"
    try:
        outbox = MongoOutbox(client, database)
        await outbox.ensure_indexes()
        yield outbox
    finally:
        await client.drop_database(database)
        await client.close()


async def test_a_reply_key_is_claimed_once(outbox: MongoOutbox) -> None:
    record = {"state": "sending", "case_id": "c1", "claimed_at": datetime.now(UTC)}
    assert await outbox.claim_many({KEY: record}) == {}
    again = await outbox.claim_many({KEY: record, "other": record})
    assert list(again) == [KEY] and again[KEY]["state"] == "sending"
    await outbox.record_many({KEY: {"state": "sent", "platform_message_id": "42"}})
    done = (await outbox.claim_many({KEY: record}))[KEY]
    assert (done["state"], done["platform_message_id"], done["case_id"]) == ("sent", "42", "c1")
    await outbox.finish(KEY, "held", {"error": "later"})  # a later state wins
    assert ((await outbox.get(KEY)) or {})["state"] == "held"
    await outbox.record_many({KEY: {"state": "failed"}})  # recorded twice: the later wins
    assert ((await outbox.get(KEY)) or {})["state"] == "failed"
    assert await outbox.get("nope") is None


async def test_of_concurrent_claims_one_wins(outbox: MongoOutbox) -> None:
    claims = await asyncio.gather(
        *(outbox.claim_many({KEY: {"state": "sending", "by": i}}) for i in range(20))
    )
    assert sum(c == {} for c in claims) == 1
    attempts = await asyncio.gather(*(outbox.attempt(KEY, {"at": i}) for i in range(20)))
    assert sum(a is None for a in attempts) == 1
    decisions = await asyncio.gather(
        *(outbox.decide(KEY, {"operator": f"ops-{i}"}) for i in range(20))
    )
    assert sum(d is None for d in decisions) == 1


async def test_a_batch_claims_only_its_new_keys(outbox: MongoOutbox) -> None:
    await outbox.claim_many({f"k{i}": {"state": "sending"} for i in range(0, 100, 3)})
    existing = await outbox.claim_many({f"k{i}": {"state": "queued"} for i in range(100)})
    assert sorted(existing) == sorted(f"k{i}" for i in range(0, 100, 3))
    assert all(r["state"] == "sending" for r in existing.values())
    assert ((await outbox.get("k1")) or {})["state"] == "queued"


async def test_queue_and_holds_are_listed_and_released(outbox: MongoOutbox) -> None:
    await outbox.park("a", {"parked_at": 1})
    await outbox.park("a", {"parked_at": 2})  # parking twice keeps the first
    await outbox.park("b", {"parked_at": 3})
    assert sorted((d["_id"], d["parked_at"]) for d in await outbox.parked()) == [
        ("a", 1),
        ("b", 3),
    ]
    await outbox.unpark("a")
    assert [d["_id"] for d in await outbox.parked()] == ["b"]
    await outbox.hold("h", {"reason": "urgent"})
    assert [(d["_id"], d["reason"]) for d in await outbox.held()] == [("h", "urgent")]
    await outbox.release("h")
    assert await outbox.held() == []


async def test_the_latest_approved_text_of_a_reply_is_kept(outbox: MongoOutbox) -> None:
    assert await outbox.edited("e") is None
    await outbox.edit("e", {"text": "第一稿", "operator": "local:gu.min"})
    await outbox.edit("e", {"text": "第二稿", "operator": "local:shen.yi"})
    assert await outbox.edited("e") == {"_id": "e", "text": "第二稿", "operator": "local:shen.yi"}


async def test_a_claim_reads_back_as_it_was_written(outbox: MongoOutbox) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    record = {
        "state": "sending",
        "claimed_at": now,
        "attempted_at": now,
        "case_id": "c1",
        "request": {"target": {"account": "@新疆检察", "post_id": "1"}, "variables": {}},
        "origin": {"topic": "replies.requested", "partition": 2, "offset": 7, "key": "c1"},
        "parts": ["您好，已收到。", "第二条"],
        "error": None,
    }
    await outbox.claim_many({KEY: record})
    assert await outbox.get(KEY) == {**record, "_id": KEY}
    # A claim written before they were packed reads as it was.
    await outbox._replies.insert_one({**record, "_id": "old"})
    assert await outbox.get("old") == {**record, "_id": "old"}
