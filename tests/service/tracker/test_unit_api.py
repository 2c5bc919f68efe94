"""The unit API over HTTP, with the tracker's subscribers on the in-memory broker: tokens, what
each unit may see and do, and actions that go through `unit.actions` before they change a case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS, UNIT_ACTIONS, Envelope, UnitActed
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain, handlers
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers
from fengqiao.services.tracker.api import unit_router
from fengqiao.services.tracker.app import ops_router
from fengqiao.services.tracker.sweep import Tracker
from fengqiao.testing.factories import appeal_message, dispatch_message

CASE = "c-api-1"
TOKENS = {
    "xj": "token-region",
    "652700": "token-bozhou",
    "652701": "token-bole",
    "652702": "token-jinghe",  # a sibling of 652701
    "650100": "token-urumqi",  # another prefecture
}
# Dispatchers (merge), by unit: the region's, and another prefecture's.
DISPATCHERS = {"xj": "token-dispatcher-xj", "650100": "token-dispatcher-urumqi"}


def guard() -> Guard:
    """Each unit token a person of that unit (handler and lead); each dispatcher's one."""
    people = {
        token: Identity(
            f"local:{unit}", unit, unit, frozenset({Role.HANDLER, Role.UNIT_LEAD}), "token"
        )
        for unit, token in TOKENS.items()
    } | {
        token: Identity(f"local:d-{unit}", unit, unit, frozenset({Role.DISPATCHER}), "token")
        for unit, token in DISPATCHERS.items()
    }
    return Guard("tracker", [FixedTokens(people)])


@dataclass
class Api:
    http: httpx.AsyncClient
    repo: InMemoryCaseRepository
    actions: list[UnitActed]
    broker: Any
    tracker: Tracker

    async def call(self, method: str, path: str, unit: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKENS[unit]}"} if unit else {}
        return await self.http.request(method, path, headers=headers, **kw)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo, indexes = InMemoryCaseRepository(), InMemoryIndexes()
    tracker = handlers.register(
        runtime.broker,
        repo,
        indexes=indexes,
        timers=InMemoryTimers(),
        rules=domain.Rules.default(),
        group_id="tracker",
        registry=runtime.registry,
    )
    actions: list[UnitActed] = []

    @runtime.broker.subscriber(UNIT_ACTIONS.name, group_id="probe")
    async def on_action(action: UnitActed) -> None:
        actions.append(action)

    app = FastAPI()
    caller = guard().caller
    app.include_router(unit_router(runtime.broker, repo, indexes, caller, producer="tracker"))
    app.include_router(ops_router(repo, runtime.broker, caller))
    async with TestKafkaBroker(runtime.broker) as broker:
        now = utcnow()
        messages: list[tuple[str, Envelope]] = [
            (
                APPEALS.name,
                appeal_message(
                    "博乐市拖欠工资 13812345678",
                    masked_text="博乐市拖欠工资 138****5678",
                    case_id=CASE,
                    occurred_at=now,
                ),
            ),
        ]
        for hop, src, dst in ((1, "xj", "652700"), (2, "652700", "652701")):
            order = dispatch_message(
                event_id=f"order-{hop}",
                case_id=CASE,
                hop=hop,
                from_unit=src,
                to_unit=dst,
                to_tier="prefecture" if hop == 1 else "county",
                final=hop == 2,
                occurred_at=now + timedelta(seconds=hop),
            )
            messages.append((DISPATCH_ORDERS.name, order))
        for topic, message in messages:
            await broker.publish(message, topic, key=message.kafka_key().encode())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as http:
            yield Api(http, repo, actions, broker, tracker)


