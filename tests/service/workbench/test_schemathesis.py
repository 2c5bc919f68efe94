"""Schemathesis against the workbench's OpenAPI document (issue 20, deliver 7): its pages, as a
browser logged in as a person with every role asks for them, in front of the tracker, the router
and the notifier in-process (tests/service/inprocess.py, each with the same accounts' sessions);
the checks of tests/service/conformance.py. The case page's forms (each action's fields) are
posted with the session's CSRF token, so they reach the services; the other forms' POSTs carry
none here and are refused (403), as they must be (the pages' own tests post them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import schemathesis

from fengqiao.auth import Identity, Role
from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import SESSION_COOKIE, Guard, LocalSessions
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.domain import csrf_token
from fengqiao.services.workbench.settings import WorkbenchSettings
from tests.service import inprocess
from tests.service.conformance import BOUNDED, conforms, openapi_of

accounts = Accounts(MemoryAuthStore())
WHO = Identity("local:schemathesis", "schemathesis", "xj", frozenset(Role), "session")
COOKIE = asyncio.run(accounts.open_session(WHO))
SERVICES = {
    name: builder(Guard(name, [LocalSessions(accounts)]))
    for name, builder in (
        ("tracker", inprocess.tracker),
        ("router", inprocess.router),
        ("notifier", inprocess.notifier),
    )
}
SETTINGS = WorkbenchSettings(
    tracker_url="http://tracker", router_url="http://router", notifier_url="http://notifier",
    csrf_key="schemathesis-csrf-key-0123456789",
)  # fmt: skip
CSRF = csrf_token(b"schemathesis-csrf-key-0123456789", COOKIE)
_, APP = build(
    SETTINGS,
    accounts=accounts,
    transports={name: httpx.ASGITransport(built.app) for name, built in SERVICES.items()},
)
KNOWN = {name: values for built in SERVICES.values() for name, values in built.known.items()}


@contextlib.asynccontextmanager
async def services() -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for built in SERVICES.values():
            await stack.enter_async_context(built.seams())
        yield


schema = openapi_of(APP, services)


@schema.parametrize()
@BOUNDED
def test_the_workbench_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    inprocess.pick_known(case, KNOWN)
    if isinstance(case.body, dict) and "csrf" in case.body:  # a form the person filled in
        case.body["csrf"] = CSRF
    conforms(case, cookies={SESSION_COOKIE: COOKIE}, headers={"Accept": "text/html"})
