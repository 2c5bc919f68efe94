"""分诊 (the triage queue): the posts triage and the router were unsure of (possibly urgent, an
uncertain appeal, category or place, a suggested earlier case), with the suggested routing and
its reasons, for dispatchers to confirm or correct, to link to or unlink from the suggested case,
or to merge into another case; auditors read it only.

Every page and action goes through the router's triage API (`/triage/...`) or the tracker's
merge (`/ops/cases/{id}/merge`) as the person logged in, so those services decide what they see
and may do (their subtree; the first ruling wins); the workbench only checks the forms first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.auth import Identity, Role
from fengqiao.contracts import CATEGORIES
from fengqiao.services.workbench import domain
from fengqiao.services.workbench.client import Answer
from fengqiao.services.workbench.forms import Form, FormError, text
from fengqiao.services.workbench.labels import LABELS
from fengqiao.services.workbench.pages import Workbench, api_error
from fengqiao.services.workbench.views import error_page, lang_of, render

PAGE_SIZE = 20
# The router's refusals, each as the words of the person's language (labels.py).
_REFUSALS = {403: "forbidden", 404: "triage_not_found", 409: "conflict", 422: "invalid"}
_LINKS = ("link", "unlink")
_CHOICE = {"": None, "yes": True, "no": False}
ACTIONS = ("confirm", "correct", "link", "unlink", "merge")


def correction(form: Form, units: set[str]) -> dict[str, Any]:
    """The router's `correct` body of the correction form; FormError names a wrong field.
    An empty field keeps what triage suggested; at least one must change something."""
    body: dict[str, Any] = {}
    unit = str(form.get("unit") or "").strip()
    if unit:
        if unit not in units:
            raise FormError(f"unit: {unit[:64]!r} is not a unit you may route to")
        body["unit"] = unit
    category = str(form.get("category") or "").strip()
    if category:
        if category not in CATEGORIES:
            raise FormError(f"category: {category[:64]!r} is not a category")
        body["category"] = category
    for field in ("urgent", "is_appeal"):
        raw = str(form.get(field) or "").strip()
        if raw not in _CHOICE:
            raise FormError(f"{field}: {raw[:16]!r} is not yes or no")
        if _CHOICE[raw] is not None:
            body[field] = _CHOICE[raw]
    if not body:
        raise FormError("nothing to correct: choose a unit, a category, the urgency or appeal")
    note = text(form, "note", required=False, limit=500)
    return {**body, **({"note": note} if note else {})}


def merge_body(form: Form) -> dict[str, Any]:
    """The tracker's merge body: the case this one duplicates, and why."""
    into = str(form.get("into") or "").strip()
    if not into:
        raise FormError("into is required")
    if len(into) > 64 or not all(c.isalnum() or c in "-_" for c in into):
        raise FormError(f"into: {into[:64]!r} is not a case id")
    note = text(form, "note", required=False, limit=500)
    return {"into": into, **({"note": note} if note else {})}


def bodies(form: Form, action: str, units: set[str]) -> dict[str, Any]:
    """The API body of one of the item page's forms."""
    if action == "correct":
        return correction(form, units)
    if action == "merge":
        return merge_body(form)
    note = text(form, "note", required=False, limit=500)
    link = {"link": {"link": "confirm", "unlink": "reject"}[action]} if action in _LINKS else {}
    return {**link, **({"note": note} if note else {})}


def age(received_at: str | None, now: dt.datetime, lang: str) -> str:
    """How long the post has waited: '3 小时前' / '2 d 4 h ago'."""
    hours = domain.remaining(received_at, now)
    if hours is None:
        return ""
    waited = domain.duration(-hours[0], lang)
    return f"{waited} ago" if lang == "en" else f"{waited}前"


def refusal(request: Request, answer: Answer) -> tuple[int, str]:
    """The status and the words of an API's refusal (a ruling made first names its person)."""
    words = LABELS[lang_of(request)]
    detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
    if answer.status == 409 and isinstance(detail, dict) and detail.get("ruling"):
        return 409, words["triage_ruled"].format(person=detail["ruling"].get("person", "?"))
    status = answer.status if answer.status in _REFUSALS else 503
    return status, f"{words[_REFUSALS.get(answer.status, 'unavailable')]}: {answer.detail}"


def triage_router(bench: Workbench) -> APIRouter:
    router = APIRouter(prefix="/triage", tags=["triage"])

    @router.get("", response_class=HTMLResponse, summary="分诊: the triage queue")
    async def queue(request: Request) -> Response:
        return await queue_page(bench, request)

    @router.get("/{item_id}", response_class=HTMLResponse, summary="分诊: one item")
    async def item(item_id: str, request: Request) -> Response:
        return await item_page(bench, request, item_id)

    for action in ACTIONS:
        router.add_api_route(
            f"/{{item_id}}/{action}", _act(bench, action), methods=["POST"],
            response_class=HTMLResponse, summary=f"分诊: {action} an item",
        )  # fmt: skip
    return router


