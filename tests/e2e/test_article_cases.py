"""End to end: the four services and the simulator as processes, on the real Kafka and store,
take the article's three cases from webhook to dispatch chain and public acknowledgment."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from contracts import APPEALS, DISPATCH_ORDERS, REPLIES_SENT, ReplyPurpose
from fengqiao import processes
from fengqiao.demo import demo_env, feed_and_watch, load_posts
from fengqiao.testing import StackEndpoints
from fengqiao.watch import TopicWatcher

SECRET = "e2e-" + uuid.uuid4().hex


async def settled_case(http: httpx.AsyncClient, tracker: str, case_id: str) -> dict[str, Any]:
    """The tracker's case once it has recorded the acknowledgment and the final hop (it lags the
    topics a little, and reads each topic at its own pace)."""
    for _ in range(100):
        response = await http.get(f"{tracker}/ops/cases/{case_id}")
        doc = response.json() if response.status_code == 200 else {}
        if doc.get("acknowledged") and any(h["final"] for h in doc.get("hops", ())):
            return dict(response.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"tracker never settled case {case_id}: {response.text}")


def case_of(watcher: TopicWatcher, post: dict[str, Any]) -> str:
    [appeal] = watcher.of(APPEALS.name, lambda a: a.reply_to.post_id == post["id"])
    return str(appeal.case_id)


async def test_article_cases_are_dispatched_and_acknowledged_once(
    stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    posts = load_posts(uuid.uuid4().hex[:6])
    ports = processes.free_ports()
    env = {**stack_endpoints.env(), **demo_env(SECRET, ports["simulator"])}
    with processes.running(env, log_dir=tmp_path / "logs", ports=ports) as fleet:
        watcher = await feed_and_watch(
            stack_endpoints.kafka_bootstrap, fleet.url("intake"), posts, secret=SECRET, timeout=90
        )
        async with httpx.AsyncClient(timeout=5) as http:
            received = (await http.get(fleet.url("simulator") + "/_sim/received")).json()
            tracked = {
                p["id"]: await settled_case(http, fleet.url("tracker"), case_of(watcher, p))
                for p in posts
            }
        cases = {}
        for post in posts:
            cases[post["id"]] = case_of(watcher, post)
            doc = tracked[post["id"]]
            assert doc["state"] == "dispatched"
            assert doc["acknowledged"] is True
            assert doc["chain"] == post["expect"]["chain"]

    for post in posts:
        case_id = cases[post["id"]]
        orders = sorted(
            watcher.of(DISPATCH_ORDERS.name, lambda o, c=case_id: o.case_id == c),
            key=lambda o: o.hop,
        )
        expect = post["expect"]
        assert [o.to_unit for o in orders] == expect["chain"][1:]
        assert [o.from_unit for o in orders] == expect["chain"][:-1]
        assert orders[-1].final and not any(o.final for o in orders[:-1])
        assert orders[-1].category == expect["category"]
        assert (orders[-1].urgency.value == "urgent") == expect["urgent"]
        [sent] = watcher.of(
            REPLIES_SENT.name,
            lambda r, c=case_id: r.case_id == c and r.purpose is ReplyPurpose.ACKNOWLEDGMENT,
        )
        assert sent.status == "sent" and sent.platform_message_id

    # On the citizen's post: one public acknowledgment per case, and one public @ of the unit
    # that must act (派单) where the router dispatched by mention; nothing else.
    ours = [r for r in received if r["target"]["id"] in cases]
    acks = [r for r in ours if "已收到" in r["text"]]
    assert Counter(r["target"]["id"] for r in acks) == dict.fromkeys(cases, 1)
    announced = [r for r in ours if "请接单" in r["text"]]
    assert len(announced) + len(acks) == len(ours)
    assert max(Counter(r["target"]["id"] for r in announced).values(), default=0) <= 1
    assert all(r["kind"] == "comment" for r in ours)
