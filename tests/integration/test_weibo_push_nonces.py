"""Weibo push nonces on the real store (issue 19): a push URL is taken once, however many copies
of it arrive at the same moment, and a store outage answers 503 (Weibo sends the push again),
never takes a push unchecked and never loses it.

The claim is an insert against the unique `_id` of `weibo_push_nonces`, the one compare-and-set
FerretDB applies atomically. The outage is a TCP relay to the store that the test cuts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.nonces import NONCES
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.services.intake.weibo import push_signature
from tests.integration.test_ops_dead_letter_replay import StoreLink

SECRET = "nonce-itest-0123456789"
URL = "/webhooks/weibo/xinjiang"
_nonces = itertools.count(int(time.time()))


def signed_query(nonce: str | None = None) -> dict[str, str]:
    timestamp, nonce = str(int(time.time() * 1000)), nonce or str(next(_nonces))
    return {
        "signature": push_signature(SECRET, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }


def push_body(text: str, sender: int = 2489518277) -> bytes:
    body = {
        "type": "text",
        "receiver_id": 1902538057,
        "sender_id": sender,
        "created_at": "Fri Nov 27 21:00:00 +0800 2026",
        "text": text,
    }
    return json.dumps(body, ensure_ascii=False).encode()


class Intake:
    """Intake's app on the given store, posts kept in memory (Kafka is not what is tested)."""

    def __init__(self, stack: StackSettings, database: str) -> None:
        settings = IntakeSettings(
            stack=stack,
            database=database,
            weibo_accounts={"xinjiang": WeiboAccount(handle="@新疆检察", app_secret=SECRET)},
        )
        self.sink = InMemoryPostSink()
        self.runtime, app = build(settings, sink=self.sink)
        transport = httpx.ASGITransport(app=app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://intake", timeout=30)

    async def push(self, params: dict[str, str], body: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        return await self.client.post(URL, params=params, content=body, headers=headers)

    async def close(self) -> None:
        await self.client.aclose()
        assert self.runtime.mongo is not None
        await self.runtime.mongo.close()


@pytest.fixture
async def intake(stack: StackSettings, run_id: str) -> AsyncIterator[Intake]:
    intake = Intake(stack, f"itest_nonces_{run_id}")
    yield intake
    await intake.close()
    async with AsyncMongoClient[dict[str, Any]](stack.mongo_uri) as client:
        await client.drop_database(f"itest_nonces_{run_id}")


async def test_concurrent_copies_of_one_push_url_are_taken_exactly_once(
    intake: Intake, stack: StackSettings, run_id: str
) -> None:
    params = signed_query()
    # The same URL twenty times at once: ten identical pushes, ten with other bodies (a replay).
    bodies = [push_body("米东区有人打人，求助")] * 10 + [
        push_body(f"冒名的求助 {i}", sender=1000 + i) for i in range(10)
    ]
    answers = await asyncio.gather(*(intake.push(params, body) for body in bodies))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: 1, 409: 19}, [a.text for a in answers]
    assert all(a.json()["error"] == "replayed" for a in answers if a.status_code == 409)
    assert len(intake.sink.posts) == 1
    key = f"xinjiang:{params['timestamp']}:{params['nonce']}"
    async with AsyncMongoClient[dict[str, Any]](stack.mongo_uri, tz_aware=True) as client:
        doc = await client[f"itest_nonces_{run_id}"][NONCES].find_one({"_id": key})
    assert doc is not None
    assert doc["expires_at"] > datetime.now(UTC)
    replayed = intake.runtime.registry.get_sample_value(
        "fengqiao_intake_weibo_push_rejected_total", {"reason": "replayed"}
    )
    assert replayed == 19


async def test_a_store_outage_answers_503_and_the_push_is_taken_when_sent_again(
    stack: StackSettings, run_id: str
) -> None:
    mongo = urlsplit(stack.mongo_uri)
    link = StoreLink(mongo.hostname or "127.0.0.1", mongo.port or 27017)
    through_link = stack.model_copy(
        update={"mongo_uri": f"mongodb://127.0.0.1:{link.port}/?serverSelectionTimeoutMS=20000"}
    )
    intake = Intake(through_link, f"itest_nonces_{run_id}")
    try:
        assert (await intake.push(signed_query(), push_body("先热身"))).status_code == 200
        link.cut()
        # The first push fails at once (its connection was cut), the second waits for the store
        # (pymongo selects a server for up to 20 s) until intake stops waiting.
        cut = [(signed_query(), push_body(f"断网时的求助 {i}", sender=3000 + i)) for i in (1, 2)]
        for params, body in cut:
            started = time.monotonic()
            answer = await intake.push(params, body)
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["error"] == "nonce_store_unavailable"
            assert time.monotonic() - started < 5  # before Weibo gives up on the request
        assert len(intake.sink.posts) == 1  # only the warm-up: nothing taken unchecked
        link.mend()
        # Weibo sends each push again: the same URL (the second's claim may land meanwhile:
        # this replica adopts it), or signed anew; all are taken, one appeal each downstream.
        for params, body in cut:
            again = await intake.push(params, body)
            assert again.status_code == 200, again.text
            anew = await intake.push(signed_query(), body)
            assert anew.status_code == 200, anew.text
        assert len({p.source_id for p in intake.sink.posts[1:]}) == 2
    finally:
        await intake.close()
        link.close()
        async with AsyncMongoClient[dict[str, Any]](stack.mongo_uri) as client:
            await client.drop_database(f"itest_nonces_{run_id}")
