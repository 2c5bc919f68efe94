"""The workbench's single sign-on against a real OIDC provider (mock-oauth2-server, which signs
anyone in at once): the browser's way through /login/sso, the IdP and the callback ends in a
session the services accept, for the person, unit and roles the IdP vouched for; a callback
replayed, forged or from another browser is refused (issue 19, deliver 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import SESSION_COOKIE
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS
from fengqiao.runtime.clock import utcnow
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.services.workbench.sso import PENDING_COOKIE
from fengqiao.testing.factories import appeal_message, dispatch_to_bole
from fengqiao.testing.oidc import AUDIENCE, CLIENT_ID, OidcProvider
from fengqiao.testing.workbench import InProcess, in_process_workbench

CASE = "c-00000000000000ab"
HTML = {"accept": "text/html"}
CALLBACK = "http://w/login/sso/callback"


@dataclass
class Sso:
    bench: httpx.AsyncClient
    idp: httpx.AsyncClient
    world: InProcess


@pytest.fixture
async def sso(oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sso]:
    for name, value in (("ISSUER", oidc_provider.issuer), ("ISSUER_ALIAS", "gov"),
                        ("AUDIENCE", AUDIENCE), ("CLIENT_ID", CLIENT_ID),
                        ("REDIRECT_URI", CALLBACK)):  # fmt: skip
        monkeypatch.setenv(f"FENGQIAO_OIDC_{name}", value)
    settings = WorkbenchSettings(tracker_url="http://tracker")
    async with (
        in_process_workbench(Accounts(MemoryAuthStore()), settings) as world,
        httpx.AsyncClient() as idp,
    ):
        now = utcnow()
        broker = world.broker
        await broker.publish(appeal_message("博乐市欠薪", case_id=CASE, occurred_at=now),
                             APPEALS.name, key=CASE.encode())  # fmt: skip
        for order in dispatch_to_bole(CASE, now):
            await broker.publish(order, DISPATCH_ORDERS.name, key=CASE.encode())
        yield Sso(world.http, idp, world)


async def to_the_idp_and_back(sso: Sso, next_path: str = "/") -> str:
    """The browser: start the login, follow the IdP's redirect; the callback path it gives."""
    start = await sso.bench.get("/login/sso", params={"next": next_path}, headers=HTML)
    assert start.status_code == 303, start.text
    assert PENDING_COOKIE in start.headers["set-cookie"]
    assert "HttpOnly" in start.headers["set-cookie"]
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and "code_verifier" not in query
    back = await sso.idp.get(start.headers["location"])
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(CALLBACK + "?")
    return back.headers["location"].removeprefix("http://w")


async def test_the_login_page_offers_sso_and_it_ends_in_a_session_the_tracker_accepts(
    sso: Sso,
) -> None:
    login = await sso.bench.get("/login", headers=HTML)
    assert 'id="sso"' in login.text and "使用统一身份认证登录" in login.text
    callback = await to_the_idp_and_back(sso, f"/cases/{CASE}")
    done = await sso.bench.get(callback, headers=HTML)
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{CASE}"
    assert f"{SESSION_COOKIE}=" in done.headers["set-cookie"]
    assert "HttpOnly" in done.headers["set-cookie"]
    # The case page comes from the tracker, which accepted the session as 陈静 of 博乐市.
    case = await sso.bench.get(f"/cases/{CASE}", headers=HTML)
    assert case.status_code == 200 and 'data-state="dispatched"' in case.text
    assert "陈静" in case.text and "652701" in case.text
    # Her actions are recorded as the IdP's person.
    csrf = case.text.split('name="csrf" value="')[1].split('"')[0]
    accepted = await sso.bench.post(f"/cases/{CASE}/accept", data={"csrf": csrf}, headers=HTML)
    assert accepted.status_code == 303
    shown = await sso.bench.get(f"/cases/{CASE}", headers=HTML)
    assert "oidc:gov:chen.jing" in shown.text


async def test_a_callback_is_taken_once_and_only_by_the_browser_that_began_it(sso: Sso) -> None:
    callback = await to_the_idp_and_back(sso)
    # Another browser (no pending-login cookie) with the same callback URL: refused.
    async with sso.world.browser() as stranger:
        refused = await stranger.get(callback, headers=HTML)
    assert refused.status_code == 401 and "统一身份认证登录未成功" in refused.text
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    first = await sso.bench.get(callback, headers=HTML)
    assert first.status_code == 303
    sso.bench.cookies.delete(SESSION_COOKIE)
    again = await sso.bench.get(callback, headers=HTML)
    assert again.status_code == 401  # the pending login was taken by the first


async def test_a_forged_state_or_an_idp_error_makes_no_session(sso: Sso) -> None:
    callback = await to_the_idp_and_back(sso)
    query = parse_qs(urlsplit(callback).query)
    forged = await sso.bench.get("/login/sso/callback", params={"code": query["code"][0],
                                 "state": "not-the-state"}, headers=HTML)  # fmt: skip
    assert forged.status_code == 401 and "state does not match" in forged.text
    await to_the_idp_and_back(sso)
    denied = await sso.bench.get("/login/sso/callback", params={"error": "access_denied"},
                                 headers=HTML)  # fmt: skip
    assert denied.status_code == 401 and "access_denied" in denied.text
    assert SESSION_COOKIE not in sso.bench.cookies


async def test_without_sso_settings_the_routes_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FENGQIAO_OIDC_ISSUER", raising=False)
    async with in_process_workbench(Accounts(MemoryAuthStore())) as world:
        login = await world.http.get("/login", headers=HTML)
        assert 'id="sso"' not in login.text
        off = await world.http.get("/login/sso", headers=HTML)
        assert off.status_code == 404 and "未配置统一身份认证" in off.text
