"""The unit index on the real store: entries added side by side (they go to the store together)
are each there once, listed newest first; re-adding one changes nothing."""

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
