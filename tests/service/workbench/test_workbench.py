"""The workbench over HTTP, in front of the real tracker app (in-process, its unit API and guard,
Kafka replaced by FastStream's test broker): login with the local accounts, CSRF on every POST,
login rate limiting, the inbox and a case, actions through the unit API as the person, the
API's refusals shown as pages (never a 500), another unit's case 404, logout that ends the
session on the server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import SESSION_COOKIE
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS
from fengqiao.runtime.clock import utcnow
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.testing.factories import appeal_message, dispatch_to_bole
from fengqiao.testing.workbench import in_process_workbench

CASE = "c-00000000000000aa"
PASSWORD = "a long enough password"
HTML = {"accept": "text/html"}


@dataclass
class World:
    bench: httpx.AsyncClient
    accounts: Accounts


async def opened_at_652701(broker: Any) -> None:
    now = utcnow()
    appeal = appeal_message("博乐市工地拖欠工资三个月", case_id=CASE, occurred_at=now)
    await broker.publish(appeal, APPEALS.name, key=CASE.encode())
    for order in dispatch_to_bole(CASE, now):
        await broker.publish(order, DISPATCH_ORDERS.name, key=CASE.encode())


@pytest.fixture
async def world() -> AsyncIterator[World]:
    accounts = Accounts(MemoryAuthStore())
    for username, unit in (("wang.li", "652701"), ("zhao.min", "652702")):
        await accounts.add(username, name=username, unit_id=unit, roles=["handler"],
                           password=PASSWORD)  # fmt: skip
    settings = WorkbenchSettings(tracker_url="http://tracker", login_failures_per_user=3)
    async with in_process_workbench(accounts, settings) as bench:
        await opened_at_652701(bench.broker)
        yield World(bench.http, accounts)


async def log_in(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/login", headers=HTML)
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf[1], "username": username, "password": password, "next": "/"}
    return await http.post("/login", data=form, headers=HTML)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page.text)
    assert found is not None and found[1]
    return found[1]


async def test_a_browser_without_a_session_is_sent_to_the_login_page(world: World) -> None:
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")
    api = await world.bench.get("/")
    assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Bearer")


async def test_login_sets_an_httponly_samesite_cookie_and_shows_the_inbox(world: World) -> None:
    response = await log_in(world.bench, "wang.li")
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    inbox = await world.bench.get("/", headers=HTML)
    assert inbox.status_code == 200 and "收件箱" in inbox.text and CASE in inbox.text
    english = await world.bench.get("/?lang=en", headers=HTML)
    assert "Inbox" in english.text and "收件箱" not in english.text


async def test_a_wrong_password_is_refused_and_repeated_failures_wait(world: World) -> None:
    for _ in range(3):
        refused = await log_in(world.bench, "wang.li", "not the password at all")
        assert refused.status_code == 401 and "用户名或密码错误" in refused.text
    # Now even the right password waits: 429 with Retry-After and a clear message.
    limited = await log_in(world.bench, "wang.li")
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) > 0 and "登录尝试过多" in limited.text
    assert SESSION_COOKIE not in limited.headers.get("set-cookie", "")
    # Another person from elsewhere is not held by wang.li's failures.
    assert (await log_in(world.bench, "zhao.min")).status_code == 303
    metrics = (await world.bench.get("/metrics")).text
    for outcome, count in (("refused", 3), ("limited", 1), ("ok", 1)):
        line = f'fengqiao_workbench_logins_total{{outcome="{outcome}",way="password"}} {count}.0'
        assert line in metrics, outcome


async def test_login_without_its_csrf_token_is_refused(world: World) -> None:
    form = {"username": "wang.li", "password": PASSWORD}
    response = await world.bench.post("/login", data=form, headers=HTML)
    assert response.status_code == 403 and SESSION_COOKIE not in response.headers.get(
        "set-cookie", ""
    )


async def test_a_handler_signs_reports_and_resolves_through_the_unit_api(world: World) -> None:
    await log_in(world.bench, "wang.li")
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert page.status_code == 200 and "签收" in page.text and "dispatched" in page.text
    csrf = csrf_of(page)
    steps = (("accept", {}), ("progress", {"note": "已联系用人单位"}),
             ("resolve", {"outcome": "工资已发放", "amount_recovered": "12000"}))  # fmt: skip
    for action, fields in steps:
        done = await world.bench.post(
            f"/cases/{CASE}/{action}", data={"csrf": csrf, **fields}, headers=HTML
        )
        assert done.status_code == 303, (action, done.text)
        shown = await world.bench.get(done.headers["location"], headers=HTML)
        assert 'id="message"' in shown.text, (action, shown.text)
    assert 'data-state="resolved"' in shown.text
    # A resolved case offers only a note (the API would refuse the rest).
    assert 'id="form-notes"' in shown.text and 'id="form-accept"' not in shown.text
    assert "local:wang.li" in shown.text  # the timeline names the person


async def test_a_post_without_the_csrf_token_does_nothing(world: World) -> None:
    await log_in(world.bench, "wang.li")
    for csrf in ("", "0" * 64):
        refused = await world.bench.post(f"/cases/{CASE}/accept", data={"csrf": csrf},
                                         headers=HTML)  # fmt: skip
        assert refused.status_code == 403 and "表单已过期" in refused.text
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert 'data-state="dispatched"' in page.text


async def test_the_apis_refusals_are_pages_not_errors(world: World) -> None:
    await log_in(world.bench, "wang.li")
    csrf = csrf_of(await world.bench.get(f"/cases/{CASE}", headers=HTML))
    # Resolving a case not signed for: the tracker's 409, shown on the case page.
    conflict = await world.bench.post(
        f"/cases/{CASE}/resolve", data={"csrf": csrf, "outcome": "x"}, headers=HTML
    )
    assert conflict.status_code == 409 and "案件当前状态不允许此操作" in conflict.text
    assert f"{CASE}" in conflict.text and 'id="error"' in conflict.text
    # A field missing: the form's own check (422), nothing sent.
    missing = await world.bench.post(f"/cases/{CASE}/progress", data={"csrf": csrf},
                                     headers=HTML)  # fmt: skip
    assert missing.status_code == 422 and "note is required" in missing.text
    bad = await world.bench.post(
        f"/cases/{CASE}/extension", data={"csrf": csrf, "requested_deadline": "soon"},
        headers=HTML,
    )  # fmt: skip
    assert bad.status_code == 422


async def test_a_sibling_units_handler_cannot_open_the_case(world: World) -> None:
    await log_in(world.bench, "zhao.min")
    page = await world.bench.get(f"/cases/{CASE}", headers=HTML)
    assert page.status_code == 404 and "案件不存在，或您的单位无权查看" in page.text
    assert "博乐市" not in page.text
    # Its page still lets them log out (the form carries the session's token).
    assert csrf_of(page) == csrf_of(await world.bench.get("/", headers=HTML))
    inbox = await world.bench.get("/", headers=HTML)
    assert inbox.status_code == 200 and CASE not in inbox.text
    csrf = csrf_of(inbox)
    acted = await world.bench.post(f"/cases/{CASE}/accept", data={"csrf": csrf}, headers=HTML)
    assert acted.status_code == 404


async def test_logout_ends_the_session_on_the_server(world: World) -> None:
    await log_in(world.bench, "wang.li")
    cookie = world.bench.cookies[SESSION_COOKIE]
    csrf = csrf_of(await world.bench.get("/", headers=HTML))
    out = await world.bench.post("/logout", data={"csrf": csrf}, headers=HTML)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    # The old cookie, sent again by hand, is refused: the session is gone from the store.
    world.bench.cookies.set(SESSION_COOKIE, cookie)
    again = await world.bench.get("/", headers=HTML)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    assert (await world.bench.get("/")).status_code == 401
