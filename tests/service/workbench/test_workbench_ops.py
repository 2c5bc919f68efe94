"""运维 (ops) over HTTP: the workbench in front of the router's dead-letter API (the real
`fengqiao/ops/http.py` with its rules and claims, behind a guard on the same local sessions;
the `.dlq` topics a list of records, the publisher a recorder). Only `ops` sees the page and its
link; a replay is done once, as the person; a purge needs a reason; refusals are pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import Guard, LocalSessions
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.contracts import DeadLetter
from fengqiao.ops import dlq
from fengqiao.ops.http import dead_letter_router
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings
from tests.service.workbench.test_workbench import HTML, PASSWORD, csrf_of, log_in

PHONE = "13912345678"
LETTER = "appeals:1:42"


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class World:
    bench: httpx.AsyncClient
    store: dlq.InMemoryActionStore
    published: list[Any] = field(default_factory=list)


def letter() -> bytes:
    payload = f'{{"type": "appeal.normalized", "case_id": "c-9", "text": "电话{PHONE}"}}'
    dead = DeadLetter(
        occurred_at=datetime(2026, 12, 1, 9, tzinfo=UTC), producer="router",
        origin_topic="appeals", origin_partition=1, origin_offset=42, origin_key="c-9",
        consumer="router", error_type="ValidationError", error="is_appeal: not a boolean",
        payload=payload,
    )  # fmt: skip
    return dead.model_dump_json().encode()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    accounts = Accounts(MemoryAuthStore())
    for username, roles in (("li.ops", ["ops"]), ("wang.li", ["handler"])):
        await accounts.add(username, name=username, unit_id="xj", roles=roles, password=PASSWORD)
    records = [Record("appeals.dlq", 0, 5, letter())]

    async def source() -> AsyncIterator[Any]:
        for record in records:
            yield record

    store, published = dlq.InMemoryActionStore(), []

    async def publish(topic: str, value: bytes, key: bytes | None, headers: Any) -> tuple[int, int]:
        published.append((topic, value, key, headers))
        return 1, 43

    guard = Guard("router", [LocalSessions(accounts)])
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    api = dead_letter_router(source, store, publish, caller=guard.caller)
    router = http_app(runtime, description="t", routers=[api], guard=guard)
    settings = WorkbenchSettings(router_url="http://router")
    _, app = build(settings, accounts=accounts, transports={"router": httpx.ASGITransport(router)})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as h:
        yield World(h, store, published)


async def test_an_ops_person_replays_a_dead_letter_once(world: World) -> None:
    await log_in(world.bench, "li.ops")
    page = await world.bench.get("/ops", headers=HTML)
    assert page.status_code == 200, page.text
    assert 'href="/ops"' in page.text and "运维" in page.text  # the header's link
    assert LETTER in page.text and 'data-status="new">1<' in page.text
    shown = await world.bench.get(f"/ops/dead-letters/{LETTER}", headers=HTML)
    assert shown.status_code == 200 and "139****5678" in shown.text and PHONE not in shown.text
    csrf = csrf_of(page)
    replay = f"/ops/dead-letters/{LETTER}/replay"
    assert (await world.bench.post(replay, data={}, headers=HTML)).status_code == 403  # no CSRF
    assert world.published == []
    done = await world.bench.post(replay, data={"csrf": csrf}, headers=HTML)
    assert done.status_code == 303 and done.headers["location"].startswith("/ops?done=replayed")
    after = await world.bench.get(done.headers["location"], headers=HTML)
    assert 'id="message"' in after.text and f"已重放：{LETTER}" in after.text
    assert len(world.published) == 1
    assert world.store.docs[f"replay:{LETTER}"]["by"] == "local:li.ops"
    again = await world.bench.post(replay, data={"csrf": csrf}, headers=HTML)
    assert again.status_code == 409 and "已处理" in again.text  # a page saying why
    assert len(world.published) == 1
    english = await world.bench.get("/ops?status=all&lang=en", headers=HTML)
    assert "Dead letters" in english.text and "replayed" in english.text


async def test_a_purge_needs_a_reason(world: World) -> None:
    await log_in(world.bench, "li.ops")
    csrf = csrf_of(await world.bench.get("/ops", headers=HTML))
    purge = f"/ops/dead-letters/{LETTER}/purge"
    refused = await world.bench.post(purge, data={"csrf": csrf, "reason": "  "}, headers=HTML)
    assert refused.status_code == 422 and "清除须填写原因" in refused.text
    assert world.store.docs == {}
    done = await world.bench.post(purge, data={"csrf": csrf, "reason": "测试消息"}, headers=HTML)
    assert done.status_code == 303, done.text
    record = world.store.docs[f"purge:{LETTER}"]
    assert (record["reason"], record["by"]) == ("测试消息", "local:li.ops")
    replay = await world.bench.post(
        f"/ops/dead-letters/{LETTER}/replay", data={"csrf": csrf}, headers=HTML
    )
    assert replay.status_code == 409 and world.published == []


async def test_a_handler_gets_the_refusal_page_and_no_link(world: World) -> None:
    await log_in(world.bench, "wang.li")
    page = await world.bench.get("/ops", headers=HTML)
    assert page.status_code == 403 and "您无权执行此操作" in page.text
    assert 'href="/ops"' not in page.text
    unknown = await world.bench.get("/ops/dead-letters/appeals:9:9", headers=HTML)
    assert unknown.status_code == 403  # the workbench's own policy refuses before the API
