"""Approval holds on the real fleet: with the notifier holding the replies of minors cases and
of urgent ones, a minors appeal and an urgent appeal are not answered until a reviewer approves
their acknowledgment; then each is posted exactly once, and the case's timeline tells both (held,
then acknowledged). An appeal of another category is answered at once.

Before the tracker's reply requests carried the category and urgency, nothing was ever held
(issue 18, defect 4)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fengqiao import processes
from fengqiao.auth.seed import person_token
from fengqiao.contracts import APPEALS
from fengqiao.demo import SOURCE, demo_env, wait_for_case
from fengqiao.runtime.signing import signed_headers
from fengqiao.testing import StackEndpoints
from fengqiao.watch import TopicWatcher

SECRET = "holds-" + uuid.uuid4().hex
TEXTS = {
    "minors": "我儿子今年13岁，在学校被几个高年级学生长期欺负殴打勒索零花钱，老师不管，"
    "请检察院帮帮我们未成年孩子",
    "urgent": "我丈夫拿着刀说要杀了我和孩子，现在就在门外，求求你们快来救命",
    "plain": "博乐市我父亲在工地干活三个月工资没发，老板跑了，求检察院帮忙讨薪",
}


def post(kind: str, run: str) -> dict[str, Any]:
    return {
        "id": f"hold-{kind}-{run}",
        "account": "@新疆检察",
        "author": {"id": f"citizen-{kind}-{run}", "name": f"市民{kind}"},
        "text": TEXTS[kind],
        "platform": "weibo",
    }


async def until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_held_replies_wait_for_a_reviewer_then_go_out_once(
    stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    posts = {kind: post(kind, run) for kind in TEXTS}
    ports = processes.free_ports()
    env = {
        **stack_endpoints.env(),
        **demo_env(SECRET, ports["simulator"]),
        "FENGQIAO_NOTIFIER_HOLD_CATEGORIES": json.dumps(["minors"]),
        "FENGQIAO_NOTIFIER_HOLD_URGENT": "true",
    }
    reviewer = person_token(stack_endpoints.mongo_uri, f"e2e-reviewer-{run}", name="审核员",
                            unit_id="xj", roles=["reviewer", "auditor"])  # fmt: skip
    as_reviewer = {"Authorization": f"Bearer {reviewer}"}
    since_ms = int(time.time() * 1000) - 1000
    with processes.running(env, log_dir=tmp_path / "logs", ports=ports) as fleet:
        async with (
            TopicWatcher(stack_endpoints.kafka_bootstrap, [APPEALS.name], since_ms=since_ms) as w,
            httpx.AsyncClient(timeout=10) as http,
        ):
            for body in posts.values():
                raw = json.dumps(body, ensure_ascii=False).encode()
                response = await http.post(
                    f"{fleet.url('intake')}/webhooks/generic/{SOURCE}",
                    content=raw,
                    headers=signed_headers(SECRET, raw),
                )
                response.raise_for_status()

            async def replies_to(kind: str) -> list[dict[str, Any]]:
                received = (await http.get(f"{fleet.url('simulator')}/_sim/received")).json()
                return [r for r in received if r["target"].get("id") == posts[kind]["id"]]

            async def held() -> dict[str, dict[str, Any]]:
                response = await http.get(
                    f"{fleet.url('notifier')}/ops/replies/held", headers=as_reviewer
                )
                return {r["key"]: r for r in response.json()}

            async def case_of(kind: str) -> str:
                appeals = w.of(APPEALS.name, lambda a: a.reply_to.post_id == posts[kind]["id"])
                return appeals[0].case_id if appeals else ""

            cases = {
                kind: await until(f"the {kind} case", lambda k=kind: case_of(k)) for kind in posts
            }
            acks = {kind: f"{case}:acknowledgment:0" for kind, case in cases.items()}

            # The plain appeal is answered at once; the others wait, and say so.
            assert await until("the plain appeal's answer", lambda: replies_to("plain"))
            waiting = await until(
                "both acknowledgments held",
                lambda: held_keys(held, {acks["minors"], acks["urgent"]}),
            )
            assert "minors" in waiting[acks["minors"]]["reason"]
            assert "urgent" in waiting[acks["urgent"]]["reason"]
            tracker = fleet.url("tracker")
            for kind in ("minors", "urgent"):
                doc = await wait_for_case(
                    http, tracker, cases[kind], has_event("reply.held"), what="held",
                    token=reviewer,
                )  # fmt: skip
                assert not doc["acknowledged"]
                assert await replies_to(kind) == [], f"the {kind} reply went out while held"

            # A reviewer approves each acknowledgment: posted once, and only once.
            for kind in ("minors", "urgent"):
                url = f"{fleet.url('notifier')}/ops/replies/{acks[kind]}/approve"
                decided = await http.post(url, json={"note": "ok"}, headers=as_reviewer)
                assert decided.status_code == 200, decided.text
                assert decided.json()["status"] == "sent"
                again = await http.post(url, json={}, headers=as_reviewer)
                assert again.status_code == 409, again.text
            for kind in ("minors", "urgent"):
                doc = await wait_for_case(
                    http, tracker, cases[kind], lambda d: d["acknowledged"], what="acknowledged",
                    token=reviewer,
                )  # fmt: skip
                events = [e["event"] for e in doc["timeline"]]
                assert events.index("reply.held") < events.index("case.acknowledged")
            await asyncio.sleep(2)  # time for a second post, had there been one
            for kind in ("minors", "urgent"):
                # The dispatch notice is held too, and not approved: one reply on the platform.
                assert len(await replies_to(kind)) == 1, await replies_to(kind)


async def held_keys(held: Callable[[], Any], keys: set[str]) -> dict[str, dict[str, Any]] | None:
    found: dict[str, dict[str, Any]] = await held()
    return found if keys <= found.keys() else None


def has_event(event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda doc: any(e["event"] == event for e in doc.get("timeline", ()))
