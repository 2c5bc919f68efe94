"""督办 and 统计 over HTTP, in front of the real tracker app (in-process: its unit API, its
figures API, its guard; Kafka replaced by FastStream's test broker) and the router's operators'
API (its returns per unit): the pages show the figures of a known set of cases, seeded through
the tracker's own handlers; a unit lead of a sibling unit sees none of another subtree's; a
handler (no figures role) gets the 403 page."""

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
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS, Urgency
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.testing.factories import appeal_message, dispatch_message

PASSWORD = "a long enough password"
HTML = {"accept": "text/html"}
OLD = "c-00000000000000f1"  # received 40 days ago at 652701: overdue, escalated
SOON = "c-00000000000000f2"  # timely, received now at 652701: due within 24 working hours
FRESH = "c-00000000000000f3"  # general, received now at 652701: resolved in the test
SIBLING = "c-00000000000000f4"  # general, received now at 652702 (博乐市's sibling)

HANDLES = {"652701": "@博乐检察", "652702": "@精河检察"}


@dataclass
class World:
    bench: httpx.AsyncClient
    sweep: Any


async def opened(broker: Any, case_id: str, unit: str, at: dt.datetime, urgency: Urgency) -> None:
    appeal = appeal_message("工地拖欠工资", case_id=case_id, occurred_at=at,
                            event_id=f"appeal-{case_id}")  # fmt: skip
    await broker.publish(appeal, APPEALS.name, key=case_id.encode())
    hops = (("xj", "652700", "prefecture", False), ("652700", unit, "county", True))
    for hop, (source, target, tier, final) in enumerate(hops, start=1):
        order = dispatch_message(
            event_id=f"order-{case_id}-{hop}", case_id=case_id, hop=hop, from_unit=source,
            to_unit=target, to_tier=tier, final=final, chain=["xj", "652700", unit],
            lead_unit=unit, urgency=urgency, occurred_at=at + dt.timedelta(seconds=hop),
            to_handle=HANDLES[target] if final else None,
        )  # fmt: skip
        await broker.publish(order, DISPATCH_ORDERS.name, key=case_id.encode())


def tracker_app(accounts: Accounts) -> tuple[Runtime, Any, Any]:
    from fengqiao.services.tracker import domain, handlers
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
    from fengqiao.services.tracker.adapters.timers import InMemoryTimers
    from fengqiao.services.tracker.api import unit_router
    from fengqiao.services.tracker.app import ops_router
    from fengqiao.services.tracker.figures_api import figures_router

    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo, indexes, rules = InMemoryCaseRepository(), InMemoryIndexes(), domain.Rules.default()
    tracker = handlers.register(
        runtime.broker, repo, indexes=indexes, timers=InMemoryTimers(), rules=rules,
        group_id="tracker", registry=runtime.registry,
    )  # fmt: skip
    guard = Guard("tracker", [LocalSessions(accounts)])
    routers = [
        unit_router(runtime.broker, repo, indexes, guard.caller, producer="tracker"),
        ops_router(repo, runtime.broker, guard.caller),
        figures_router(repo, rules.calendar, guard.caller),
    ]
    return runtime, tracker, http_app(runtime, description="t", routers=routers, guard=guard)


async def router_app(accounts: Accounts) -> Any:
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.http import ops_router

    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    store = InMemoryRecordStore()
    await store.count_return("return-1", OLD, "652701", "other")  # the router's own count
    guard = Guard("router", [LocalSessions(accounts)])
    router = ops_router(runtime.broker, store, load_directory(), producer="router",
                        caller=guard.caller)  # fmt: skip
    return http_app(runtime, description="r", routers=[router], guard=guard)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    accounts = Accounts(MemoryAuthStore())
    people = (("li.lead", "652700", "unit_lead"), ("sun.lead", "652702", "unit_lead"),
              ("wang.li", "652701", "handler"), ("ma.audit", "652700", "auditor"))  # fmt: skip
    for username, unit, role in people:
        await accounts.add(username, name=username, unit_id=unit, roles=[role],
                           password=PASSWORD)  # fmt: skip
    runtime, tracker, app = tracker_app(accounts)
    transports = {"tracker": httpx.ASGITransport(app),
                  "router": httpx.ASGITransport(await router_app(accounts))}  # fmt: skip
    settings = WorkbenchSettings(tracker_url="http://tracker", router_url="http://router")
    _, bench = build(settings, accounts=accounts, transports=transports)
    now = utcnow()
    async with TestKafkaBroker(runtime.broker) as broker:
        await opened(broker, OLD, "652701", now - dt.timedelta(days=40), Urgency.GENERAL)
        for case_id, unit, urgency in ((SOON, "652701", Urgency.TIMELY),
                                       (FRESH, "652701", Urgency.GENERAL),
                                       (SIBLING, "652702", Urgency.GENERAL)):  # fmt: skip
            await opened(broker, case_id, unit, now, urgency)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=bench), base_url="http://w"
        ) as http:
            yield World(http, tracker.sweep)


async def log_in(http: httpx.AsyncClient, username: str) -> None:
    http.cookies.clear()
    page = await http.get("/login", headers=HTML)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf[1], "username": username, "password": PASSWORD, "next": "/"}
    assert (await http.post("/login", data=form, headers=HTML)).status_code == 303


