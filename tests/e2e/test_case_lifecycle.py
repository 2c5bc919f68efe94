"""The article's five cases through all four services and the simulator, with time limits of
seconds: signed, worked on, resolved and called back (satisfied); returned and re-dispatched
(终审); resolved, called back and reopened (dissatisfied); never signed, chased and escalated up
the tiers (纵督促); urgent and signed in time. Then the statistics count them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fengqiao import processes
from fengqiao.auth.seed import person_token
from fengqiao.contracts import APPEALS, CASE_EVENTS, SUPERVISION_ORDERS
from fengqiao.demo import (
    asked_back,
    demo_env,
    feed_and_watch,
    load_posts,
    post_as_citizen,
    unit_acts,
    wait_for_case,
)
from fengqiao.testing import StackEndpoints
from fengqiao.watch import TopicWatcher

SECRET = "e2e-" + uuid.uuid4().hex
LONG = {"signing": "300 seconds", "first_progress": "300 seconds", "feedback": "600 seconds"}
# Per category (the article's cases differ in category): which clocks run out during the test.
TIME_LIMITS = {
    "defaults": {
        "acknowledgment": "300 seconds",
        **LONG,
        "callback_ask": "1 seconds",
        "callback_answer": "300 seconds",
        "escalation_grace": "2 seconds",
        "notify_off_hours": True,
    },
    "classes": dict.fromkeys(("urgent", "timely", "general", "complex"), LONG),
    "categories": {
        # 皮山: nobody signs and nobody resolves: chased and escalated within seconds.
        "public_interest": {
            "defaults": {"signing": "2 seconds", "feedback": "5 seconds"},
            "classes": {"general": {"signing": "2 seconds", "feedback": "5 seconds"}},
        },
    },
}
UNITS = ["652701", "650109", "650100", "653129", "653100", "654002", "653223"]
TOKENS: dict[str, str] = {}  # unit (or "region") → an API token of a person there


def people(mongo_uri: str) -> None:
    """A handler and lead of each office, and an auditor of the region (local accounts)."""
    run = uuid.uuid4().hex[:6]
    for unit in UNITS:
        TOKENS[unit] = person_token(mongo_uri, f"e2e-{unit}-{run}", name=f"办案人{unit}",
                                    unit_id=unit, roles=["handler", "unit_lead"])  # fmt: skip
    TOKENS["region"] = person_token(mongo_uri, f"e2e-region-{run}", name="区院",
                                    unit_id="xj", roles=["auditor"])  # fmt: skip


class Scenario:
    def __init__(self, http: httpx.AsyncClient, fleet: processes.Fleet):
        self.http, self.fleet = http, fleet

    async def act(self, unit: str, case_id: str, action: str, body: Any = None) -> None:
        await unit_acts(self.http, self.fleet.url("tracker"), TOKENS[unit], case_id, action, body)

    async def case(
        self, case_id: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        tracker = self.fleet.url("tracker")
        return await wait_for_case(
            self.http, tracker, case_id, until, what=what, token=TOKENS["region"]
        )

    async def say(self, post: dict[str, Any], text: str) -> None:
        await post_as_citizen(self.http, self.fleet.url("intake"), post, text, secret=SECRET)


def state_is(*states: str) -> Callable[[dict[str, Any]], bool]:
    return lambda doc: doc["state"] in states


async def test_five_article_cases_live_their_whole_lives(
    stack_endpoints: StackEndpoints, tmp_path: Path
) -> None:
    posts = {p["id"].split("-")[1]: p for p in load_posts(uuid.uuid4().hex[:6])}
    ports = processes.free_ports()
    env = {
        **stack_endpoints.env(),
        **demo_env(SECRET, ports["simulator"]),
        "FENGQIAO_TRACKER_TIME_LIMITS": json.dumps(TIME_LIMITS),
        "FENGQIAO_TRACKER_SWEEP_INTERVAL_SECONDS": "0.3",
    }
    people(stack_endpoints.mongo_uri)
    since_ms = int(time.time() * 1000) - 1000
    with processes.running(env, log_dir=tmp_path / "logs", ports=ports) as fleet:
        async with TopicWatcher(
            stack_endpoints.kafka_bootstrap,
            [APPEALS.name, CASE_EVENTS.name, SUPERVISION_ORDERS.name],
            since_ms=since_ms,
        ) as watcher:
            fed = await feed_and_watch(
                stack_endpoints.kafka_bootstrap,
                fleet.url("intake"),
                list(posts.values()),
                secret=SECRET,
                timeout=90,
            )
            case_of = {
                n: next(a.case_id for a in fed.of(APPEALS.name) if a.reply_to.post_id == p["id"])
                for n, p in posts.items()
            }
            async with httpx.AsyncClient(timeout=10) as http:
                s = Scenario(http, fleet)
                for n in case_of:
                    await s.case(
                        case_of[n], lambda d: d.get("assigned_unit") is not None, "dispatched"
                    )

                # 1 博乐: signed, progress, resolved (¥100,000 of judicial aid), satisfied.
                one = case_of["1"]
                await s.act("652701", one, "accept")
                await s.act("652701", one, "progress", {"note": "经审查符合司法救助条件"})
                await s.act(
                    "652701",
                    one,
                    "resolve",
                    {"outcome": "会同法院发放司法救助金", "amount_recovered": 100000},
                )
                await s.case(one, asked_back, "asked back")
                await s.say(posts["1"], "满意，谢谢检察官")
                doc = await s.case(one, state_is("closed"), "closed")
                assert doc["satisfaction"] == "satisfied" and doc["signed_in_time"] is True

                # 2 米东: returned (not ours); the prefecture rules and the case goes on.
                two = case_of["2"]
                await s.act("650109", two, "return", {"reason_code": "not_our_jurisdiction"})
                doc = await s.case(
                    two,
                    lambda d: d["returns"] == 1 and any(h["round"] == 2 for h in d["hops"]),
                    "re-dispatched",
                )
                assert doc["state"] == "dispatched"

                # 3 伽师 (urgent): resolved, called back, dissatisfied → reopened, escalated.
                three = case_of["3"]
                await s.act("653129", three, "accept")
                await s.act("653129", three, "resolve", {"outcome": "药品已送达"})
                await s.case(three, asked_back, "asked back")
                await s.say(posts["3"], "不满意")
                doc = await s.case(three, state_is("reopened"), "reopened")
                assert doc["reopened"] == 1 and doc["escalation_level"] >= 1

                # 4 皮山: never signed, never resolved: supervised up to the region.
                four = case_of["4"]
                doc = await s.case(
                    four, lambda d: d["escalation_level"] >= 2 and d["overdue"], "escalated twice"
                )
                events = [e["event"] for e in doc["timeline"]]
                assert "case.signing_overdue" in events and "case.chased" in events

                # 5 伊宁 (urgent, a suicide threat): signed at once.
                five = case_of["5"]
                await s.act("654002", five, "accept")
                doc = await s.case(five, state_is("accepted"), "signed")
                assert doc["urgency"] == "urgent" and doc["signed_in_time"] is True

                region = {"Authorization": f"Bearer {TOKENS['region']}"}
                stats = (await http.get(f"{fleet.url('tracker')}/ops/stats", headers=region)).json()

        orders = watcher.of(SUPERVISION_ORDERS.name, lambda o: o.case_id == four)
        assert {(o.from_unit, o.to_unit, o.level) for o in orders} >= {
            ("653200", "653223", 1),
            ("xj", "653223", 2),
        }
        reopened = watcher.of(SUPERVISION_ORDERS.name, lambda o: o.case_id == three)
        assert [(o.from_unit, o.to_unit) for o in reopened] == [("653100", "653129")]
        mine = [e for e in watcher.of(CASE_EVENTS.name) if e.case_id in set(case_of.values())]
        assert len({e.event_id for e in mine}) == len(mine)  # each change announced once

    assert stats["total"]["volume"] >= 5
    units = {row["unit"]: row for row in stats["units"]}
    assert units["652701"]["amount_recovered"] >= 100000
    assert units["652701"]["satisfaction_rate"] == 1.0