async def test_a_call_without_a_known_token_is_refused(api: Api) -> None:
    assert (await api.call("GET", "/units/me/cases", None)).status_code == 401
    bad = await api.http.get("/units/me/cases", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    me = (await api.call("GET", "/units/me", "652701")).json()
    assert (me["unit_id"], me["person"]) == ("652701", "local:652701")


@pytest.mark.parametrize(
    ("unit", "sees"),
    [("652701", True), ("652700", True), ("xj", True), ("652702", False), ("650100", False)],
)
async def test_a_unit_sees_its_own_cases_and_those_below_it_only(
    api: Api, unit: str, sees: bool
) -> None:
    listed = (await api.call("GET", "/units/me/cases", unit)).json()
    assert [c["case_id"] for c in listed] == ([CASE] if sees else [])
    one = await api.call("GET", f"/units/me/cases/{CASE}", unit)
    assert one.status_code == (200 if sees else 404)
    if sees:
        assert "13812345678" not in one.text and "processed" not in one.json()


async def test_a_case_of_a_parent_is_not_visible_to_the_unit_below() -> None:
    case = domain.Case(case_id="c-p", chain=("xj", "652700"), assigned_unit="652700")
    assert case.visible_to("652700") and case.visible_to("xj")
    assert not case.visible_to("652701")


async def test_the_lead_unit_signs_works_and_resolves_through_unit_actions(api: Api) -> None:
    accepted = await api.call("POST", f"/units/me/cases/{CASE}/accept", "652701")
    assert accepted.status_code == 202, accepted.text
    signed = await api.repo.get(CASE)
    assert signed is not None and signed.state.value == "accepted"
    # The unit and the person who acted: the caller's, on unit.actions and on the timeline.
    assert (api.actions[-1].unit_id, api.actions[-1].person) == ("652701", "local:652701")
    assert (signed.timeline[-1].unit_id, signed.timeline[-1].person) == ("652701", "local:652701")
    progress = await api.call(
        "POST",
        f"/units/me/cases/{CASE}/progress",
        "652701",
        json={"note": "已联系用人单位，电话13812345678"},
    )
    assert progress.status_code == 202
    resolved = await api.call(
        "POST",
        f"/units/me/cases/{CASE}/resolve",
        "652701",
        json={"outcome": "工资已全部发放", "amount_recovered": 12000},
    )
    assert resolved.status_code == 202
    case = await api.repo.get(CASE)
    assert case is not None and case.state.value == "resolved" and case.amount_recovered == 12000
    assert [a.action.value for a in api.actions] == ["accept", "progress", "resolve"]
    assert "13812345678" not in (api.actions[1].note or "")  # masked before publishing


@pytest.mark.parametrize("unit", ["652702", "650100"])
async def test_a_sibling_or_stranger_cannot_act(api: Api, unit: str) -> None:
    response = await api.call("POST", f"/units/me/cases/{CASE}/accept", unit)
    assert response.status_code == 404
    assert api.actions == []


async def test_the_parent_cannot_sign_for_its_child(api: Api) -> None:
    response = await api.call("POST", f"/units/me/cases/{CASE}/accept", "652700")
    assert response.status_code == 403 and "led by 652701" in response.json()["detail"]


async def test_an_action_the_state_does_not_allow_is_a_conflict(api: Api) -> None:
    response = await api.call(
        "POST", f"/units/me/cases/{CASE}/resolve", "652701", json={"outcome": "x"}
    )
    assert response.status_code == 409
    assert response.json()["detail"] == f"case {CASE}: cannot resolve in state dispatched"


async def test_extension_asked_by_the_unit_and_approved_by_the_parent(api: Api) -> None:
    await api.call("POST", f"/units/me/cases/{CASE}/accept", "652701")
    case = await api.repo.get(CASE)
    assert case is not None and case.deadline
    later = (datetime.fromisoformat(case.deadline) + timedelta(days=3)).isoformat()
    asked = await api.call(
        "POST",
        f"/units/me/cases/{CASE}/extension",
        "652701",
        json={"requested_deadline": later, "note": "需要调查取证"},
    )
    assert asked.status_code == 202
    own = await api.call("POST", f"/units/me/cases/{CASE}/extension/approve", "652701")
    assert own.status_code == 403
    approved = await api.call("POST", f"/units/me/cases/{CASE}/extension/approve", "652700")
    assert approved.status_code == 202
    case = await api.repo.get(CASE)
    assert case is not None and case.state.value == "extended" and case.deadline == later


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("progress", {}),
        ("progress", {"note": ""}),
        ("resolve", {"outcome": "x" * 2001}),
        ("resolve", {"outcome": "ok", "amount_recovered": -1}),
        ("return", {"note": "no reason code"}),
        ("extension", {"requested_deadline": "2026-12-01T10:00:00"}),  # no time zone
        ("notes", {"note": "x", "extra": 1}),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    response = await api.call("POST", f"/units/me/cases/{CASE}/{path}", "652701", json=body)
    assert response.status_code == 422
    assert api.actions == []


async def test_the_citizens_answer_to_the_callback_closes_the_case(api: Api) -> None:
    await api.call("POST", f"/units/me/cases/{CASE}/accept", "652701")
    await api.call("POST", f"/units/me/cases/{CASE}/resolve", "652701", json={"outcome": "已发放"})
    assert await api.tracker.sweep(utcnow() + timedelta(days=5)) >= 1  # the callback question
    case = await api.repo.get(CASE)
    assert case is not None and case.state.value == "callback_pending"
    reply = appeal_message("满意", event_id="answer-1", case_id="c-answer", is_appeal=False)
    await api.broker.publish(reply, APPEALS.name, key=b"c-answer")
    case = await api.repo.get(CASE)
    assert case is not None and case.state.value == "closed" and case.satisfaction == "satisfied"
    assert await api.repo.get("c-answer") is None


async def test_the_gauges_count_pending_timers_and_overdue_cases(api: Api) -> None:
    gauge = api.tracker.registry.get_sample_value
    await api.tracker.refresh_gauges()
    assert gauge("fengqiao_tracker_overdue_cases") == 0
    assert (gauge("fengqiao_tracker_pending_timers") or 0) >= 2  # ack, sign, feedback
    later = utcnow() + timedelta(days=30)
    for _ in range(6):  # reminders, then the deadline: one step per sweep
        await api.tracker.sweep(later)
    await api.tracker.refresh_gauges()
    assert gauge("fengqiao_tracker_overdue_cases") == 1
    listed = (await api.call("GET", "/units/me/cases?overdue=true", "652700")).json()
    assert [c["case_id"] for c in listed] == [CASE]


# --------------------------------------------------------------------------- operators: merging


async def open_second_case(api: Api, case_id: str = "c-api-2") -> str:
    appeal = appeal_message("博乐市拖欠工资，再次反映", case_id=case_id, occurred_at=utcnow())
    await api.broker.publish(appeal, APPEALS.name, key=appeal.kafka_key().encode())
    return case_id


def dispatcher(unit: str = "xj") -> dict[str, str]:
    return {"Authorization": f"Bearer {DISPATCHERS[unit]}"}


async def test_an_operator_merges_a_duplicate_into_its_case(api: Api) -> None:
    other = await open_second_case(api)
    response = await api.http.post(
        f"/ops/cases/{other}/merge", json={"into": CASE, "note": "重复诉求"}, headers=dispatcher()
    )
    assert response.status_code == 202, response.text
    merged, kept = await api.repo.get(other), await api.repo.get(CASE)
    assert merged is not None and kept is not None
    assert merged.state.value == "merged"
    assert merged.timeline[-1].detail == f"into {CASE}: 重复诉求"
    assert kept.state.value == "dispatched"  # it goes on
    assert kept.timeline[-1].detail == f"case {other} merged into this one: 重复诉求"
    assert [a.action.value for a in api.actions[-2:]] == ["merge", "note"]
    assert response.json()["action_event_id"] == api.actions[-2].event_id
    # Who merged is the caller: unit and person, on both timelines and in unit.actions.
    assert {(a.unit_id, a.person) for a in api.actions[-2:]} == {("xj", "local:d-xj")}
    assert (merged.timeline[-1].unit_id, merged.timeline[-1].person) == ("xj", "local:d-xj")
    # Merging it again, or into it, is refused naming why.
    again = await api.http.post(
        f"/ops/cases/{other}/merge", json={"into": CASE}, headers=dispatcher()
    )
    assert again.status_code == 409 and "cannot merge in state merged" in again.json()["detail"]
    into_merged = await api.http.post(
        f"/ops/cases/{CASE}/merge", json={"into": other}, headers=dispatcher()
    )
    assert into_merged.status_code == 409 and "is itself merged" in into_merged.json()["detail"]


@pytest.mark.parametrize(
    ("path_case", "body", "by", "status", "says"),
    [
        ("c-missing", {"into": CASE}, "xj", 404, "no case 'c-missing'"),
        (CASE, {"into": "c-missing"}, "xj", 404, "no case 'c-missing'"),
        (CASE, {"into": CASE}, "xj", 403, "merge needs into_case_id, another case"),
        (CASE, {"into": "c-api-2"}, "xj", 409, "c-api-2 is not dispatched yet"),
        # A dispatcher of another prefecture does not see the case: as if it did not exist.
        ("c-api-2", {"into": CASE}, "650100", 404, f"no case '{CASE}' for unit 650100"),
        (CASE, {"into": "c-api-2", "extra": 1}, "xj", 422, "extra"),
        # Who merges is the caller; a unit in the body is refused, not believed.
        (CASE, {"by_unit": "xj", "into": "c-api-2"}, "xj", 422, "by_unit"),
    ],
)
async def test_a_bad_merge_is_refused_and_publishes_nothing(
    api: Api, path_case: str, body: dict[str, Any], by: str, status: int, says: str
) -> None:
    await open_second_case(api)
    before = len(api.actions)
    response = await api.http.post(
        f"/ops/cases/{path_case}/merge", json=body, headers=dispatcher(by)
    )
    assert response.status_code == status
    assert says in response.text
    assert len(api.actions) == before


@pytest.mark.parametrize(("unit", "volume"), [("xj", 1), ("652701", 1), ("652702", 0)])
async def test_the_statistics_count_only_the_callers_subtree(
    api: Api, unit: str, volume: int
) -> None:
    # A lead of a sibling county sees no figure of a case it may not see.
    stats = (await api.call("GET", "/ops/stats", unit)).json()
    assert stats["total"]["volume"] == volume
    assert [row["unit"] for row in stats["units"]] == (["652701"] if volume else [])
