"""End to end: the four services and the simulator as processes (the pytest plugin's
`fengqiao_services`), on the real Kafka and store, take the article's three cases from webhook to
dispatch chain and public acknowledgment."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from fengqiao.contracts import DISPATCH_ORDERS, REPLIES_SENT, ReplyPurpose
from fengqiao.demo import load_posts
from fengqiao.testing.plugin import FengqiaoServices, Platform, PostedAppeal


def settled(doc: dict[str, Any]) -> bool:
    """The tracker recorded the acknowledgment and the final hop (it lags the topics a little,
    and reads each topic at its own pace)."""
    return bool(doc["acknowledged"]) and any(h["final"] for h in doc.get("hops", ()))


def test_article_cases_are_dispatched_and_acknowledged_once(
    fengqiao_services: FengqiaoServices,
    post_appeal: Callable[..., PostedAppeal],
    wait_for_case: Callable[..., dict[str, Any]],
    platform: Platform,
) -> None:
    posts = load_posts(uuid.uuid4().hex[:6])
    appeals = {
        p["id"]: post_appeal(
            p["text"],
            account=p["account"],
            author_id=p["author"]["id"],
            author_name=p["author"].get("name"),
            post_id=p["id"],
        )
        for p in posts
    }
    tracked = {pid: wait_for_case(a, where=settled, timeout=90) for pid, a in appeals.items()}
    cases = {pid: doc["case_id"] for pid, doc in tracked.items()}
    for post in posts:
        doc = tracked[post["id"]]
        assert doc["state"] == "dispatched"
        assert doc["chain"] == post["expect"]["chain"]

    watcher = fengqiao_services.watcher
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
    ours = [r for r in platform.received() if r["target"]["id"] in cases]
    acks = [r for r in ours if "已收到" in r["text"]]
    assert Counter(r["target"]["id"] for r in acks) == dict.fromkeys(cases, 1)
    announced = [r for r in ours if "请接单" in r["text"]]
    assert len(announced) + len(acks) == len(ours)
    assert max(Counter(r["target"]["id"] for r in announced).values(), default=0) <= 1
    assert all(r["kind"] == "comment" for r in ours)
