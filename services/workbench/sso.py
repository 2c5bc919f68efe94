"""Logging in with the government's single sign-on (OIDC authorization code + PKCE), the
workbench's second way in beside local accounts (issue 19, deliver 1).

    GET /login/sso             a fresh state, nonce and PKCE verifier, kept on the server under
                               a random cookie's digest; the browser goes to the IdP
    GET /login/sso/callback    the IdP sends the browser back with a code: the pending login is
                               taken (once), the code exchanged, the id_token checked
                               (`fengqiao.auth.oidc_login`), and a session opened for the person
                               the IdP vouched for (`Accounts.open_session`)

From there the person is like any other: the session cookie goes with each call to the
services, which accept it until it expires or the person logs out. The pending login lives
10 minutes, in the auth database's `sso_logins` (never in the browser: the verifier must not
leave the server).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from fengqiao.auth.accounts import digest
from fengqiao.auth.identity import Unauthenticated
from fengqiao.auth.oidc_login import LoginStart, begin_login, complete_login
from fengqiao.services.workbench.pages import Workbench, safe_next
from fengqiao.services.workbench.views import error_page

PENDING = "sso_logins"
PENDING_COOKIE = "fengqiao_sso"
PENDING_MINUTES = 10


def sso_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["login"])

    @router.get("/login/sso", summary="Log in with the single sign-on (OIDC): to the IdP")
    async def start(request: Request) -> Response:
        if bench.sso is None:
            return error_page(request, 404, "sso_off")
        started = await begin_login(bench.sso)
        cookie = secrets.token_urlsafe(32)
        now = dt.datetime.now(dt.UTC)
        pending = {
            "_id": digest(cookie), "state": started.state, "nonce": started.nonce,
            "code_verifier": started.code_verifier, "redirect_uri": started.redirect_uri,
            "next": safe_next(request.query_params.get("next")), "created_at": now,
            "expires_at": now + dt.timedelta(minutes=PENDING_MINUTES),
        }  # fmt: skip
        await bench.accounts.store.insert(PENDING, pending)
        response = RedirectResponse(started.url, status_code=303)
        # Lax: the IdP's redirect back is a top-level GET, which carries it.
        response.set_cookie(PENDING_COOKIE, cookie, max_age=PENDING_MINUTES * 60,
                            httponly=True, samesite="lax", path="/login/sso",
                            secure=bench.settings.cookie_secure)  # fmt: skip
        return response

    @router.get("/login/sso/callback", summary="The IdP's answer: a session for its person")
    async def callback(request: Request) -> Response:
        if bench.sso is None:
            return error_page(request, 404, "sso_off")
        pending = await _take(bench, request.cookies.get(PENDING_COOKIE, ""))
        try:
            if pending is None:
                raise Unauthenticated("no login under way in this browser (or it expired)")
            started = LoginStart("", pending["state"], pending["nonce"],
                                 pending["code_verifier"], pending["redirect_uri"])  # fmt: skip
            result = await complete_login(bench.sso, started, dict(request.query_params))
        except Unauthenticated as exc:
            bench.logins.labels("sso", "refused").inc()
            return error_page(request, 401, "sso_refused", str(exc))
        cookie = await bench.accounts.open_session(result.identity)
        bench.logins.labels("sso", "ok").inc()
        done = bench.logged_in(pending["next"], cookie)
        done.delete_cookie(PENDING_COOKIE, path="/login/sso")
        return done

    return router


async def _take(bench: Workbench, cookie: str) -> dict[str, Any] | None:
    """The pending login of this browser, taken once (a second callback finds none)."""
    if not cookie:
        return None
    key = digest(cookie)
    pending = await bench.accounts.store.get(PENDING, key)
    if pending is None or not await bench.accounts.store.delete(PENDING, key):
        return None
    expires = pending["expires_at"]
    expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)
    return pending if expires > dt.datetime.now(dt.UTC) else None
