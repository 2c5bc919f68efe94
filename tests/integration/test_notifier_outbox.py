"""The notifier's outbox on the real store: every claim is an insert against a unique _id, so
of many concurrent claimants exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.settings import StackSettings
from services.notifier.adapters.outbox import MongoOutbox

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
    assert await outbox.claim(KEY, record) is None
    again = await outbox.claim(KEY, record)
    assert again is not None and again["state"] == "sending"
    await outbox.finish(KEY, "sent", {"platform_message_id": "42"})
    done = await outbox.claim(KEY, record)
    assert done is not None and done["state"] == "sent" and done["platform_message_id"] == "42"
    assert (await outbox.get(KEY) or {})["platform_message_id"] == "42"
    assert await outbox.get("nope") is None


async def test_of_concurrent_claims_one_wins(outbox: MongoOutbox) -> None:
    claims = await asyncio.gather(
        *(outbox.claim(KEY, {"state": "sending", "by": i}) for i in range(20))
    )
    assert sum(c is None for c in claims) == 1
    attempts = await asyncio.gather(*(outbox.attempt(KEY, {"at": i}) for i in range(20)))
    assert sum(a is None for a in attempts) == 1
    decisions = await asyncio.gather(
        *(outbox.decide(KEY, {"operator": f"ops-{i}"}) for i in range(20))
    )
    assert sum(d is None for d in decisions) == 1


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
