"""A unit lead rules on a return (issue 19: "unit_lead: ... rules on returns in the subtree"):
when 博乐市 (652701) returns a case and the 终审 keeps it with 博州 (652700), 博州's lead sends it
on to a unit below 博州 through the router's reassign, checked against the case's routing record:
another target or another unit is refused (403, or 404 for a unit that may not see the case),
and a dispatcher's reassignment is as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.contracts import UNIT_ACTIONS, UnitActed, UnitActionKind
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router.adapters.records import InMemoryRecordStore
from fengqiao.services.router.directory import load_directory
from fengqiao.services.router.http import ops_router
from fengqiao.services.router.returns import load_return_rules, record_dispatch, rule_on
from fengqiao.testing.factories import final_hop_message

KEPT, HELD = "c-00000000000000k1", "c-00000000000000h1"  # returned and kept; never returned
DIRECTORY = load_directory()
L, D, H = Role.UNIT_LEAD, Role.DISPATCHER, Role.HANDLER


def person(token: str, unit: str, *roles: Role) -> tuple[str, Identity]:
    return token, Identity(f"local:{token}", token, unit, frozenset(roles), "token")


PEOPLE = dict(
    [
        person("bozhou-lead", "652700", L),
        person("bozhou-handler", "652700", H),
        person("bozhou-dispatcher", "652700", D),
        person("region-lead", "xj", L),
        person("urumqi-lead", "650100", L),
        person("bole-lead", "652701", L),
    ]
)


@dataclass
class World:
    http: httpx.AsyncClient
    actions: list[UnitActed]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = InMemoryRecordStore()
    for case_id in (KEPT, HELD):
        final = final_hop_message(case_id=case_id)
        await store.save(record_dispatch([final], f"order-{case_id}"), [final])
    returned = UnitActed(
        occurred_at=datetime.now(UTC), producer="tracker", case_id=KEPT, unit_id="652701",
        action=UnitActionKind.RETURN, reason_code="outside_remit",
    )  # fmt: skip
    record = await store.get(KEPT)
    assert record is not None
    kept, orders = rule_on(record, returned, DIRECTORY, load_return_rules(), producer="router")
    assert kept.holder == "652700"  # 终审: 博州 keeps it
    await store.save(kept, orders)
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    guard = Guard("router", [FixedTokens(PEOPLE)])
    router = ops_router(runtime.broker, store, DIRECTORY, producer="router", caller=guard.caller)
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    actions: list[UnitActed] = []

    @runtime.broker.subscriber(UNIT_ACTIONS.name, group_id="probe")
    async def seen(action: UnitActed) -> None:
        actions.append(action)

    async with TestKafkaBroker(runtime.broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as http:
            yield World(http, actions)


async def reassign(world: World, who: str, case_id: str, to_unit: str) -> httpx.Response:
    body: dict[str, Any] = {"to_unit": to_unit, "note": "改由精河县院办理"}
    return await world.http.post(
        f"/ops/cases/{case_id}/reassign", json=body, headers={"Authorization": f"Bearer {who}"}
    )


async def test_the_lead_of_the_unit_that_kept_a_return_sends_it_below(world: World) -> None:
    done = await reassign(world, "bozhou-lead", KEPT, "652702")
    assert done.status_code == 202, done.text
    [action] = world.actions
    assert (action.action, action.case_id, action.target_unit) == (
        UnitActionKind.REASSIGN, KEPT, "652702",
    )  # fmt: skip
    assert (action.unit_id, action.person) == ("652700", "local:bozhou-lead")


@pytest.mark.parametrize(
    ("who", "case_id", "to_unit", "status"),
    [
        ("bozhou-lead", KEPT, "650109", 403),  # outside 博州's subtree
        ("bozhou-lead", KEPT, "652700", 403),  # to itself: that is keeping it, not a ruling
        ("bozhou-lead", HELD, "652702", 403),  # 博乐市 holds it, nothing was returned
        ("region-lead", KEPT, "652702", 403),  # above the holder, but no dispatcher
        ("bole-lead", KEPT, "652702", 404),  # returned it: no longer on the case
        ("urumqi-lead", KEPT, "650109", 404),  # another prefecture's case
        ("bozhou-handler", KEPT, "652702", 403),  # the route is for leads and dispatchers
        ("bozhou-lead", KEPT, "999999", 422),  # no such unit
    ],
)
async def test_other_rulings_are_refused(
    world: World, who: str, case_id: str, to_unit: str, status: int
) -> None:
    refused = await reassign(world, who, case_id, to_unit)
    assert refused.status_code == status, refused.text
    assert world.actions == []


async def test_a_dispatcher_above_the_holder_reassigns_as_before(world: World) -> None:
    done = await reassign(world, "bozhou-dispatcher", HELD, "652702")
    assert done.status_code == 202, done.text
    assert [a.unit_id for a in world.actions] == ["652700"]
