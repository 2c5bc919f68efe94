"""The Weibo pollers against the platform simulator (in-process, over ASGI) with their cursors
in the real MongoDB-compatible store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.clock import SystemClock
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.cursors import COLLECTION, MongoCursorStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.domain import normalize
from fengqiao.services.intake.pollers import HttpWeiboReadApi, Poller, build_poller
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.simulator import create_app
from fengqiao.simulator.platform import Platform

TOKEN = "sim-token-xinjiang"


@pytest.fixture
async def mongo(stack: StackSettings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
async def database(mongo: AsyncMongoClient[dict[str, Any]], run_id: str) -> AsyncIterator[str]:
    name = f"itest_intake_{run_id}"
    yield name
    await mongo.drop_database(name)


@pytest.fixture
def simulator() -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(Platform()))


async def inject(simulator: httpx.ASGITransport, n: int, **post: Any) -> list[str]:
    async with httpx.AsyncClient(transport=simulator, base_url="http://sim") as client:
        ids = []
        for i in range(n):
            body = {"text": f"@新疆检察 米东区 求助 {i}", "to": "@新疆检察", **post}
            response = await client.post("/_sim/posts", json=body)
            response.raise_for_status()
            ids.append(response.json()["idstr"])
        return ids


def new_poller(
    simulator: httpx.ASGITransport,
    mongo: AsyncMongoClient[dict[str, Any]],
    database: str,
    sink: InMemoryPostSink,
) -> Poller:
    settings = IntakeSettings(
        weibo_accounts={"xinjiang": WeiboAccount(handle="@新疆检察", access_token=TOKEN)},
        database=database,
        pollers_enabled=True,
    )
    return build_poller(
        settings,
        sink,
        SystemClock(),
        MongoCursorStore(mongo, database),
        producer="intake",
        api=HttpWeiboReadApi("http://sim", transport=simulator),
    )


async def test_polled_mentions_are_stored_once_across_polls_and_restarts(
    simulator: httpx.ASGITransport, mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    sink = InMemoryPostSink()
    poller = new_poller(simulator, mongo, database, sink)
    first = await inject(simulator, 5)
    assert await poller.poll_once() == 5
    assert [p.source_id for p in sink.posts] == [f"status:{i}" for i in first]
    assert await poller.poll_once() == 0

    later = await inject(simulator, 2)
    assert await poller.poll_once() == 2
    await poller.stop()

    restarted = new_poller(simulator, mongo, database, sink)  # a new process: cursor from Mongo
    assert await restarted.poll_once() == 0
    comments = await inject(simulator, 1, kind="comment", to_me=True, mention=True)
    assert await restarted.poll_once() == 2  # comments/mentions and comments/to_me: one post
    await restarted.stop()

    ids = [p.source_id for p in sink.posts]
    assert ids == [f"status:{i}" for i in first + later] + [f"comment:{comments[0]}"] * 2
    cursor = await mongo[database][COLLECTION].find_one({"_id": "xinjiang|statuses/mentions"})
    assert cursor is not None and cursor["since_id"] == int(later[-1])
    appeals = [normalize(p, producer="t") for p in sink.posts]
    assert len({a.case_id for a in appeals}) == 8
    assert appeals[0].reply_to.post_id == first[0] and appeals[0].channel == "poll"
    assert appeals[-1].reply_to.comment_id == comments[0]


async def test_a_token_reads_only_its_own_account(
    simulator: httpx.ASGITransport, mongo: AsyncMongoClient[dict[str, Any]], database: str
) -> None:
    async with httpx.AsyncClient(transport=simulator, base_url="http://sim") as client:
        await client.post("/_sim/accounts", json={"access_token": TOKEN, "handle": "@新疆检察"})
    await inject(simulator, 2, to="@博州检察")
    mine = await inject(simulator, 1)
    sink = InMemoryPostSink()
    poller = new_poller(simulator, mongo, database, sink)
    assert await poller.poll_once() == 1
    assert sink.posts[0].source_id == f"status:{mine[0]}"
    await poller.stop()
