"""The dead letters' HTTP API on the real stack (issue 19: "dead letters with replay, for `ops`
only"): the router (in this process, its lifespan and consumers running) dead-letters a poison
appeal; an operator finds it through `GET /ops/dead-letters` (read from the real `.dlq`
topics), replays it through the API once (a second replay: 409; the replay is claimed in
`fengqiao_ops.dlq_actions` in the person's name, and lands on `appeals` with its original key),
and a purge needs a reason. A handler is refused."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from fengqiao.auth.seed import person_token
from fengqiao.contracts import APPEALS
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.app import build
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message

PHONE = "13912345678"


async def poison(bootstrap: str, case_id: str) -> None:
    appeal = appeal_message(f"电话{PHONE}", case_id=case_id, occurred_at=datetime.now(UTC))
    body = appeal.model_dump(mode="json") | {"is_appeal": "maybe"}  # off contract: never passes
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(APPEALS.name, json.dumps(body).encode(), key=case_id.encode())
    finally:
        await producer.stop()


def bearer(stack: StackSettings, username: str, unit: str, role: str) -> dict[str, str]:
    token = person_token(stack.mongo_uri, username, name=username, unit_id=unit, roles=[role])
    return {"authorization": f"Bearer {token}"}


async def mine(http: httpx.AsyncClient, ops: dict[str, str], case_id: str) -> list[Any]:
    listed = await http.get("/ops/dead-letters", params={"status": "all"}, headers=ops)
    assert listed.status_code == 200, listed.text
    return [e for e in listed.json()["dead_letters"] if e["origin"]["key"] == case_id]


async def test_a_poison_message_is_listed_replayed_once_and_purged_with_a_reason(
    stack: StackSettings, run_id: str
) -> None:
    case_id = f"c-dlq-{run_id}"
    ops = bearer(stack, f"ops.{run_id}", "xj", "ops")
    handler = bearer(stack, f"h.{run_id}", "652701", "handler")
    _, app = build(RouterSettings(stack=stack, database=f"itest_router_{run_id}"))
    transport = httpx.ASGITransport(app=app)
    async with serving(app), httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        await poison(stack.kafka_bootstrap, case_id)
        deadline = time.monotonic() + 90
        while not (found := await mine(http, ops, case_id)):
            assert time.monotonic() < deadline, "the poison appeal was not dead-lettered"
            await asyncio.sleep(1)
        [letter] = found
        assert letter["status"] == "new" and letter["consumers"] == ["router"]
        url = f"/ops/dead-letters/{letter['id']}"
        assert (await http.get("/ops/dead-letters", headers=handler)).status_code == 403
        assert (await http.post(f"{url}/replay", headers=handler)).status_code == 403
        shown = await http.get(url, headers=ops)
        assert shown.status_code == 200 and PHONE not in shown.text
        assert "139****5678" in shown.json()["payload"]

        replayed = await http.post(f"{url}/replay", headers=ops)
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["topic"] == APPEALS.name
        again = await http.post(f"{url}/replay", headers=ops)
        assert again.status_code == 409, again.text
        claim = await _claim(stack, f"replay:{letter['id']}")
        assert claim["by"] == f"local:ops.{run_id}" and claim["state"] == "published"

        # The replay is poison still: a dead letter of its own, at the offset it was replayed to.
        deadline = time.monotonic() + 90
        while len(found := await mine(http, ops, case_id)) < 2:
            assert time.monotonic() < deadline, found
            await asyncio.sleep(1)
        statuses = {e["id"]: e["status"] for e in found}
        [second] = [i for i in statuses if i != letter["id"]]
        assert statuses == {letter["id"]: "replayed", second: "new"}
        assert second.endswith(f":{replayed.json()['offset']}")

        no_reason = await http.post(f"/ops/dead-letters/{second}/purge", json={}, headers=ops)
        assert no_reason.status_code == 422
        purged = await http.post(
            f"/ops/dead-letters/{second}/purge", json={"reason": "测试毒消息"}, headers=ops
        )
        assert purged.status_code == 200 and purged.json()["outcome"] == "purged", purged.text
        after = await http.post(f"/ops/dead-letters/{second}/replay", headers=ops)
        assert after.status_code == 409 and "was purged" in after.text
        listed = (await http.get("/ops/dead-letters", headers=ops)).json()
        assert listed["counts"][APPEALS.name].get("purged", 0) >= 1


async def _claim(stack: StackSettings, key: str) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    try:
        found = await client["fengqiao_ops"]["dlq_actions"].find_one({"_id": key})
    finally:
        await client.close()
    assert found is not None, key
    return found
