"""运维 (ops): the dead letters, for the `ops` role only, through the router's dead-letter API
(`/ops/dead-letters`, fengqiao/ops/http.py) as the person: counted per topic and status, each
with its error and its message with private data masked (the API masks them), replayed once or
purged with a reason. The router checks the role again, claims each replay once, and records
the person as the operator; the workbench reads no topic and no store."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.services.workbench.client import Answer
from fengqiao.services.workbench.forms import FormError, text
from fengqiao.services.workbench.labels import LABELS
from fengqiao.services.workbench.pages import Workbench, api_error
from fengqiao.services.workbench.views import error_page, lang_of, render

STATUSES = ("new", "replayed", "purged", "all")
_REFUSALS = {403: "forbidden", 404: "dlq_not_found", 409: "dlq_conflict", 422: "invalid"}
_API = "/ops/dead-letters"


def _refusal(request: Request, answer: Answer) -> Response:
    """The router's refusal as a page (401: log in again, then back to /ops)."""
    return api_error(request, answer, _REFUSALS, next_path="/ops")


def ops_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/ops", response_class=HTMLResponse, summary="运维: dead letters")
    async def dead_letters(request: Request) -> Response:
        shown = request.query_params.get("status", "new")
        shown = shown if shown in STATUSES else "new"
        answer = await bench.call(request, "router", "GET", _API, params={"status": shown})
        if not answer.ok:
            return _refusal(request, answer)
        words = LABELS[lang_of(request)]
        done, letter = request.query_params.get("done"), request.query_params.get("letter", "")
        message = words[f"dlq_{done}"].format(id=letter) if done in ("replayed", "purged") else ""
        body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
        return render(
            request, "ops.html.j2", counts=body.get("counts", {}), total=body.get("total", 0),
            letters=body.get("dead_letters", []), shown=shown, statuses=STATUSES,
            message=message,
        )  # fmt: skip

    @router.get(
        "/ops/dead-letters/{letter_id}", response_class=HTMLResponse, summary="One dead letter"
    )
    async def dead_letter(letter_id: str, request: Request) -> Response:
        return await _letter_page(bench, request, letter_id)

    @router.post(
        "/ops/dead-letters/{letter_id}/replay", response_class=HTMLResponse,
        summary="Replay a dead letter to its topic, once",
    )  # fmt: skip
    async def replay(letter_id: str, request: Request) -> Response:
        if not bench.csrf_holds(request, await request.form()):
            return error_page(request, 403, "csrf")
        answer = await bench.call(request, "router", "POST", f"{_API}/{quote(letter_id)}/replay")
        return _done(request, answer, "replayed", letter_id)

    @router.post(
        "/ops/dead-letters/{letter_id}/purge", response_class=HTMLResponse,
        summary="Purge a dead letter, with a reason",
    )  # fmt: skip
    async def purge(letter_id: str, request: Request) -> Response:
        form = await request.form()
        if not bench.csrf_holds(request, form):
            return error_page(request, 403, "csrf")
        try:
            reason = text(form, "reason", limit=500)
        except FormError as exc:
            words = LABELS[lang_of(request)]
            error = f"{words['invalid']}: {words['dlq_reason_needed']} ({exc})"
            return await _letter_page(bench, request, letter_id, error=error, status=422)
        path = f"{_API}/{quote(letter_id)}/purge"
        answer = await bench.call(request, "router", "POST", path, json={"reason": reason})
        return _done(request, answer, "purged", letter_id)

    return router


def _done(request: Request, answer: Answer, done: str, letter_id: str) -> Response:
    if not answer.ok:
        return _refusal(request, answer)
    query = urlencode({"done": done, "letter": letter_id})
    return RedirectResponse(f"/ops?{query}", status_code=303)


async def _letter_page(
    bench: Workbench, request: Request, letter_id: str, *, error: str = "", status: int = 200
) -> Response:
    answer = await bench.call(request, "router", "GET", f"{_API}/{quote(letter_id)}")
    if not answer.ok:
        return _refusal(request, answer)
    letter: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
    return render(request, "dead_letter.html.j2", status, letter=letter, error=error,
                  payload=_pretty(str(letter.get("payload", ""))))  # fmt: skip


def _pretty(payload: str) -> str:
    """The (masked) message, indented when it is JSON."""
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, indent=2)
    except ValueError:
        return payload
