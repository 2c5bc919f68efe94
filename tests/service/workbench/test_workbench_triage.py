"""分诊 (the triage queue) in the workbench, in front of the real router and tracker apps
(in-process, each with its own guard over the same local accounts, both on one in-memory broker
so a ruling is carried out: the router reads its reassignment back and re-dispatches, and the
tracker moves the case). Dispatchers read and rule, auditors only read, handlers are refused;
every POST needs the session's CSRF token; a wrong form is a 422 page and sends nothing."""

from __future__ import annotations

import html
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
from fengqiao.contracts import APPEALS, UNIT_ACTIONS, UnitActed
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.testing.factories import appeal_message, triage_message

PASSWORD = "a long enough password"
HTML = {"accept": "text/html"}
ITEM = "appeal-c-1"
PEOPLE = {
    "ma.lan": ("652700", "dispatcher"),  # 博州: sees 博乐市 and 精河县, not 喀什
    "wang.li": ("652701", "handler"),
    "sun.yu": ("652700", "auditor"),
}


@dataclass
class World:
    bench: httpx.AsyncClient
    broker: Any
    queue: Any
    cases: Any
    actions: list[UnitActed]

    async def post(self, appeal: Any) -> None:
        await self.broker.publish(appeal, APPEALS.name, key=appeal.case_id.encode())

    async def case(self, case_id: str) -> dict[str, Any]:
        doc = await self.cases.find(case_id)
        assert doc is not None, case_id
        return doc  # type: ignore[no-any-return]


def possibly_urgent(
    case: str = "c-1", text: str = "博乐市的工地，老板欠钱，我在楼顶上", **triage: Any
) -> Any:
    review = ("possibly_urgent", *(("suggested_link",) if "suggested_case" in triage else ()))
    found = triage_message("wage_arrears", urgent=True, review=review, **triage)
    return appeal_message(text, case_id=case,
                          event_id=f"appeal-{case}", triage=found)  # fmt: skip


def services(runtime: Runtime, accounts: Accounts) -> tuple[Any, Any, Any, Any]:
    """The router's and the tracker's apps on one runtime's broker, and their stores."""
    from fengqiao.services.router import handlers as router_handlers
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.adapters.triage_queue import InMemoryTriageQueue
    from fengqiao.services.router.app import build_router
    from fengqiao.services.router.http import ops_router
    from fengqiao.services.router.settings import RouterSettings
    from fengqiao.services.router.triage_api import triage_router
    from fengqiao.services.tracker import domain
    from fengqiao.services.tracker import handlers as tracker_handlers
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
    from fengqiao.services.tracker.adapters.timers import InMemoryTimers
    from fengqiao.services.tracker.api import unit_router
    from fengqiao.services.tracker.app import ops_router as tracker_ops

    router, queue, store = (
        build_router(RouterSettings()),
        InMemoryTriageQueue(),
        InMemoryRecordStore(),
    )
    dispatch = router_handlers.register(
        runtime.broker, router, producer="router", group_id="router",
        registry=runtime.registry, store=store, queue=queue,
    )  # fmt: skip
    repo, indexes = InMemoryCaseRepository(), InMemoryIndexes()
    tracker_handlers.register(
        runtime.broker, repo, indexes=indexes, timers=InMemoryTimers(),
        rules=domain.Rules.default(), group_id="tracker", registry=runtime.registry,
    )  # fmt: skip
    at_router = Guard("router", [LocalSessions(accounts)])
    routers = [ops_router(runtime.broker, store, router.directory, producer="router",
                          caller=at_router.caller),
               triage_router(runtime.broker, queue, router, at_router.caller, dispatch,
                             producer="router")]  # fmt: skip
    router_app = http_app(runtime, description="r", routers=routers, guard=at_router)
    at_tracker = Guard("tracker", [LocalSessions(accounts)])
    routers = [
        tracker_ops(repo, runtime.broker, at_tracker.caller),
        unit_router(runtime.broker, repo, indexes, at_tracker.caller, producer="tracker"),
    ]
    tracker_app = http_app(runtime, description="t", routers=routers, guard=at_tracker)
    return router_app, tracker_app, queue, repo


