"""The dead letters' HTTP API (fengqiao/ops/http.py, hosted by the router) over HTTP, with the
real rules and claims (`fengqiao.ops.dlq`) behind the router's guard; Kafka's `.dlq` topics are a
list of records here, and the publisher records what it was asked to publish. On the real
stack: tests/integration/test_dead_letter_api.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.contracts import DeadLetter
from fengqiao.ops import dlq
from fengqiao.ops.http import dead_letter_router
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
PHONE = "13912345678"
PAYLOAD = f'{{"type": "appeal.normalized", "case_id": "c-1", "text": "电话{PHONE}"}}'


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def letter(consumer: str, topic: str, offset: int, minutes: int = 0) -> bytes:
    return (
        DeadLetter(
            occurred_at=AT + timedelta(minutes=minutes),
            producer=consumer,
            origin_topic=topic,
            origin_partition=2,
            origin_offset=offset,
            origin_key="c-1",
            consumer=consumer,
            error_type="ValueError",
            error=f"bad {PHONE}",
            payload=PAYLOAD,
        )
        .model_dump_json()
        .encode()
    )


@dataclass
class Desk:
    http: httpx.AsyncClient
    store: dlq.InMemoryActionStore
    published: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )


TOKENS = {
    "ops": Identity("local:li.ops", "li.ops", "xj", frozenset({Role.OPS}), "token"),
    "handler": Identity("local:wang", "wang", "xj", frozenset({Role.HANDLER}), "token"),
}


def as_(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {who}"}


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    records = [
        Record("appeals.dlq", 0, 0, letter("router", "appeals", 7)),
        Record("appeals.dlq", 0, 1, letter("tracker", "appeals", 7, 1)),  # the same message
        Record("appeals.dlq", 0, 2, letter("router", "appeals", 8, 2)),
        Record("replies.requested.dlq", 0, 0, letter("notifier", "replies.requested", 3, 3)),
        Record("appeals.dlq", 0, 3, b"{not json"),
    ]

    async def source() -> AsyncIterator[Any]:
        for record in records:
            yield record

    store = dlq.InMemoryActionStore()
    published: list[Any] = []

    async def publish(
        topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        published.append((topic, value, key, headers))
        return 2, 100 + len(published)

    guard = Guard("router", [FixedTokens(TOKENS)])
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    router = dead_letter_router(source, store, publish, caller=guard.caller)
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        yield Desk(http, store, published)


async def test_only_ops_lists_dead_letters_counted_per_topic_and_status(desk: Desk) -> None:
    assert (await desk.http.get("/ops/dead-letters")).status_code == 401
    assert (await desk.http.get("/ops/dead-letters", headers=as_("handler"))).status_code == 403
    listed = await desk.http.get("/ops/dead-letters", headers=as_("ops"))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["counts"] == {"appeals": {"new": 2}, "replies.requested": {"new": 1}}
    assert [e["id"] for e in body["dead_letters"]] == [
        "replies.requested:2:3", "appeals:2:8", "appeals:2:7",
    ]  # fmt: skip
    [seven] = [e for e in body["dead_letters"] if e["id"] == "appeals:2:7"]
    assert seven["consumers"] == ["router", "tracker"]
    assert PHONE not in listed.text and "139****5678" in seven["error"]


async def test_one_is_shown_with_its_payload_masked(desk: Desk) -> None:
    shown = await desk.http.get("/ops/dead-letters/appeals:2:7", headers=as_("ops"))
    assert shown.status_code == 200, shown.text
    assert PHONE not in shown.text and "139****5678" in shown.json()["payload"]
    assert shown.json()["dead_letters"] == ["appeals.dlq:0:0", "appeals.dlq:0:1"]
    missing = await desk.http.get("/ops/dead-letters/appeals:9:9", headers=as_("ops"))
    assert missing.status_code == 404
    assert (await desk.http.get("/ops/dead-letters/appeals:2:7")).status_code == 401


async def test_a_replay_publishes_once_in_the_operators_name(desk: Desk) -> None:
    url = "/ops/dead-letters/appeals:2:7/replay"
    assert (await desk.http.post(url, headers=as_("handler"))).status_code == 403
    assert desk.published == []
    done = await desk.http.post(url, headers=as_("ops"))
    assert done.status_code == 200, done.text
    expected = {"id": "appeals:2:7", "outcome": "replayed", "topic": "appeals", "offset": 101}
    assert {k: done.json()[k] for k in expected} == expected
    [(topic, value, key, headers)] = desk.published
    assert (topic, value, key) == ("appeals", PAYLOAD.encode(), b"c-1")  # the original bytes
    assert headers == [(dlq.REPLAY_HEADER, b"appeals:2:7")]
    claim = desk.store.docs["replay:appeals:2:7"]
    assert claim["by"] == "local:li.ops" and claim["state"] == "published"
    again = await desk.http.post(url, headers=as_("ops"))
    assert again.status_code == 409 and "replayed already" in again.text, again.text
    assert len(desk.published) == 1
    listed = (await desk.http.get("/ops/dead-letters?status=new", headers=as_("ops"))).json()
    assert listed["counts"]["appeals"] == {"new": 1, "replayed": 1}
    assert [e["id"] for e in listed["dead_letters"]] == ["replies.requested:2:3", "appeals:2:8"]


async def test_a_purge_needs_a_reason_and_a_purged_letter_is_not_replayed(desk: Desk) -> None:
    url = "/ops/dead-letters/appeals:2:8"
    for body in ({}, {"reason": ""}):
        refused = await desk.http.post(f"{url}/purge", json=body, headers=as_("ops"))
        assert refused.status_code == 422, refused.text
    assert desk.store.docs == {}
    forged = {"reason": "测试数据", "by": "someone.else"}  # who acted is never the body's
    assert (
        await desk.http.post(f"{url}/purge", json=forged, headers=as_("ops"))
    ).status_code == 422
    done = await desk.http.post(f"{url}/purge", json={"reason": "测试数据"}, headers=as_("ops"))
    assert done.status_code == 200 and done.json()["outcome"] == "purged", done.text
    assert desk.store.docs["purge:appeals:2:8"]["by"] == "local:li.ops"
    assert desk.store.docs["purge:appeals:2:8"]["reason"] == "测试数据"
    again = await desk.http.post(f"{url}/purge", json={"reason": "x"}, headers=as_("ops"))
    assert again.status_code == 409
    replay = await desk.http.post(f"{url}/replay", headers=as_("ops"))
    assert replay.status_code == 409 and "was purged" in replay.text
    assert desk.published == []
    handler = await desk.http.post(
        "/ops/dead-letters/appeals:2:7/purge", json={"reason": "x"}, headers=as_("handler")
    )
    assert handler.status_code == 403
