"""The workbench's pages: login and logout, the inbox (收件箱) and a case (案件) with the actions
the person's roles allow, each done through the tracker's unit API as that person."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from prometheus_client import CollectorRegistry, Counter

from fengqiao.auth import Identity, Role
from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import SESSION_COOKIE
from fengqiao.auth.identity import Unauthenticated
from fengqiao.auth.oidc import OidcVerifier
from fengqiao.services.workbench import codes, domain
from fengqiao.services.workbench.client import Answer, Api, UnitNames
from fengqiao.services.workbench.codes import RETURN_REASONS
from fengqiao.services.workbench.forms import ACTIONS, RULINGS, Form, FormError, rulings_for
from fengqiao.services.workbench.labels import LABELS
from fengqiao.services.workbench.settings import WorkbenchSettings
from fengqiao.services.workbench.views import error_page, lang_of, render

LOGIN_CSRF = "fengqiao_login_csrf"
_API_ERRORS = {403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid"}
_PAGE = {"text/html": {"schema": {"type": "string"}}}
# What logging in answers besides the form (declared in the OpenAPI; each the form again).
LOGIN_ANSWERS: dict[int | str, dict[str, Any]] = {
    303: {"description": "Logged in: on to the page asked for, with the session's cookie"},
    401: {"description": "The form again: wrong username or password", "content": _PAGE},
    403: {"description": "The form again: its CSRF token does not hold", "content": _PAGE},
    429: {"description": "The form again: too many failed logins (Retry-After)", "content": _PAGE},
}
_LOGIN: dict[str, Any] = {
    "response_class": HTMLResponse,
    "summary": "Log in (username, password)",
    "responses": LOGIN_ANSWERS,
}
_FORMS = {**ACTIONS, **RULINGS}  # the case page's forms: a person's actions, a lead's rulings


@dataclass
class Workbench:
    settings: WorkbenchSettings
    accounts: Accounts
    apis: dict[str, Api]  # by service: tracker, router, notifier
    csrf_key: bytes
    limiter: domain.LoginLimiter
    sso: OidcVerifier | None = None  # the single sign-on, when configured (sso.py)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    unit_names: UnitNames = field(default_factory=UnitNames)

    def __post_init__(self) -> None:
        self.logins = Counter(
            "fengqiao_workbench_logins_total",
            "Logins to the workbench by way (password, sso) and outcome (ok, refused, limited)",
            ["way", "outcome"],
            registry=self.registry,
        )

    @property
    def tracker(self) -> Api:
        return self.apis["tracker"]

    async def call(
        self, request: Request, service: str, method: str, path: str, **kwargs: Any
    ) -> Answer:
        """`service`'s answer to `method path`, asked as the person of `request`."""
        return await self.apis[service].call(self.session(request), method, path, **kwargs)

    async def prepare(self, request: Request) -> None:
        """For every page (a dependency): the logout form's CSRF token, and units by name."""
        request.state.csrf = self.csrf(request)
        request.state.unit_names = self.unit_names
        session = self.session(request)
        if session and self.unit_names.due():
            await self.unit_names.refresh(self.apis["router"], session)

    def logged_in(self, next_path: str, cookie: str) -> RedirectResponse:
        """On to `next_path` with the new session's cookie (HttpOnly, SameSite=Lax)."""
        done = RedirectResponse(next_path, status_code=303)
        done.set_cookie(
            SESSION_COOKIE, cookie, httponly=True, samesite="lax", path="/",
            secure=self.settings.cookie_secure,
            max_age=int(self.accounts.settings.session_hours * 3600),
        )  # fmt: skip
        return done

    def session(self, request: Request) -> str:
        return request.cookies.get(SESSION_COOKIE, "")

    def csrf(self, request: Request) -> str:
        session = self.session(request)
        return domain.csrf_token(self.csrf_key, session) if session else ""

    def csrf_holds(self, request: Request, form: Form) -> bool:
        session = self.session(request)
        given = str(form.get("csrf") or "")
        return bool(session) and domain.csrf_ok(self.csrf_key, session, given)


