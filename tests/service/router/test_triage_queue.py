"""The triage queue: what the router queues for a person, and the dispatchers' API over HTTP,
with the router's subscribers on the in-memory broker (so a correction is carried out as the
router reads its own reassignment back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.contracts import (
    APPEALS,
    DISPATCH_ORDERS,
    LANES,
    UNIT_ACTIONS,
    DispatchOrdered,
    UnitActed,
    Urgency,
)
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router import handlers
from fengqiao.services.router.adapters.records import InMemoryRecordStore
from fengqiao.services.router.adapters.triage_queue import InMemoryTriageQueue
from fengqiao.services.router.app import build_router
from fengqiao.services.router.domain import Router
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.router.triage_api import triage_router
from fengqiao.testing.factories import appeal_message, triage_message

DISPATCHERS = {
    "li.wei": ("xj", "token-region-li-wei-0001"),
    "ma.lan": ("652700", "token-bozhou-ma-lan-0001"),  # 博州: sees 博乐市, not 喀什
}


@pytest.fixture(scope="module")
def router() -> Router:
    return build_router(RouterSettings())


@dataclass
class Desk:
    http: httpx.AsyncClient
    broker: Any
    queue: InMemoryTriageQueue
    orders: list[DispatchOrdered]
    actions: list[UnitActed]

    async def call(self, method: str, path: str, who: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {DISPATCHERS[who][1]}"} if who else {}
        return await self.http.request(method, path, headers=headers, **kw)

    async def post(self, appeal: Any) -> None:
        await self.broker.publish(appeal, APPEALS.name, key=appeal.case_id.encode())


@pytest.fixture
async def desk(router: Router) -> AsyncIterator[Desk]:
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    queue = InMemoryTriageQueue()
    dispatch = handlers.register(
        runtime.broker,
        router,
        producer="router",
        group_id="router",
        registry=runtime.registry,
        store=InMemoryRecordStore(),
        queue=queue,
    )
    orders: list[DispatchOrdered] = []
    actions: list[UnitActed] = []

    @runtime.broker.subscriber(DISPATCH_ORDERS.name, group_id="probe-o")
    @runtime.broker.subscriber(LANES[DISPATCH_ORDERS.name].name, group_id="probe-o")
    async def on_order(order: DispatchOrdered) -> None:
        orders.append(order)

    @runtime.broker.subscriber(UNIT_ACTIONS.name, group_id="probe-a")
    async def on_action(action: UnitActed) -> None:
        actions.append(action)

    people = {
        t: Identity(f"local:{p}", p, u, frozenset({Role.DISPATCHER}), "token")
        for p, (u, t) in DISPATCHERS.items()
    }
    caller = Guard("router", [FixedTokens(people)]).caller
    app = FastAPI()
    app.include_router(
        triage_router(runtime.broker, queue, router, caller, dispatch, producer="router")
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as http:
            yield Desk(http, broker, queue, orders, actions)


def possibly_urgent(case: str = "c-1", text: str = "博乐市的工地，老板欠钱，我在楼顶上") -> Any:
    triage = triage_message("wage_arrears", urgent=True, review=("possibly_urgent",))
    return appeal_message(text, case_id=case, event_id=f"appeal-{case}", triage=triage)


# --------------------------------------------------------------------------- what is queued


async def test_a_possibly_urgent_appeal_opens_its_case_at_once_and_is_queued(desk: Desk) -> None:
    await desk.post(possibly_urgent())
    assert [o.to_unit for o in desk.orders] == ["652700", "652701"]
    assert {o.urgency for o in desk.orders} == {Urgency.URGENT}
    [item] = await desk.queue.pending(limit=10, offset=0, review=None)
    assert (item.case_id, item.review, item.opened_at_unit) == (
        "c-1",
        ("possibly_urgent",),
        "652701",
    )


async def test_a_sure_appeal_is_not_queued(desk: Desk) -> None:
    await desk.post(appeal_message("博乐市的工地拖欠工资", case_id="c-2", event_id="appeal-c-2"))
    assert desk.orders and await desk.queue.pending(limit=10, offset=0, review=None) == []


async def test_an_uncertain_non_appeal_is_queued_without_a_case(desk: Desk) -> None:
    triage = triage_message("wage_arrears", review=("uncertain_appeal",))
    await desk.post(appeal_message("工资的事", is_appeal=False, triage=triage))
    assert desk.orders == []
    [item] = await desk.queue.pending(limit=10, offset=0, review=None)
    assert not item.dispatched and item.category == "not_appeal"


async def test_a_possibly_urgent_follow_up_is_queued_where_its_case_is(desk: Desk) -> None:
    await desk.post(appeal_message("博乐市的工地拖欠工资", case_id="c-1", event_id="first"))
    dispatched = len(desk.orders)
    follow = possibly_urgent(text="还是没人来，他又在门口了").model_copy(
        update={"follow_up_of": "c-1", "event_id": "f-1"}
    )
    await desk.post(follow)
    assert len(desk.orders) == dispatched  # the case is not dispatched again
    [item] = await desk.queue.pending(limit=10, offset=0, review=None)
    assert (item.id, item.opened_at_unit, item.suggested_unit) == ("f-1", "652701", "652701")


async def test_a_re_delivered_appeal_is_queued_once(desk: Desk) -> None:
    await desk.post(possibly_urgent())
    await desk.post(possibly_urgent())
    assert len(await desk.queue.pending(limit=10, offset=0, review=None)) == 1


# --------------------------------------------------------------------------- who may look


@pytest.mark.parametrize("path", ["/triage/me", "/triage/queue", "/triage/queue/appeal-c-1"])
async def test_every_route_needs_a_dispatchers_token(desk: Desk, path: str) -> None:
    assert (await desk.call("GET", path, None)).status_code == 401
    forged = await desk.http.get(path, headers={"Authorization": "Bearer not-a-token-at-all"})
    assert forged.status_code == 401


async def test_a_dispatcher_sees_only_their_subtree(desk: Desk) -> None:
    await desk.post(possibly_urgent())  # 博乐市
    kashgar = possibly_urgent("c-9", "伽师县的工地老板欠钱，我在楼顶上")
    await desk.post(kashgar)
    region = (await desk.call("GET", "/triage/queue", "li.wei")).json()["items"]
    bozhou = (await desk.call("GET", "/triage/queue", "ma.lan")).json()["items"]
    assert {i["case_id"] for i in region} == {"c-1", "c-9"}
    assert [i["case_id"] for i in bozhou] == ["c-1"]
    assert (await desk.call("GET", "/triage/queue/appeal-c-9", "ma.lan")).status_code == 404
    assert (await desk.call("GET", "/triage/me", "ma.lan")).json() == {
        "person": "local:ma.lan",
        "unit_id": "652700",
    }


# --------------------------------------------------------------------------- rulings


async def test_a_confirmation_is_a_labelled_example_and_the_first_ruling_wins(desk: Desk) -> None:
    await desk.post(possibly_urgent())
    first = await desk.call("POST", "/triage/queue/appeal-c-1/confirm", "ma.lan", json={})
    assert first.status_code == 200
    ruling = first.json()["ruling"]
    assert (ruling["action"], ruling["person"], ruling["unit"]) == (
        "confirm",
        "local:ma.lan",
        "652700",
    )
    assert first.json()["published"] == []  # nothing changes
    again = await desk.call("POST", "/triage/queue/appeal-c-1/confirm", "li.wei", json={})
    assert again.status_code == 409
    assert again.json()["detail"]["ruling"]["person"] == "local:ma.lan"
    assert await desk.queue.pending(limit=10, offset=0, review=None) == []
    [example] = await desk.queue.corrections()
    assert (example["urgent"], example["category"], example["person"]) == (
        True,
        "wage_arrears",
        "local:ma.lan",
    )


async def test_a_correction_relabels_the_case_through_a_reassignment(desk: Desk) -> None:
    await desk.post(possibly_urgent())
    body = {"urgent": False, "category": "personal_injury", "note": "不急，电话138 1234 5678"}
    response = await desk.call("POST", "/triage/queue/appeal-c-1/correct", "li.wei", json=body)
    assert response.status_code == 200, response.text
    [action] = [a for a in desk.actions if a.action.value == "reassign"]
    assert (action.unit_id, action.target_unit, action.category) == (
        "xj",
        "652701",
        "personal_injury",
    )
    assert action.person == "local:li.wei"  # who ruled, on unit.actions and the timeline
    assert action.urgency is Urgency.GENERAL
    assert action.note is not None and "13812345678" not in action.note.replace(" ", "")
    redispatched = [o for o in desk.orders if o.round == 2]
    assert redispatched and {o.category for o in redispatched} == {"personal_injury"}
    assert {o.urgency for o in redispatched} == {Urgency.GENERAL}


async def test_a_post_ruled_an_appeal_is_dispatched_at_once(desk: Desk) -> None:
    triage = triage_message("wage_arrears", review=("uncertain_appeal",))
    await desk.post(appeal_message("博乐市，工资的事", is_appeal=False, triage=triage))
    body = {"is_appeal": True, "category": "wage_arrears"}
    response = await desk.call("POST", "/triage/queue/appeal-1/correct", "li.wei", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["dispatched"]
    assert [o.to_unit for o in desk.orders] == ["652700", "652701"]


async def test_a_confirmed_suggested_link_merges_the_case(desk: Desk) -> None:
    triage = triage_message("wage_arrears", suggested_case="c-0", suggested_reason="similar")
    await desk.post(appeal_message("博乐市的工地又欠钱", triage=triage))
    response = await desk.call(
        "POST", "/triage/queue/appeal-1/correct", "li.wei", json={"link": "confirm"}
    )
    assert response.status_code == 200, response.text
    [merge] = [a for a in desk.actions if a.action.value == "merge"]
    assert (merge.case_id, merge.into_case_id) == ("c-1", "c-0")


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        ("li.wei", {"category": "gardening"}, 422),
        ("li.wei", {"unit": "nowhere"}, 422),
        ("ma.lan", {"unit": "653129"}, 403),  # 伽师县 is outside 博州
        ("li.wei", {"link": "confirm"}, 422),  # nothing suggested
        ("li.wei", {"urgent": False, "by": "someone-else"}, 422),  # who acts is the token's
    ],
)
async def test_a_bad_correction_is_refused_and_changes_nothing(
    desk: Desk, who: str, body: dict[str, Any], status: int
) -> None:
    await desk.post(possibly_urgent())
    response = await desk.call("POST", "/triage/queue/appeal-c-1/correct", who, json=body)
    assert response.status_code == status, response.text
    assert await desk.queue.ruling("appeal-c-1") is None
    assert desk.actions == []


async def test_the_units_to_route_to_are_the_dispatchers_subtree(desk: Desk) -> None:
    units = (await desk.call("GET", "/triage/units", "ma.lan")).json()
    ids = {u["id"] for u in units}
    assert {"652700", "652701", "652702"} <= ids and "653129" not in ids and "xj" not in ids
    assert all(u["name"] for u in units)
    assert (await desk.call("GET", "/triage/units", None)).status_code == 401


async def test_an_item_says_why_an_earlier_case_is_suggested(desk: Desk) -> None:
    triage = triage_message("wage_arrears", suggested_case="c-0", suggested_reason="similar")
    await desk.post(appeal_message("博乐市的工地又欠钱", triage=triage))
    item = (await desk.call("GET", "/triage/queue/appeal-1", "li.wei")).json()
    assert (item["suggested_case"], item["suggested_reason"]) == ("c-0", "similar")


async def test_an_item_carries_the_places_evidence(desk: Desk) -> None:
    await desk.post(possibly_urgent())
    item = (await desk.call("GET", "/triage/queue/appeal-c-1", "li.wei")).json()
    assert {"kind": "text_place", "unit_id": "652701"}.items() <= item["evidence"][0].items()
