"""`fengqiao triage train --with-corrections` reads the dispatchers' rulings from the router's
store on the real MongoDB/FerretDB, as labelled examples with who made them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.adapters.triage_queue import MongoTriageQueue
from fengqiao.services.router.app import build_router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.router.triage import Correction, Ruling, item_for
from fengqiao.testing.factories import appeal_message, triage_message
from fengqiao.triage.cli import _corrections


def test_rulings_become_examples(
    stack: StackSettings, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"itest_corrections_{run_id}"
    monkeypatch.setenv("FENGQIAO_MONGO_URI", stack.mongo_uri)
    monkeypatch.setenv("FENGQIAO_ROUTER_DATABASE", database)
    router = build_router(RouterSettings())
    appeal = appeal_message(
        "博乐市 老板欠钱 我在楼顶上",
        triage=triage_message("wage_arrears", urgent=True, review=("possibly_urgent",)),
    )
    item = item_for(appeal, router.decide(appeal), dispatched=True)
    ruling = Ruling.of(
        item, Correction(urgent=False), person="li.wei", unit="xj", at=appeal.occurred_at
    )

    async def store() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
        queue = MongoTriageQueue(client, database)
        await queue.add(item)
        assert await queue.rule(ruling)
        await client.close()

    async def drop() -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri)
        await client.drop_database(database)
        await client.close()

    asyncio.run(store())
    try:
        [example] = _corrections()
    finally:
        asyncio.run(drop())
    assert (example.is_appeal, example.urgent, example.category) == (True, False, "wage_arrears")
    assert example.text == "博乐市 老板欠钱 我在楼顶上" and example.tags == ("correction",)
