"""The one dependency (fengqiao.auth.guard): a bearer token or a session cookie becomes an
Identity; none → 401 with WWW-Authenticate; bad, expired, revoked or disabled → 401; a store
outage → 503 with Retry-After (never a 500, never let in); more ways in are one authenticator
more; an app with a route the policy does not name is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from fengqiao.auth.accounts import Accounts, AccountSettings
from fengqiao.auth.guard import (
    CLIENT_HEADER,
    SESSION_COOKIE,
    Credentials,
    FixedTokens,
    Guard,
    Unpoliced,
    authenticators_for,
)
from fengqiao.auth.identity import Identity, Role, Unauthenticated
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings

PASSWORD = "a long enough password"


def app_with(guard: Guard, extra: APIRouter | None = None) -> Any:
    router = APIRouter()

    @router.get("/units/me")  # the policy: anyone authenticated
    async def me(who: Identity = guard.caller) -> dict[str, str]:
        return {"person": who.person, "unit_id": who.unit_id, "via": who.via}

    @router.get("/ops/stats")  # the policy: unit leads, dispatchers, auditors, ops
    async def stats(who: Identity = guard.caller) -> dict[str, str]:
        return {"person": who.person}

    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    return http_app(
        runtime, description="t", routers=[router, *([extra] if extra else [])], guard=guard
    )


@pytest.fixture
async def world() -> AsyncIterator[tuple[httpx.AsyncClient, Accounts, MemoryAuthStore, Guard]]:
    store = MemoryAuthStore()
    accounts = Accounts(store, AccountSettings(cache_seconds=0))
    await accounts.add(
        "ma.lan", name="马兰", unit_id="652701", roles=["handler"], password=PASSWORD
    )
    guard = Guard("tracker", authenticators_for(accounts))
    transport = httpx.ASGITransport(app=app_with(guard))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http, accounts, store, guard


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_credentials_is_401_with_a_challenge(world: tuple) -> None:
    http = world[0]
    response = await http.get("/units/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await http.get("/healthz")).status_code == 200  # public


async def test_a_token_and_a_session_name_the_person(world: tuple) -> None:
    http, accounts, _, _ = world
    issued = await accounts.issue_token("ma.lan")
    by_token = await http.get("/units/me", headers=bearer(issued.token))
    assert by_token.json() == {"person": "local:ma.lan", "unit_id": "652701", "via": "token"}
    cookie, _ = await accounts.login("ma.lan", PASSWORD)
    session = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    by_session = await http.get("/units/me", headers=session)
    assert by_session.json()["via"] == "session"
    await accounts.logout(cookie)
    assert (await http.get("/units/me", headers=session)).status_code == 401


async def test_bad_expired_revoked_and_disabled_are_401(world: tuple) -> None:
    http, accounts, _, _ = world
    for token in ("nope", "fq_nope_nope", "Basic"):
        response = await http.get("/units/me", headers=bearer(token))
        assert response.status_code == 401, token
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    expired = await accounts.issue_token("ma.lan", days=1)
    accounts.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert (await http.get("/units/me", headers=bearer(expired.token))).status_code == 401
    accounts.clock = lambda: dt.datetime.now(dt.UTC)
    revoked = await accounts.issue_token("ma.lan")
    await accounts.revoke(revoked.token_id)
    assert (await http.get("/units/me", headers=bearer(revoked.token))).status_code == 401
    kept = await accounts.issue_token("ma.lan")
    assert (await http.get("/units/me", headers=bearer(kept.token))).status_code == 200
    await accounts.set_disabled("ma.lan", True)
    assert (await http.get("/units/me", headers=bearer(kept.token))).status_code == 401


async def test_a_role_the_route_does_not_list_is_403(world: tuple) -> None:
    http, accounts, _, _ = world
    issued = await accounts.issue_token("ma.lan")  # a handler
    response = await http.get("/ops/stats", headers=bearer(issued.token))
    assert response.status_code == 403 and "local:ma.lan" in response.json()["detail"]


async def test_a_store_outage_is_503_never_500_never_let_in(world: tuple) -> None:
    http, accounts, store, _ = world
    issued = await accounts.issue_token("ma.lan")
    store.down = True
    response = await http.get("/units/me", headers=bearer(issued.token))
    assert response.status_code == 503 and response.headers["retry-after"]


async def test_one_more_way_in_is_one_more_authenticator(world: tuple) -> None:
    http, _, _, guard = world
    sso = Identity("oidc:sso:42", "赵六", "xj", frozenset({Role.AUDITOR}), "oidc")

    class Sso:
        async def __call__(self, credentials: Credentials) -> Identity | None:
            if credentials.bearer == "eyJ-forged":
                raise Unauthenticated("bad signature")
            return sso if credentials.bearer == "eyJ-good" else None

    guard.authenticators.append(Sso())
    assert (await http.get("/ops/stats", headers=bearer("eyJ-good"))).status_code == 200
    assert (await http.get("/ops/stats", headers=bearer("eyJ-forged"))).status_code == 401
    guard.authenticators.append(FixedTokens({"fixed-token-123": sso}))
    assert (await http.get("/units/me", headers=bearer("fixed-token-123"))).status_code == 200


def test_an_app_with_a_route_the_policy_does_not_name_is_refused() -> None:
    extra = APIRouter()

    @extra.post("/ops/cases/{case_id}/delete-everything")
    async def unpoliced(case_id: str) -> None:
        return None

    with pytest.raises(Unpoliced, match=r"POST /ops/cases/\{case_id\}/delete-everything"):
        app_with(Guard("tracker"), extra)


async def test_an_unreachable_auth_database_is_503_through_the_real_driver() -> None:
    from pymongo import AsyncMongoClient

    from fengqiao.auth.store import MongoAuthStore

    # Nothing listens on port 1: pymongo gives up after 200 ms with its own error.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200", connect=False
    )
    accounts = Accounts(MongoAuthStore(client), AccountSettings(cache_seconds=0))
    app = app_with(Guard("tracker", authenticators_for(accounts)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/units/me", headers=bearer("fq_0123456789ab_secret"))
    await client.close()
    assert response.status_code == 503 and response.headers["retry-after"]


def app_with_a_change(guard: Guard) -> Any:
    router = APIRouter()

    @router.post("/units/me/cases/{case_id}/accept")  # the policy: handlers and unit leads
    async def accept(case_id: str, who: Identity = guard.caller) -> dict[str, str]:
        return {"person": who.person, "case_id": case_id}

    return app_with(guard, router)


async def test_a_change_by_session_cookie_alone_needs_the_client_header(world: tuple) -> None:
    """A page on another port of this host can make a browser POST with the cookie (SameSite
    counts ports as one site), never with a header of its own."""
    _, accounts, _, guard = world
    cookie, _ = await accounts.login("ma.lan", PASSWORD)
    for checked, header, expected in [
        (False, {}, 403),
        (False, {CLIENT_HEADER: "workbench"}, 200),
        (True, {}, 200),  # a service that checks its own CSRF token (the workbench)
    ]:
        own = Guard("tracker", guard.authenticators, forms_checked=checked)
        transport = httpx.ASGITransport(app=app_with_a_change(own))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", cookies={SESSION_COOKIE: cookie}
        ) as http:
            response = await http.post("/units/me/cases/c-1/accept", headers=header)
            assert response.status_code == expected, (checked, header, response.text)
            assert (await http.get("/units/me")).status_code == 200  # reads need no header
    issued = await accounts.issue_token("ma.lan")
    transport = httpx.ASGITransport(app=app_with_a_change(guard))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        by_token = await http.post("/units/me/cases/c-1/accept", headers=bearer(issued.token))
        assert by_token.status_code == 200  # a bearer token is never sent by a browser on its own
