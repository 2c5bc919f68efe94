"""The unit index on the real store: entries added side by side (they go to the store together)
are each there once, listed newest first; re-adding one changes nothing. The callbacks awaiting
citizens are found by key, many at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.indexes import MongoIndexes


@pytest.fixture
async def store(stack: StackSettings, run_id: str) -> AsyncIterator[tuple[AsyncMongoClient, str]]:
    """A client and a database of this test's own (dropped after it)."""
    db = f"itest_indexes_{run_id}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    yield client, db
    await client.drop_database(db)
    await client.close()


async def test_entries_added_at_once_are_each_listed_once(
    store: tuple[AsyncMongoClient, str],
) -> None:
    client, db = store
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


async def test_the_callbacks_awaiting_citizens_are_found_together(
    store: tuple[AsyncMongoClient, str],
) -> None:
    indexes = MongoIndexes(*store)
    keys = [f"weibo:u.{i}" for i in range(5)]  # author ids may hold dots
    for i, key in enumerate(keys):
        await indexes.set_awaiting(key, f"c-{i}")
    await indexes.set_awaiting(keys[1], None)  # answered
    asked = [keys[0], keys[1], keys[4], "weibo:nobody", keys[0]]
    assert await indexes.awaiting(asked) == {keys[0]: "c-0", keys[4]: "c-4"}
    assert await indexes.awaiting([]) == {}
