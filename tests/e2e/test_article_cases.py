"""End to end: the four services and the simulator as processes, on the real Kafka and store,
take the article's three cases from webhook to dispatch chain and public acknowledgment."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import httpx

from contracts import APPEALS, DISPATCH_ORDERS, REPLIES_SENT
from fengqiao import processes
from fengqiao.demo import demo_env, feed_and_watch, load_posts
from fengqiao.testing import StackEndpoints

SECRET = "e2e-" + uuid.uuid4().hex


async def test_article_cases_are_dispatched_and_acknowledged_once(
    stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    posts = load_posts(uuid.uuid4().hex[:6])
    env = {**stack_endpoints.env(), **demo_env(SECRET)}
    with processes.running(env, log_dir=tmp_path / "logs") as fleet:
        watcher = await feed_and_watch(
            stack_endpoints.kafka_bootstrap, fleet.url("intake"), posts, secret=SECRET, timeout=90
        )
        received = httpx.get(fleet.url("simulator") + "/_sim/received", timeout=5).json()
        cases = {}
        for post in posts:
            [appeal] = watcher.of(APPEALS.name, lambda a, p=post: a.reply_to.post_id == p["id"])
            cases[post["id"]] = appeal.case_id
            tracked = httpx.get(f"{fleet.url('tracker')}/ops/cases/{appeal.case_id}", timeout=5)
            assert tracked.status_code == 200
            doc = tracked.json()
            assert doc["state"] == "dispatched"
            assert doc["acknowledged"] is True
            assert doc["chain"] == post["expect"]["chain"]

    for post in posts:
        case_id = cases[post["id"]]
        orders = sorted(
            watcher.of(DISPATCH_ORDERS.name, lambda o, c=case_id: o.case_id == c), key=lambda o: o.hop
        )
        expect = post["expect"]
        assert [o.to_unit for o in orders] == expect["chain"][1:]
        assert [o.from_unit for o in orders] == expect["chain"][:-1]
        assert orders[-1].final and not any(o.final for o in orders[:-1])
        assert orders[-1].category == expect["category"]
        assert (orders[-1].urgency.value == "urgent") == expect["urgent"]
        [sent] = watcher.of(REPLIES_SENT.name, lambda r, c=case_id: r.case_id == c)
        assert sent.status == "sent" and sent.platform_message_id

    # One public acknowledgment per case on the platform, on the citizen's post, nothing else.
    ours = [r for r in received if r["target"]["id"] in cases]
    assert Counter(r["target"]["id"] for r in ours) == {post_id: 1 for post_id in cases}
    assert all(r["kind"] == "comment" and "已收到" in r["text"] for r in ours)
