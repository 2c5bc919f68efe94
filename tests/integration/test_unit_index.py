"""The unit index on the real store: entries added side by side (they go to the store together)
are each there once, listed newest first; re-adding one changes nothing. The callbacks awaiting
citizens are found by key, many at once."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.settings import StackSettings
from services.tracker.adapters.indexes import MongoIndexes


async def test_entries_added_at_once_are_each_listed_once(
    stack: StackSettings, run_id: str
) -> None:
    db = f"itest_units_{run_id}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    try:
        indexes = MongoIndexes(client, db)
        await indexes.add_unit_case("652701", "c-000")
        cases = [f"c-{i:03d}" for i in range(1, 40)]
        await asyncio.gather(*(indexes.add_unit_case("652701", c) for c in cases + cases))
        await asyncio.gather(*(indexes.add_unit_case("652700", c) for c in cases[:5]))
        # Another process (nothing remembered) adds one that exists: no error, no second entry.
        await MongoIndexes(client, db).add_unit_case("652701", "c-000")
        listed = await indexes.unit_cases("652701", limit=100)
        assert sorted(listed) == ["c-000", *cases]
        assert listed[-1] == "c-000"  # the oldest last
        assert sorted(await indexes.unit_cases("652700", limit=10)) == cases[:5]
        assert len(await indexes.unit_cases("652700", limit=3)) == 3
        assert await indexes.unit_cases("652702", limit=10) == []
    finally:
        await client.drop_database(db)
        await client.close()


async def test_the_callbacks_awaiting_citizens_are_found_together(
    stack: StackSettings, run_id: str
) -> None:
    db = f"itest_awaiting_{run_id}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    try:
        indexes = MongoIndexes(client, db)
        keys = [f"weibo:u.{i}" for i in range(5)]  # author ids may hold dots
        for i, key in enumerate(keys):
            await indexes.set_awaiting(key, f"c-{i}")
        await indexes.set_awaiting(keys[1], None)  # answered
        asked = [keys[0], keys[1], keys[4], "weibo:nobody", keys[0]]
        assert await indexes.awaiting(asked) == {keys[0]: "c-0", keys[4]: "c-4"}
        assert await indexes.awaiting([]) == {}
    finally:
        await client.drop_database(db)
        await client.close()