@pytest.fixture
async def world() -> AsyncIterator[World]:
    accounts = Accounts(MemoryAuthStore())
    for username, (unit, role) in PEOPLE.items():
        await accounts.add(username, name=username, unit_id=unit, roles=[role],
                           password=PASSWORD)  # fmt: skip
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    router_app, tracker_app, queue, repo = services(runtime, accounts)
    actions: list[UnitActed] = []

    @runtime.broker.subscriber(UNIT_ACTIONS.name, group_id="probe-actions")
    async def on_action(action: UnitActed) -> None:
        actions.append(action)

    settings = WorkbenchSettings(router_url="http://router", tracker_url="http://tracker")
    transports = {"router": httpx.ASGITransport(router_app),
                  "tracker": httpx.ASGITransport(tracker_app)}  # fmt: skip
    _, app = build(settings, accounts=accounts, transports=transports)
    async with TestKafkaBroker(runtime.broker) as broker:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as http:
            world = World(http, broker, queue, repo, actions)
            await world.post(possibly_urgent())
            yield world


async def log_in(http: httpx.AsyncClient, username: str) -> None:
    page = await http.get("/login", headers=HTML)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf[1], "username": username, "password": PASSWORD, "next": "/"}
    assert (await http.post("/login", data=form, headers=HTML)).status_code == 303


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found is not None and found[1]
    return found[1]


async def correct(world: World, fields: dict[str, str], csrf: str | None = None) -> httpx.Response:
    if csrf is None:
        csrf = csrf_of(await world.bench.get(f"/triage/{ITEM}", headers=HTML))
    return await world.bench.post(f"/triage/{ITEM}/correct", data={"csrf": csrf, **fields},
                                  headers=HTML)  # fmt: skip


async def test_the_queue_shows_a_dispatcher_the_item_with_its_suggested_routing(
    world: World,
) -> None:
    await world.post(possibly_urgent("c-9", "伽师县的工地老板欠钱，我在楼顶上"))
    await log_in(world.bench, "ma.lan")
    page = await world.bench.get("/triage", headers=HTML)
    assert page.status_code == 200, page.text
    assert 'href="/triage" aria-current="page">分诊' in page.text
    assert f'data-item="{ITEM}"' in page.text and "疑似紧急" in page.text
    assert "博乐市" in page.text and "讨薪·劳务纠纷" in page.text and "楼顶" in page.text
    assert 'data-case="c-9"' not in page.text  # 伽师县 is outside 博州
    item = await world.bench.get(f"/triage/{ITEM}?lang=en", headers=HTML)
    assert item.status_code == 200 and 'id="form-correct"' in item.text
    assert 'data-unit="652701"' in item.text and "Evidence" in item.text
    assert "a place in the text: 博乐市" in item.text  # the router's evidence, named
    assert '<option value="652702">' in item.text  # 精河县: a unit of 博州 to route to
    assert '<option value="653129">' not in item.text  # not 伽师县
    other = await world.bench.get("/triage/appeal-c-9", headers=HTML)
    assert other.status_code == 404 and "不在您单位的辖区" not in other.text  # English cookie
    assert "outside your unit" in other.text


async def test_a_handler_is_refused_the_queue_and_its_actions(world: World) -> None:
    await log_in(world.bench, "wang.li")
    inbox = await world.bench.get("/", headers=HTML)
    assert 'href="/triage"' not in inbox.text
    for path in ("/triage", f"/triage/{ITEM}"):
        page = await world.bench.get(path, headers=HTML)
        assert page.status_code == 403 and "您无权执行此操作" in page.text, path
    refused = await correct(world, {"unit": "652702"}, csrf=csrf_of(inbox))
    assert refused.status_code == 403
    assert await world.queue.ruling(ITEM) is None and world.actions == []


async def test_an_auditor_reads_the_queue_without_forms(world: World) -> None:
    await log_in(world.bench, "sun.yu")
    assert f'data-item="{ITEM}"' in (await world.bench.get("/triage", headers=HTML)).text
    item = await world.bench.get(f"/triage/{ITEM}", headers=HTML)
    assert item.status_code == 200 and 'id="read-only"' in item.text
    assert "/correct" not in item.text and "/confirm" not in item.text
    refused = await correct(world, {"unit": "652702"}, csrf=csrf_of(item))
    assert refused.status_code == 403 and await world.queue.ruling(ITEM) is None


