"""Workbench's composition root (issue 19, deliver 5): the offices' web UI.

It logs people in with the local accounts (`fengqiao.auth.accounts`: a server-side session in
an HttpOnly, SameSite=Lax cookie) and is otherwise a client of the services' authorized APIs:
every page calls the tracker's unit API with the person's session, so the tracker's guard and
policy decide what they see and do. It keeps no case of its own and reads no service's store.

Every POST carries the session's CSRF token (an HMAC of the session under the workbench's key,
compared in constant time); the login form a double-submit token of its own. Failed logins are
limited per username and per client address (429 with Retry-After).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from fengqiao import __version__
from fengqiao.auth.accounts import Accounts, AccountSettings
from fengqiao.auth.guard import Guard, LocalSessions
from fengqiao.auth.oidc import OidcVerifier
from fengqiao.auth.settings import OidcSettings
from fengqiao.auth.store import MongoAuthStore
from fengqiao.runtime import tracing
from fengqiao.runtime.body_limit import BodyLimit, BodyTooLarge, body_too_large
from fengqiao.runtime.errors import declare_refusals, refusals
from fengqiao.runtime.http import ops_router
from fengqiao.services.workbench import domain, ops, pages, review, triage
from fengqiao.services.workbench.client import Api
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.services.workbench.sso import sso_router
from fengqiao.services.workbench.statistics import statistics_router
from fengqiao.services.workbench.supervise import supervise_router
from fengqiao.services.workbench.views import error_page, wants_html

NAME = "workbench"
# Its pages, each a module with its router (in the order of the header: nav.py).
PAGES: tuple[Callable[[pages.Workbench], APIRouter], ...] = (
    pages.login_router,
    sso_router,
    pages.case_router,
    triage.triage_router,
    review.review_router,
    supervise_router,
    statistics_router,
    ops.ops_router,
)

# What a page may answer besides itself (each refusal a page for a browser, else JSON; the
# guard's 401 and 403 and the store's 503 are declared by `declare_refusals`): on to another
# page (after a change; to the login page when a service says the session ended), or the
# service's refusal of what the page asked of it.
PAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    303: {"description": "See Location: the page after a change, or the login page"},
    **refusals(404, 409),
}


def build(
    settings: WorkbenchSettings | None = None,
    *,
    guard: Guard | None = None,
    accounts: Accounts | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> tuple[pages.Workbench, FastAPI]:
    """The app; `accounts` and `transports` (by service: tracker, router, notifier) replace the
    auth database and the network to the services (tests run the real apps in-process)."""
    settings = settings or WorkbenchSettings()
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.stack.mongo_uri, tz_aware=True, connect=False, appname=NAME
    )
    if accounts is None:
        account_settings = AccountSettings()
        accounts = Accounts(MongoAuthStore(mongo, account_settings.database), account_settings)
    # Every POST of the workbench's forms is checked against its CSRF token (pages.py).
    guard = guard or Guard(NAME, [LocalSessions(accounts)], forms_checked=True)
    key = settings.csrf_key.get_secret_value() if settings.csrf_key else secrets.token_hex(32)
    apis = _apis(settings, transports or {})
    limiter = domain.LoginLimiter(
        per_user=settings.login_failures_per_user,
        per_address=settings.login_failures_per_address,
        window=settings.login_window_seconds,
    )
    sso = _single_sign_on()
    bench = pages.Workbench(settings, accounts, apis, key.encode(), limiter, sso)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for api in apis.values():
            await api.aclose()
        if sso is not None:
            await sso.aclose()
        await mongo.close()

    app = FastAPI(title=f"fengqiao {NAME}", version=__version__, lifespan=lifespan,
                  description="The offices' web UI: inbox, cases, triage (issue 19).")  # fmt: skip
    app.add_middleware(BodyLimit, limits={})
    app.add_exception_handler(BodyTooLarge, body_too_large)
    tracing.instrument_app(app)  # with tracing on: a span per request, its calls below it

    async def mongo_up() -> bool:
        await mongo.admin.command("ping")
        return True

    checks = {"tracker": apis["tracker"].healthy, "auth store": mongo_up}
    app.include_router(ops_router(service=NAME, registry=bench.registry, checks=checks))
    # Every page: the guard first (who, and may they), then what each page shows in its header.
    page = [guard.dependency, Depends(bench.prepare)]
    for router in PAGES:
        app.include_router(router(bench), dependencies=page, responses=PAGE_ANSWERS)
    guard.audit(app)
    declare_refusals(app, guard.refusals, pages=True)
    app.add_exception_handler(HTTPException, _http_errors(bench))
    app.add_exception_handler(PyMongoError, _unavailable)
    app.add_exception_handler(httpx.HTTPError, _unavailable)
    return bench, app


def _apis(
    settings: WorkbenchSettings, transports: Mapping[str, httpx.AsyncBaseTransport]
) -> dict[str, Api]:
    urls = {"tracker": settings.tracker_url, "router": settings.router_url,
            "notifier": settings.notifier_url}  # fmt: skip
    return {name: Api(url, settings.api_timeout_seconds, transports.get(name))
            for name, url in urls.items()}  # fmt: skip


def _single_sign_on() -> OidcVerifier | None:
    """The IdP of the browser's OIDC login, when FENGQIAO_OIDC_* names one and this client."""
    oidc = OidcSettings()
    return OidcVerifier(oidc) if oidc.issuer and oidc.client_id and oidc.redirect_uri else None


def _http_errors(bench: pages.Workbench) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def http_error(request: Request, exc: Exception) -> Response:
        """For a browser: no session → the login page; else a page saying what went wrong (its
        logout form with the session's token). For anything else the API's JSON (401 with
        WWW-Authenticate, 403, 404)."""
        assert isinstance(exc, HTTPException)
        if not wants_html(request):
            return await http_exception_handler(request, exc)
        if exc.status_code == 401:
            return RedirectResponse(pages.login_url(request.url.path), status_code=303)
        request.state.csrf = bench.csrf(request)
        key = {403: "forbidden", 404: "not_found"}.get(exc.status_code, "invalid")
        return error_page(request, exc.status_code, key, str(exc.detail))

    return http_error


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The auth store or the tracker cannot be reached: 503, never a 500 (and never let in)."""
    response = error_page(request, 503, "unavailable", type(exc).__name__)
    response.headers["Retry-After"] = "5"
    return response


def create_app(settings: WorkbenchSettings | None = None) -> FastAPI:
    return build(settings)[1]
