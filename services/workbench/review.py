"""回复审核 (reply review): the public replies the notifier holds for a reviewer (a sensitive
category, an urgent case, an uncertain routing, or an earlier attempt of unknown outcome), each
with its case, channel, why it waits, the text as it would be posted and how long it has waited.
A reviewer approves it as it is or with a text of their own, or rejects it with a reason; all
through the notifier's API as the person (`/ops/replies/...`), which checks the role again,
checks an edited text by the rules of every reply (its 422 is shown here, the text kept) and
appends the receipt code. Auditors and ops read the page without its forms."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.auth import Identity, Role
from fengqiao.services.workbench import codes, domain
from fengqiao.services.workbench.forms import Form, FormError, text
from fengqiao.services.workbench.labels import LABELS
from fengqiao.services.workbench.pages import Workbench, api_error
from fengqiao.services.workbench.views import error_page, lang_of, render

HELD = "/ops/replies/held"
# The notifier's refusals, as the person reads them.
_REFUSALS = {403: "reply_forbidden", 404: "reply_decided", 409: "reply_decided",
             422: "reply_refused"}  # fmt: skip


def waited(held_at: str | None, now: dt.datetime, lang: str) -> str:
    """How long a reply has waited: '2 小时 5 分' / '2 h 5 min', '3 天 4 小时' / '3 d 4 h'."""
    hours = domain.remaining(held_at, now)
    return "—" if hours is None else domain.duration(-hours[0], lang)


def in_order(held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Urgent cases' replies first, then the longest waiting."""
    return sorted(held, key=lambda r: (not r.get("urgent"), str(r.get("held_at") or "")))


def lines(value: str) -> str:
    """A textarea's text as the notifier keeps it (the browser sends CRLF)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def approval(form: Form) -> dict[str, Any]:
    """The notifier's approve body: `text` only when the reviewer changed the reply."""
    body: dict[str, Any] = {"note": text(form, "note", required=False, limit=500) or ""}
    typed, held = lines(str(form.get("text") or "")), lines(str(form.get("original") or ""))
    if typed != held:
        if not typed:
            raise FormError("text_required")
        body["text"] = typed
    return body


def rejection(form: Form) -> dict[str, Any]:
    try:
        return {"note": text(form, "reason", limit=500)}
    except FormError as exc:
        raise FormError("reason_required" if "required" in str(exc) else str(exc)) from exc


async def review_page(
    bench: Workbench, request: Request, *, error: str = "", status: int = 200,
    typed: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """The held replies; `typed`: a reviewer's text to show again in its reply's form."""
    answer = await bench.call(request, "notifier", "GET", HELD)
    if not answer.ok:
        return api_error(request, answer)
    held = in_order(answer.body if isinstance(answer.body, list) else [])
    who: Identity | None = getattr(request.state, "identity", None)
    lang, now = lang_of(request), dt.datetime.now(dt.UTC)
    words = LABELS[lang]
    message = ""
    done, case = request.query_params.get("done"), request.query_params.get("case") or "—"
    if done in ("approved", "rejected"):
        state = codes.name("reply_status", request.query_params.get("status"), lang)
        message = words[done].format(case=case, status=state)
    return render(
        request, "review.html.j2", status, held=held, typed=typed or {}, error=error,
        message=message, csrf=bench.csrf(request), quote=lambda k: quote(k, safe=""),
        may_decide=who is not None and who.has(Role.REVIEWER),
        waited=lambda at: waited(at, now, lang),
    )  # fmt: skip


def review_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["reply review"])

    @router.get("/replies", response_class=HTMLResponse, summary="回复审核: held public replies")
    async def replies(request: Request) -> Response:
        return await review_page(bench, request)

    @router.post(
        "/replies/{key}/approve",
        response_class=HTMLResponse,
        summary="Approve a held reply, as it is or edited, through the notifier",
    )
    async def approve(key: str, request: Request) -> Response:
        return await decide(bench, request, key, "approve")

    @router.post(
        "/replies/{key}/reject",
        response_class=HTMLResponse,
        summary="Reject a held reply (a reason) through the notifier",
    )
    async def reject(key: str, request: Request) -> Response:
        return await decide(bench, request, key, "reject")

    return router


async def decide(bench: Workbench, request: Request, key: str, verb: str) -> Response:
    form = await request.form()
    if not bench.csrf_holds(request, form):
        return error_page(request, 403, "csrf")
    words = LABELS[lang_of(request)]
    typed = {key: str(form.get("text") or "")} if "text" in form else {}
    try:
        body = approval(form) if verb == "approve" else rejection(form)
    except FormError as exc:
        error = f"{words['invalid']}: {words.get(str(exc), str(exc))}"
        return await review_page(bench, request, error=error, status=422, typed=typed)
    path = f"/ops/replies/{quote(key, safe='')}/{verb}"
    answer = await bench.call(request, "notifier", "POST", path, json=body)
    if answer.ok:
        result = answer.body if isinstance(answer.body, dict) else {}
        query = {
            "done": "approved" if verb == "approve" else "rejected",
            "case": result.get("case_id") or "",
            "status": result.get("status") or "",
        }
        return RedirectResponse("/replies?" + urlencode(query), status_code=303)
    if answer.status not in _REFUSALS:
        return api_error(request, answer)
    error = f"{words[_REFUSALS[answer.status]]}: {answer.detail}"
    return await review_page(bench, request, error=error, status=answer.status, typed=typed)