async def test_a_correction_reaches_the_case_in_the_dispatchers_name(world: World) -> None:
    await log_in(world.bench, "ma.lan")
    assert (await world.case("c-1"))["assigned_unit"] == "652701"
    done = await correct(world, {"unit": "652702", "category": "personal_injury",
                                 "urgent": "no", "note": "精河县的工地"})  # fmt: skip
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/triage/{ITEM}?done=correct"
    shown = await world.bench.get(done.headers["location"], headers=HTML)
    assert 'id="message"' in shown.text and "local:ma.lan" in shown.text
    assert 'id="form-correct"' not in shown.text  # ruled: nothing more to do here
    [reassign] = [a for a in world.actions if a.action.value == "reassign"]
    assert (reassign.person, reassign.unit_id, reassign.target_unit) == (
        "local:ma.lan", "652700", "652702")  # fmt: skip
    case = await world.case("c-1")
    assert (case["assigned_unit"], case["category"]) == ("652702", "personal_injury")
    assert any(e.get("person") == "local:ma.lan" for e in case["timeline"])
    # A second ruling is refused, and says whose ruling stands.
    again = await world.bench.post(f"/triage/{ITEM}/confirm", data={"csrf": csrf_of(shown)},
                                   headers=HTML)  # fmt: skip
    assert again.status_code == 409 and "此条目已由 local:ma.lan 处理" in again.text


@pytest.mark.parametrize("csrf", ["", "0" * 64])
async def test_a_forged_or_absent_csrf_token_changes_nothing(world: World, csrf: str) -> None:
    await log_in(world.bench, "ma.lan")
    for action in ("correct", "confirm", "merge", "unlink"):
        refused = await world.bench.post(
            f"/triage/{ITEM}/{action}", data={"csrf": csrf, "unit": "652702", "into": "c-0"},
            headers=HTML,
        )  # fmt: skip
        assert refused.status_code == 403 and "表单已过期" in refused.text, action
    assert await world.queue.ruling(ITEM) is None and world.actions == []
    assert (await world.case("c-1"))["assigned_unit"] == "652701"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"category": "gardening"}, "category: 'gardening' is not a category"),
        ({"unit": "653129"}, "not a unit you may route to"),  # 伽师县, outside 博州
        ({"urgent": "maybe"}, "urgent: 'maybe' is not yes or no"),
        ({"note": "只有备注"}, "nothing to correct"),
        ({"unit": "652702", "note": "长" * 501}, "note: at most 500 characters"),
    ],
)
async def test_a_malformed_correction_is_a_clear_422_page_and_sends_nothing(
    world: World, fields: dict[str, str], says: str
) -> None:
    await log_in(world.bench, "ma.lan")
    refused = await correct(world, fields)
    shown = html.unescape(refused.text)
    assert refused.status_code == 422 and "输入有误" in shown and says in shown
    assert 'id="form-correct"' in refused.text  # the item again, to fix the form
    assert await world.queue.ruling(ITEM) is None and world.actions == []


async def test_a_suggested_repeat_is_unlinked_or_merged(world: World) -> None:
    await world.post(possibly_urgent("c-2", suggested_case="c-1", suggested_reason="similar"))
    await log_in(world.bench, "ma.lan")
    page = await world.bench.get("/triage/appeal-c-2", headers=HTML)
    assert 'id="suggested-case"' in page.text and "similar" in page.text
    unlinked = await world.bench.post("/triage/appeal-c-2/unlink", data={"csrf": csrf_of(page)},
                                      headers=HTML)  # fmt: skip
    assert unlinked.status_code == 303
    ruling = await world.queue.ruling("appeal-c-2")
    assert ruling is not None and (ruling.link, ruling.person) == ("reject", "local:ma.lan")
    assert not [a for a in world.actions if a.action.value == "merge"]
    # Merged by hand into the other case (the tracker's merge, as the person).
    merged = await world.bench.post("/triage/appeal-c-2/merge", headers=HTML,
                                    data={"csrf": csrf_of(page), "into": "c-1"})  # fmt: skip
    assert merged.status_code == 303, merged.text
    case = await world.case("c-2")
    assert case["state"] == "merged"
    bad = await world.bench.post("/triage/appeal-c-2/merge", headers=HTML,
                                 data={"csrf": csrf_of(page), "into": "c 1; drop"})  # fmt: skip
    assert bad.status_code == 422 and "is not a case id" in bad.text
