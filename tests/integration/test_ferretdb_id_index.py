"""The local store answers lookups by `_id` from the table's index (deploy/ferretdb/patches.json):
without the patch FerretDB 1.24 read the whole table for every find, update and delete by `_id`."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings


async def test_a_find_by_id_searches_the_index(stack: StackSettings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    name = f"itest_id_index_{uuid.uuid4().hex[:8]}"
    try:
        await client[name]["docs"].insert_many([{"_id": f"d{i}"} for i in range(20)])
        explained = await client[name].command("explain", {"find": "docs", "filter": {"_id": "d7"}})
        assert explained["filterPushdown"] is True
        plan = " ".join(explained["queryPlanner"]["Plan"])
        assert "USING INDEX" in plan and "SCAN" not in plan, plan
        assert await client[name]["docs"].find_one({"_id": "d7"}) == {"_id": "d7"}
    finally:
        await client.drop_database(name)
        await client.close()


async def test_a_find_of_several_ids_searches_the_index_for_each(stack: StackSettings) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
    name = f"itest_id_index_{uuid.uuid4().hex[:8]}"
    docs = client[name]["docs"]
    try:
        await docs.insert_many([{"_id": f"d{i}", "n": i} for i in range(20)] + [{"_id": 7}])
        several = {"_id": {"$in": ["d3", "d7", "missing", "d7"]}}
        explained = await client[name].command("explain", {"find": "docs", "filter": several})
        assert explained["filterPushdown"] is True
        plan = " ".join(explained["queryPlanner"]["Plan"])
        assert "USING INDEX" in plan and "SCAN" not in plan, plan
        assert {d["_id"] for d in await docs.find(several).to_list()} == {"d3", "d7"}
        # Anything else is filtered document by document, as before, and answers the same.
        mixed = {"_id": {"$in": ["d3", 7]}}
        assert {d["_id"] for d in await docs.find(mixed).to_list()} == {"d3", 7}
        explained = await client[name].command("explain", {"find": "docs", "filter": mixed})
        assert explained["filterPushdown"] is False
        narrowed = {"_id": {"$in": ["d3", "d4"], "$ne": "d4"}}
        assert [d["_id"] for d in await docs.find(narrowed).to_list()] == ["d3"]
        assert await docs.find({"_id": {"$in": []}}).to_list() == []
    finally:
        await client.drop_database(name)
        await client.close()