def form_body(fields: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a page's form (read by the page, not by FastAPI): its fields,
    a note, and the session's CSRF token."""
    names = ["csrf", *dict.fromkeys([*fields, "note"])]
    schema = {"type": "object", "required": ["csrf"],
              "properties": {name: {"type": "string"} for name in names}}  # fmt: skip
    form = {"application/x-www-form-urlencoded": {"schema": schema}}
    return {"requestBody": {"required": True, "content": form}}


def login_url(next_path: str = "/") -> str:
    return "/login?" + urlencode({"next": next_path}) if next_path not in ("", "/") else "/login"


def safe_next(value: str | None) -> str:
    """Only a path of this site (no `//host`, no scheme): never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def login_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["login"])

    def login_form(request: Request, status: int = 200, error: str = "") -> HTMLResponse:
        token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
        next_path = safe_next(request.query_params.get("next"))
        response = render(request, "login.html.j2", status, csrf=token, next=next_path,
                          error=error, sso=bench.sso is not None)  # fmt: skip
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                            secure=bench.settings.cookie_secure)  # fmt: skip
        return response

    @router.get("/login", response_class=HTMLResponse, summary="The login page")
    async def login_page(request: Request) -> HTMLResponse:
        return login_form(request)

    @router.post("/login", **_LOGIN)
    async def login(request: Request) -> Response:
        form = await request.form()
        words = LABELS[lang_of(request)]
        expected = request.cookies.get(LOGIN_CSRF, "")
        given = str(form.get("csrf") or "")
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            return login_form(request, 403, words["csrf"])
        username = str(form.get("username") or "").strip().lower()[:64]
        password = str(form.get("password") or "")[:1024]
        address = request.client.host if request.client else "?"
        wait = bench.limiter.retry_after(username, address)
        if wait:
            bench.logins.labels("password", "limited").inc()
            response = login_form(request, 429, words["too_many"].format(s=wait))
            response.headers["Retry-After"] = str(wait)
            return response
        try:
            cookie, _ = await bench.accounts.login(username, password)
        except Unauthenticated:
            bench.logins.labels("password", "refused").inc()
            bench.limiter.failed(username, address)
            return login_form(request, 401, words["wrong_login"])
        bench.limiter.succeeded(username)
        bench.logins.labels("password", "ok").inc()
        done = bench.logged_in(safe_next(str(form.get("next") or "/")), cookie)
        done.delete_cookie(LOGIN_CSRF)
        return done

    @router.post("/logout", summary="Log out: the session ends on the server")
    async def logout(request: Request) -> Response:
        form = await request.form()
        if not bench.csrf_holds(request, form):
            return error_page(request, 403, "csrf")
        await bench.accounts.logout(bench.session(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


def api_error(
    request: Request,
    answer: Answer,
    refusals: Mapping[int, str] = _API_ERRORS,
    *,
    next_path: str | None = None,
) -> Response:
    """A service's refusal as a page in the person's words (`refusals`: status → word key;
    anything else is 503): 401 (the session ended) back to the login page, then to `next_path`
    (the page asked for by default)."""
    if answer.status == 401:
        return RedirectResponse(login_url(next_path or request.url.path), status_code=303)
    key = refusals.get(answer.status, "unavailable")
    status = answer.status if answer.status in refusals else 503
    return error_page(request, status, key, answer.detail)


def case_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["cases"])

    @router.get("/", response_class=HTMLResponse, summary="收件箱: my unit's cases")
    async def inbox(request: Request) -> Response:
        filters = domain.Filters.of(dict(request.query_params))
        params: dict[str, Any] = {"limit": 500}
        if filters.asked_state:
            params["state"] = filters.asked_state
        answer = await bench.call(request, "tracker", "GET", "/units/me/cases", params=params)
        if not answer.ok:
            return api_error(request, answer)
        cases = answer.body if isinstance(answer.body, list) else []
        page = domain.inbox(cases, filters, dt.datetime.now(dt.UTC))

        def page_url(number: int) -> str:
            query = {k: v for k, v in request.query_params.items() if k not in ("page", "lang")}
            return "/?" + urlencode({**query, "page": number})

        return render(
            request, "inbox.html.j2", page=page, filters=filters, page_url=page_url,
            states=domain.STATES, done=domain.DONE_STATES,
            categories=sorted({c["category"] for c in cases if c.get("category")}),
            urgencies=sorted({c["urgency"] for c in cases if c.get("urgency")}),
        )  # fmt: skip

    @router.get("/cases/{case_id}", response_class=HTMLResponse, summary="案件: one case")
    async def case(case_id: str, request: Request) -> Response:
        return await case_page(bench, request, case_id)

    for name in _FORMS:
        router.add_api_route(
            f"/cases/{{case_id}}/{name}", _action(bench, name), methods=["POST"],
            response_class=HTMLResponse, summary=f"{_FORMS[name].label} through its API",
            openapi_extra=form_body(_FORMS[name].fields),
        )  # fmt: skip
    return router


async def case_page(
    bench: Workbench, request: Request, case_id: str, *, error: str = "", status: int = 200
) -> Response:
    answer = await bench.call(request, "tracker", "GET", f"/units/me/cases/{quote(case_id)}")
    if not answer.ok:
        return api_error(request, answer)
    who: Identity | None = getattr(request.state, "identity", None)
    may_act = who is not None and who.has(Role.HANDLER, Role.UNIT_LEAD)
    done_case = isinstance(answer.body, dict) and answer.body.get("state") in domain.DONE_STATES
    actions = {k: a for k, a in ACTIONS.items() if not done_case or k == "notes"}
    done = request.query_params.get("done")
    words = LABELS[lang_of(request)]
    message = ""
    if done in _FORMS:
        state = request.query_params.get("state")
        action = words[_FORMS[done].label]
        message = (
            words["done"].format(action=action, state=codes.name("state", state, lang_of(request)))
            if state
            else words["queued"].format(action=action)
        )
    return render(
        request, "case.html.j2", status, case=answer.body, actions=actions if may_act else {},
        csrf=bench.csrf(request), message=message, error=error,
        return_reasons=RETURN_REASONS,
        rulings=rulings_for(who, answer.body if isinstance(answer.body, dict) else {}),
    )  # fmt: skip


def _action(bench: Workbench, name: str) -> Callable[..., Awaitable[Response]]:
    spec = _FORMS[name]

    async def act(case_id: str, request: Request) -> Response:
        form = await request.form()
        words = LABELS[lang_of(request)]
        if not bench.csrf_holds(request, form):
            return error_page(request, 403, "csrf")
        try:
            body = spec.body(form)
        except FormError as exc:
            return await case_page(bench, request, case_id, error=f"{words['invalid']}: {exc}",
                                   status=422)  # fmt: skip
        path = spec.api.format(case_id=quote(case_id), name=name)
        answer = await bench.call(request, spec.service, "POST", path, json=body)
        if answer.ok:
            state = answer.body.get("state") if isinstance(answer.body, dict) else None
            query = urlencode({"done": name, **({"state": state} if state else {})})
            return RedirectResponse(f"/cases/{quote(case_id)}?{query}", status_code=303)
        if answer.status not in (403, 409, 422):
            return api_error(request, answer)
        error = f"{words[_API_ERRORS[answer.status]]}: {answer.detail}"
        return await case_page(bench, request, case_id, error=error, status=answer.status)

    act.__name__ = f"act_{name.replace('-', '_').replace('/', '_')}"
    return act