async def units_of(bench: Workbench, request: Request) -> list[dict[str, str]]:
    """The units the person may route to (the router's directory, their subtree)."""
    answer = await bench.call(request, "router", "GET", "/triage/units")
    return answer.body if answer.ok and isinstance(answer.body, list) else []


async def queue_page(bench: Workbench, request: Request) -> Response:
    try:
        offset = max(int(request.query_params.get("offset") or 0), 0)
    except ValueError:
        offset = 0
    params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": min(offset, 100_000)}
    review = request.query_params.get("review") or ""
    if review:
        params["review"] = review[:32]
    answer = await bench.call(request, "router", "GET", "/triage/queue", params=params)
    if not answer.ok:
        return api_error(request, answer, _REFUSALS)
    items = answer.body.get("items", []) if isinstance(answer.body, dict) else []
    more = len(items) >= PAGE_SIZE
    next_offset = answer.body.get("next_offset", offset) if more else None
    names = {u["id"]: u["name"] for u in await units_of(bench, request)}
    now, lang = dt.datetime.now(dt.UTC), lang_of(request)

    def page_url(to: int) -> str:
        return "/triage?" + urlencode({**({"review": review} if review else {}), "offset": to})

    return render(
        request, "triage.html.j2", items=items, names=names, review=review,
        next_url=page_url(next_offset) if next_offset is not None else None,
        first_url=page_url(0) if offset else None, age=lambda at: age(at, now, lang),
    )  # fmt: skip


async def item_page(
    bench: Workbench, request: Request, item_id: str, *, error: str = "", status: int = 200
) -> Response:
    answer = await bench.call(request, "router", "GET", f"/triage/queue/{quote(item_id)}")
    if not answer.ok:
        return api_error(request, answer, _REFUSALS)
    who: Identity | None = getattr(request.state, "identity", None)
    units = await units_of(bench, request)
    words = LABELS[lang_of(request)]
    done = request.query_params.get("done")
    message = words["triage_done"].format(action=words[f"triage_{done}"]) if (
        done in ACTIONS) else ""  # fmt: skip
    lang = lang_of(request)
    return render(
        request, "triage_item.html.j2", status, item=answer.body, units=units,
        names={u["id"]: u["name"] for u in units}, categories=CATEGORIES,
        may_rule=who is not None and who.has(Role.DISPATCHER), csrf=bench.csrf(request),
        message=message, error=error,
        age=age(answer.body.get("received_at"), dt.datetime.now(dt.UTC), lang),
    )  # fmt: skip


def _act(bench: Workbench, action: str) -> Callable[..., Awaitable[Response]]:
    async def act(item_id: str, request: Request) -> Response:
        form = await request.form()
        words = LABELS[lang_of(request)]
        if not bench.csrf_holds(request, form):
            return error_page(request, 403, "csrf")
        units = {u["id"] for u in await units_of(bench, request)} if action == "correct" else set()
        try:
            body = bodies(form, action, units)
        except FormError as exc:
            return await item_page(bench, request, item_id, status=422,
                                   error=f"{words['invalid']}: {exc}")  # fmt: skip
        answer = await _send(bench, request, item_id, action, body)
        if answer.ok:
            query = urlencode({"done": action})
            return RedirectResponse(f"/triage/{quote(item_id)}?{query}", status_code=303)
        if answer.status not in (403, 404, 409, 422):
            return api_error(request, answer, _REFUSALS)
        status, error = refusal(request, answer)
        return await item_page(bench, request, item_id, error=error, status=status)

    act.__name__ = f"triage_{action}"
    return act


async def _send(
    bench: Workbench, request: Request, item_id: str, action: str, body: dict[str, Any]
) -> Answer:
    """Send one action: a ruling to the router, or a merge (of the item's case) to the tracker."""
    path = f"/triage/queue/{quote(item_id)}"
    if action != "merge":
        verb = "confirm" if action == "confirm" else "correct"
        return await bench.call(request, "router", "POST", f"{path}/{verb}", json=body)
    item = await bench.call(request, "router", "GET", path)
    if not item.ok:
        return item
    case_id = str(item.body.get("case_id", ""))
    if not item.body.get("opened_at_unit"):
        return Answer(409, {"detail": f"{case_id}: no case was opened for this post"})
    merge = f"/ops/cases/{quote(case_id)}/merge"
    return await bench.call(request, "tracker", "POST", merge, json=body)
