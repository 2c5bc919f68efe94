"""督办 (supervision): for the upper tiers, the open cases of the units of their subtree, worst
first — overdue, escalated, late to sign, due within 24 working hours — each case a link.

The figures are the tracker's (`GET /ops/supervision`, over the caller's subtree, counted with
the tracker's working calendar); the workbench only shows them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fengqiao.services.workbench.pages import Workbench, api_error
from fengqiao.services.workbench.views import render

SOON_HOURS = 24


def supervise_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["supervision"])

    @router.get("/supervise", response_class=HTMLResponse, summary="督办: the subtree's units")
    async def supervise(request: Request) -> Response:
        params = {"soon_hours": SOON_HOURS}
        answer = await bench.call(request, "tracker", "GET", "/ops/supervision", params=params)
        if not answer.ok or not isinstance(answer.body, dict):
            return api_error(request, answer)
        return render(
            request, "supervise.html.j2", data=answer.body, csrf=bench.csrf(request),
            soon_hours=SOON_HOURS,
        )  # fmt: skip

    return router
