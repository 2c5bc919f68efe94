"""The notifier's outbox on the real store: a key can be claimed once."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from fengqiao.settings import StackSettings
from services.notifier.adapters.outbox import MongoOutbox, claim_record


async def test_a_reply_key_is_claimed_once(stack: StackSettings, run_id: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    database = f"itest_outbox_{run_id}"
    try:
        outbox = MongoOutbox(client, database)
        await outbox.ensure_indexes()
        record = claim_record("e1", "c1", "acknowledgment", datetime.now(UTC))
        assert await outbox.claim("c1:acknowledgment:0", record) is None
        again = await outbox.claim("c1:acknowledgment:0", record)
        assert again is not None and again["state"] == "sending"
        await outbox.finish("c1:acknowledgment:0", "sent", {"platform_message_id": "42"})
        done = await outbox.claim("c1:acknowledgment:0", record)
        assert done is not None and done["state"] == "sent" and done["platform_message_id"] == "42"
    finally:
        await client.drop_database(database)
        await client.close()
