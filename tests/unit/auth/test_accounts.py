"""Local accounts on the in-memory store: people, API tokens (hashed, expiring, revocable),
sessions (expiring, ended by logout), and what a disabled person or a wrong password gets."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from fengqiao.auth.accounts import AccountError, Accounts, AccountSettings, digest
from fengqiao.auth.identity import Role, Unauthenticated
from fengqiao.auth.store import PEOPLE, SESSIONS, TOKENS, MemoryAuthStore

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def world() -> tuple[Accounts, MemoryAuthStore, Clock]:
    store, clock = MemoryAuthStore(), Clock()
    accounts = Accounts(store, AccountSettings(cache_seconds=0), clock=clock)
    await accounts.add(
        "wang.li", name="王力", unit_id="652701", roles=["handler", "unit_lead"],
        password=PASSWORD, units={"652701", "xj"},
    )  # fmt: skip
    return accounts, store, clock


async def test_a_person_is_added_once_with_a_hashed_password(world: tuple) -> None:
    accounts, store, _ = world
    doc = await store.get(PEOPLE, "wang.li")
    assert doc is not None and doc["password"].startswith("$argon2id$")
    assert PASSWORD not in str(doc)
    with pytest.raises(AccountError, match="exists already"):
        await accounts.add("wang.li", name="x", unit_id="xj", roles=["ops"], password=PASSWORD)
    listed = await accounts.people()
    assert [p["username"] for p in listed] == ["wang.li"] and "password" not in listed[0]


@pytest.mark.parametrize(
    ("username", "unit", "roles", "password", "error"),
    [
        ("Wang Li", "xj", ["ops"], PASSWORD, "lowercase"),
        ("li", "nowhere", ["ops"], PASSWORD, "unknown unit"),
        ("li", "xj", ["king"], PASSWORD, "roles are"),
        ("li", "xj", [""], PASSWORD, "at least one role"),
        ("li", "xj", ["ops"], "short", "at least 10"),
    ],
)
async def test_bad_input_is_refused_clearly(
    world: tuple, username: str, unit: str, roles: list[str], password: str, error: str
) -> None:
    accounts = world[0]
    with pytest.raises(AccountError, match=error):
        await accounts.add(
            username, name="n", unit_id=unit, roles=roles, password=password, units={"xj"}
        )


async def test_a_token_names_its_person_until_it_expires(world: tuple) -> None:
    accounts, store, clock = world
    issued = await accounts.issue_token("wang.li", days=1)
    who = await accounts.verify_token(issued.token)
    assert (who.person, who.unit_id, who.via) == ("local:wang.li", "652701", "token")
    assert who.roles == {Role.HANDLER, Role.UNIT_LEAD}
    stored = await store.get(TOKENS, digest(issued.token))
    assert stored is not None and issued.token not in str(stored)  # only its hash is kept
    clock.now += dt.timedelta(days=1, seconds=1)
    with pytest.raises(Unauthenticated, match="expired"):
        await accounts.verify_token(issued.token)


async def test_a_revoked_token_and_a_disabled_person_are_refused(world: tuple) -> None:
    accounts = world[0]
    kept, revoked = [await accounts.issue_token("wang.li") for _ in range(2)]
    assert await accounts.revoke(revoked.token_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await accounts.verify_token(revoked.token)
    assert (await accounts.verify_token(kept.token)).person == "local:wang.li"
    await accounts.set_disabled("wang.li", True)
    with pytest.raises(Unauthenticated, match="disabled"):
        await accounts.verify_token(kept.token)
    with pytest.raises(Unauthenticated):
        await accounts.verify_token("fq_unknown_token")


async def test_a_revocation_bites_within_the_cache_time(world: tuple) -> None:
    _, store, clock = world
    # Two processes (say tracker and router), each with its own memory of checked tokens.
    admin = Accounts(store, AccountSettings(cache_seconds=0.2), clock=clock)
    service = Accounts(store, AccountSettings(cache_seconds=0.2), clock=clock)
    issued = await admin.issue_token("wang.li")
    await service.verify_token(issued.token)
    await admin.revoke(issued.token_id)
    await asyncio.sleep(0.25)
    with pytest.raises(Unauthenticated):
        await service.verify_token(issued.token)


async def test_login_makes_a_session_that_expires_and_logout_ends(world: tuple) -> None:
    accounts, store, clock = world
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        await accounts.login("wang.li", "not the password")
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        await accounts.login("nobody", PASSWORD)
    cookie, who = await accounts.login("wang.li", PASSWORD)
    assert who.via == "session" and await store.get(SESSIONS, digest(cookie)) is not None
    assert (await accounts.session(cookie)).person == "local:wang.li"
    await accounts.logout(cookie)
    with pytest.raises(Unauthenticated, match="logged out"):
        await accounts.session(cookie)
    cookie, _ = await accounts.login("wang.li", PASSWORD)
    clock.now += dt.timedelta(hours=12, seconds=1)
    with pytest.raises(Unauthenticated, match="expired"):
        await accounts.session(cookie)


async def test_a_new_password_ends_the_sessions(world: tuple) -> None:
    accounts = world[0]
    cookie, _ = await accounts.login("wang.li", PASSWORD)
    await accounts.reset("wang.li", "another long password")
    with pytest.raises(Unauthenticated):
        await accounts.session(cookie)
    with pytest.raises(Unauthenticated):
        await accounts.login("wang.li", PASSWORD)
    assert (await accounts.login("wang.li", "another long password"))[1].unit_id == "652701"


async def test_a_store_outage_is_raised_never_let_in(world: tuple) -> None:
    from pymongo.errors import PyMongoError

    accounts, store, _ = world
    issued = await accounts.issue_token("wang.li")
    store.down = True
    with pytest.raises(PyMongoError):
        await accounts.verify_token(issued.token)
