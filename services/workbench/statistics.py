"""统计 (statistics): the assessment figures of the caller's subtree — 响应率, 解决率, 满意率,
on-time share, median hours, overdue, returns, amounts recovered — per unit and tier, for a month
or the months chosen, with a bar per unit and a line over the months (SVG drawn on the server).

Every figure is the services' (the tracker's `GET /ops/stats/months`, the router's
`GET /ops/returns`), asked as the person: the workbench counts nothing itself."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fengqiao.services.workbench import charts
from fengqiao.services.workbench.pages import Workbench, api_error
from fengqiao.services.workbench.views import render

PERIODS = (3, 6, 12)
DEFAULT_MONTHS = 6
# The figures of a row: key in the tracker's statistics, label key, kind (how it is shown).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("volume", "st_volume", "count"),
    ("response_rate", "st_response", "rate"),
    ("resolution_rate", "st_resolution", "rate"),
    ("satisfaction_rate", "st_satisfaction", "rate"),
    ("on_time_rate", "st_on_time", "rate"),
    ("median_sign_hours", "st_sign_hours", "hours"),
    ("median_resolution_hours", "st_resolution_hours", "hours"),
    ("overdue_open", "st_overdue", "count"),
    ("returns", "st_returns", "count"),
    ("no_answer", "st_no_answer", "count"),
    ("amount_recovered", "st_amount", "amount"),
)
KINDS = {key: kind for key, _, kind in FIGURES}
RATES = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_rate")
DEFAULT_FIGURE = "resolution_rate"


def shown(key: str, value: Any) -> str:
    """A figure as people read it: rates in per cent, hours and yuan with their decimals."""
    if value is None:
        return "—"
    kind = KINDS.get(key, "count")
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:.1f}"
    if kind == "amount":
        return f"{value:,.2f}"
    return str(value)


def choice(request: Request) -> tuple[int, str, str]:
    """The months, the month (or "" for all of them) and the bars' figure asked for."""
    try:
        months = int(request.query_params.get("months") or DEFAULT_MONTHS)
    except ValueError:
        months = DEFAULT_MONTHS
    months = months if months in PERIODS else DEFAULT_MONTHS
    figure = request.query_params.get("figure") or DEFAULT_FIGURE
    figure = figure if figure in KINDS else DEFAULT_FIGURE
    return months, (request.query_params.get("month") or "")[:7], figure


def unit_bars(rows: list[dict[str, Any]], figure: str) -> charts.Bars:
    items = [(str(r.get("unit")), r.get(figure), shown(figure, r.get(figure))) for r in rows]
    return charts.bars(items, top=1.0 if KINDS[figure] == "rate" else None)


def month_lines(data: dict[str, Any]) -> charts.Lines:
    months = list(data.get("months", []))
    totals = [data["by_month"][m]["total"] for m in months]
    return charts.lines(months, {f"st_{k.removesuffix('_rate')}": [t.get(k) for t in totals]
                                 for k in RATES})  # fmt: skip


async def router_returns(bench: Workbench, request: Request) -> dict[str, int] | None:
    """The router's returned orders per unit of the subtree, or None when it cannot tell."""
    try:
        answer = await bench.call(request, "router", "GET", "/ops/returns")
    except httpx.HTTPError:
        return None
    if not answer.ok or not isinstance(answer.body, dict):
        return None
    return dict(sorted(answer.body.items(), key=lambda kv: (-kv[1], kv[0])))


def statistics_router(bench: Workbench) -> APIRouter:
    router = APIRouter(tags=["statistics"])

    @router.get("/stats", response_class=HTMLResponse, summary="统计: figures of the subtree")
    async def statistics(request: Request) -> Response:
        months, month, figure = choice(request)
        params = {"months": months}
        answer = await bench.call(request, "tracker", "GET", "/ops/stats/months", params=params)
        if not answer.ok or not isinstance(answer.body, dict):
            return api_error(request, answer)
        data = answer.body
        month = month if month in data.get("by_month", {}) else ""
        report = data["by_month"][month] if month else data["period"]
        return render(
            request, "statistics.html.j2", data=data, report=report, months=months,
            month=month, figure=figure, periods=PERIODS, figures=FIGURES, rates=RATES,
            shown=shown, bars=unit_bars(report["units"], figure), lines=month_lines(data),
            returns=await router_returns(bench, request), csrf=bench.csrf(request),
        )  # fmt: skip

    return router
