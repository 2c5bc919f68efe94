"""组长裁决 over HTTP: a unit lead's rulings on the case page, through the real tracker (its unit
API, guard and handlers in-process) and the real router's reassign (its routing record in
memory). The lead of 博州 (652700), above 博乐市 (652701) which leads the case, approves or
refuses its extension; the lead of 博乐市 itself is offered no ruling and is refused one; and
once 博乐市 returns the case and the 终审 keeps it with 博州, 博州's lead sends it on below."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import Guard, LocalSessions
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.contracts import DISPATCH_ORDERS, UNIT_ACTIONS, UnitActed
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.testing.workbench import tracker_app
from tests.service.workbench.test_workbench import (
    CASE,
    HTML,
    PASSWORD,
    csrf_of,
    log_in,
    opened_at_652701,
)

PEOPLE = (
    ("wang.li", "652701", ["handler"]),
    ("bole.lead", "652701", ["unit_lead"]),
    ("bozhou.lead", "652700", ["unit_lead"]),
)


@dataclass
class World:
    bench: httpx.AsyncClient
    tracker: httpx.AsyncClient  # the tracker's API as the test, to look behind the pages
    router: Any  # the router's record store
    broker: Any  # the test broker: what the services publish and read
    actions: list[UnitActed]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.http import ops_router

    accounts = Accounts(MemoryAuthStore())
    for username, unit, roles in PEOPLE:
        await accounts.add(username, name=username, unit_id=unit, roles=roles, password=PASSWORD)
    runtime, tracker = tracker_app(accounts)
    records = InMemoryRecordStore()
    router_guard = Guard("router", [LocalSessions(accounts)])
    reassign = ops_router(runtime.broker, records, load_directory(), producer="router",
                          caller=router_guard.caller)  # fmt: skip
    router_runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    router = http_app(router_runtime, description="r", routers=[reassign], guard=router_guard)
    actions: list[UnitActed] = []

    @runtime.broker.subscriber(UNIT_ACTIONS.name, group_id="probe")
    async def seen(action: UnitActed) -> None:
        actions.append(action)

    settings = WorkbenchSettings(tracker_url="http://tracker", router_url="http://router")
    transports = {"tracker": httpx.ASGITransport(tracker), "router": httpx.ASGITransport(router)}
    _, app = build(settings, accounts=accounts, transports=transports)
    async with TestKafkaBroker(runtime.broker) as broker:
        await opened_at_652701(broker)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://w") as w,
            httpx.AsyncClient(transport=transports["tracker"], base_url="http://t") as t,
        ):
            yield World(w, t, records, broker, actions)


async def act(world: World, who: str, action: str, **fields: str) -> httpx.Response:
    """Log `who` in (a fresh session) and post the case page's form `action`."""
    world.bench.cookies.clear()
    await log_in(world.bench, who)
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    data = {"csrf": csrf_of(page), **fields}
    return await world.bench.post(f"/cases/{CASE}/{action}", data=data, headers=HTML)


async def ask_for_an_extension(world: World) -> None:
    assert (await act(world, "wang.li", "accept")).status_code == 303
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    deadline = re.search(r"办理期限: (\d{4}-\d\d-\d\d \d\d:\d\d)", page.text)
    assert deadline is not None, page.text
    until = dt.datetime.fromisoformat(deadline[1]) + dt.timedelta(days=7)
    asked = await act(world, "wang.li", "extension", requested_deadline=until.isoformat())
    assert asked.status_code == 303, asked.text


async def test_the_lead_above_approves_the_extension_from_the_case_page(world: World) -> None:
    await ask_for_an_extension(world)
    world.bench.cookies.clear()
    await log_in(world.bench, "bozhou.lead")
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert 'id="rulings"' in page.text and "批准延期" in page.text and "不予延期" in page.text
    assert 'id="form-reassign"' not in page.text  # nothing was returned
    done = await world.bench.post(
        f"/cases/{CASE}/extension/approve",
        data={"csrf": csrf_of(page), "note": "同意延期"},
        headers=HTML,
    )
    assert done.status_code == 303, done.text
    shown = await world.bench.get(done.headers["location"], headers=HTML)
    assert "已提交：批准延期" in shown.text and 'id="rulings"' not in shown.text
    assert 'data-event="case.extended"' in shown.text and "652700 · local:bozhou.lead" in shown.text


async def test_a_refusal_needs_a_note_and_the_lead_unit_cannot_rule(world: World) -> None:
    await ask_for_an_extension(world)
    empty = await act(world, "bozhou.lead", "extension/refuse", note="")
    assert empty.status_code == 422 and "note is required" in empty.text
    # 博乐市's own lead is not above the lead unit: no ruling offered, and the tracker refuses.
    world.bench.cookies.clear()
    await log_in(world.bench, "bole.lead")
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert 'id="rulings"' not in page.text
    own = await act(world, "bole.lead", "extension/approve", note="自己批准")
    assert own.status_code == 403 and "only a unit above" in own.text
    handler = await act(world, "wang.li", "extension/approve")
    assert handler.status_code == 403  # a handler is no lead (the workbench's policy)
    refused = await act(world, "bozhou.lead", "extension/refuse", note="理由不足")
    assert refused.status_code == 303, refused.text
    shown = await world.bench.get(refused.headers["location"], headers=HTML)
    assert 'data-event="case.extension_refused"' in shown.text and "理由不足" in shown.text


async def test_the_lead_sends_a_kept_return_on_below(world: World) -> None:
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.returns import load_return_rules, record_dispatch, rule_on
    from fengqiao.testing.factories import final_hop_message

    final = final_hop_message(case_id=CASE)
    await world.router.save(record_dispatch([final], "order-2"), [final])
    assert (await act(world, "wang.li", "accept")).status_code == 303
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    returned = await act(world, "wang.li", "return", reason_code="outside_remit")
    assert returned.status_code == 303, returned.text
    # The router's 终审 on that return (its domain; its consumer does not run here): 博州 keeps it.
    [back] = [a for a in world.actions if a.action.value == "return"]
    record = await world.router.get(CASE)
    kept, orders = rule_on(record, back, load_directory(), load_return_rules(), producer="router")
    assert kept.holder == "652700"
    await world.router.save(kept, orders)
    for order in orders:
        await world.broker.publish(order, DISPATCH_ORDERS.name, key=CASE.encode())
    world.bench.cookies.clear()
    await log_in(world.bench, "bozhou.lead")
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert 'id="form-reassign"' in page.text and "改派至下级单位" in page.text, page.text
    csrf = csrf_of(page)
    outside = await world.bench.post(
        f"/cases/{CASE}/reassign", data={"csrf": csrf, "to_unit": "650109"}, headers=HTML
    )
    assert outside.status_code == 403 and "may not move" in outside.text
    done = await world.bench.post(
        f"/cases/{CASE}/reassign",
        data={"csrf": csrf, "to_unit": "652702", "note": "精河县院办理"},
        headers=HTML,
    )
    assert done.status_code == 303, done.text
    [sent_on] = [a for a in world.actions if a.action.value == "reassign"]
    assert (sent_on.unit_id, sent_on.person, sent_on.target_unit) == (
        "652700", "local:bozhou.lead", "652702",
    )  # fmt: skip
    # 博乐市's lead, whose unit returned it, has no such ruling.
    world.bench.cookies.clear()
    await log_in(world.bench, "bole.lead")
    assert 'id="form-reassign"' not in (await world.bench.get(f"/cases/{CASE}", headers=HTML)).text