def figure(html: str, name: str, unit: str | None = None) -> str:
    """The figure `name` of the page's total (or of `unit`'s row)."""
    scope = html
    if unit is not None:
        row = re.search(rf'<tr data-unit="{unit}">(.*?)</tr>', html, re.S)
        assert row is not None, f"no row of {unit}"
        scope = row[1]
    found = re.search(rf'data-figure="{name}"[^>]*>(?:<strong[^>]*>)?([^<]*)<', scope)
    assert found is not None, f"no {name}"
    return found[1].strip()


async def resolve_fresh(world: World) -> None:
    await log_in(world.bench, "wang.li")
    page = await world.bench.get(f"/cases/{FRESH}", headers=HTML)
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert csrf is not None
    steps = (("accept", {}), ("resolve", {"outcome": "工资已发放", "amount_recovered": "12000"}))
    for action, fields in steps:
        done = await world.bench.post(f"/cases/{FRESH}/{action}",
                                      data={"csrf": csrf[1], **fields}, headers=HTML)  # fmt: skip
        assert done.status_code == 303 and "state=" in done.headers["location"], action


async def test_supervision_shows_the_subtrees_units_worst_first(world: World) -> None:
    await world.sweep(utcnow())  # the old case's clocks run out: chased, escalated
    await world.sweep(utcnow())
    await log_in(world.bench, "li.lead")
    page = await world.bench.get("/supervise", headers=HTML)
    assert page.status_code == 200, page.text
    assert "督办" in page.text and 'href="/stats"' in page.text
    html = page.text
    assert figure(html, "open") == "4" and figure(html, "overdue") == "1"
    assert figure(html, "soon") == "1" and figure(html, "escalated") == "1"
    assert figure(html, "open", "652701") == "3" and figure(html, "overdue", "652701") == "1"
    assert figure(html, "soon", "652701") == "1"
    assert figure(html, "open", "652702") == "1" and figure(html, "overdue", "652702") == "0"
    assert html.index('data-unit="652701"') < html.index('data-unit="652702"')  # worst first
    # The overdue and soon cases are links; the fresh one (nothing to chase) is not listed.
    assert f'href="/cases/{OLD}"' in html and f'href="/cases/{SOON}"' in html
    assert FRESH not in html
    assert "第 1 级督办（652700）" in html or "第 2 级督办（xj）" in html
    english = await world.bench.get("/supervise?lang=en", headers=HTML)
    assert "Supervision" in english.text and "超期" not in english.text


async def test_statistics_show_the_rates_per_unit_tier_and_month(world: World) -> None:
    await resolve_fresh(world)
    await log_in(world.bench, "ma.audit")
    page = await world.bench.get("/stats", headers=HTML)
    assert page.status_code == 200, page.text
    html = page.text
    # The six months together: 4 received, 1 resolved (25%), 12,000 yuan recovered.
    assert figure(html, "volume") == "4" and figure(html, "resolution_rate") == "25.0%"
    assert figure(html, "amount_recovered") == "12,000.00"
    assert figure(html, "volume", "652701") == "3"
    assert figure(html, "resolution_rate", "652701") == "33.3%"
    assert figure(html, "volume", "652702") == "1"
    row = re.search(r'<tr data-unit="652701">(.*?)</tr>', html, re.S)
    assert row is not None and "@博乐检察" in row[1]  # the unit's account, from its cases
    assert '<tr data-tier="county">' in html
    assert 'id="chart-units"' in html and 'id="chart-months"' in html and "<polyline" in html
    # The router's returns per unit of the subtree.
    returns = re.search(r'id="stats-returns">(.*?)</section>', html, re.S)
    assert returns is not None and 'data-unit="652701"' in returns[1]
    # One month: this month's cases only (the old one was received 40 days ago).
    month = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    one = await world.bench.get(f"/stats?month={month}&figure=volume", headers=HTML)
    assert figure(one.text, "volume") == "3" and figure(one.text, "resolution_rate") == "33.3%"
    english = await world.bench.get("/stats?lang=en", headers=HTML)
    assert "Resolution rate" in english.text and "解决率" not in english.text


async def test_a_sibling_units_lead_sees_none_of_another_subtrees_figures(world: World) -> None:
    await world.sweep(utcnow())
    await log_in(world.bench, "sun.lead")
    for path in ("/supervise", "/stats", "/stats?figure=volume&months=12"):
        page = await world.bench.get(path, headers=HTML)
        assert page.status_code == 200, (path, page.text)
        assert "652701" not in page.text, path
        for case_id in (OLD, SOON, FRESH):
            assert case_id not in page.text, path
    supervise = await world.bench.get("/supervise", headers=HTML)
    assert figure(supervise.text, "open") == "1" and figure(supervise.text, "overdue") == "0"
    stats = await world.bench.get("/stats", headers=HTML)
    assert figure(stats.text, "volume") == "1"


async def test_a_handler_gets_the_403_page_and_no_links(world: World) -> None:
    await log_in(world.bench, "wang.li")
    inbox = await world.bench.get("/", headers=HTML)
    assert 'href="/supervise"' not in inbox.text and 'href="/stats"' not in inbox.text
    for path in ("/supervise", "/stats"):
        page = await world.bench.get(path, headers=HTML)
        assert page.status_code == 403 and "您无权执行此操作" in page.text, path
        assert "652702" not in page.text
