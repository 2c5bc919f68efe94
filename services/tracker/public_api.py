"""The public page and its data (issue 19, deliver 6): no login, aggregates only (`public`).

    GET /public            the page (Simplified Chinese; `?lang=en` in English), charts in SVG
    GET /public/summary    the same figures as JSON

Both answer from a summary computed at most once a minute per number of months (anyone may call
them, so a flood of calls costs one read of the period's case views a minute, not one a call).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from fengqiao.services.tracker import public
from fengqiao.services.tracker.domain import Case

CACHE_SECONDS = 60.0
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)

Months = Annotated[int, Query(ge=1, le=public.MAX_MONTHS, description="Months, newest last.")]
Received = Callable[[dt.datetime, dt.datetime], Awaitable[list[Case]]]

LABELS = {
    "zh": {
        "title": "新疆检察 · 群众诉求办理情况",
        "lede": "各地州市检察机关受理、办结群众诉求的情况，按受理月份统计。只公布汇总数字；"
        "不足 {min} 件的格子不公布。",
        "received": "受理",
        "resolution": "办结率",
        "on_time": "按时办结率",
        "satisfaction": "满意率",
        "prefecture": "地区",
        "total": "全区",
        "small": "不足{min}件",
        "none": "—",
        "other": "English",
        "chart": "每月受理与办结",
        "resolved": "办结",
    },
    "en": {
        "title": "Xinjiang procuratorate · citizens' appeals",
        "lede": "Appeals received and resolved by the procuratorates of each prefecture, by month "
        "received. Aggregates only; cells of fewer than {min} cases are not published.",
        "received": "received",
        "resolution": "resolved",
        "on_time": "on time",
        "satisfaction": "satisfied",
        "prefecture": "prefecture",
        "total": "whole region",
        "small": "< {min}",
        "none": "—",
        "other": "中文",
        "chart": "Received and resolved per month",
        "resolved": "resolved",
    },
}


class _Cached:
    def __init__(self, received: Received, tz: ZoneInfo, prefectures: public.Prefectures) -> None:
        self.received, self.tz, self.prefectures = received, tz, prefectures
        self.entries: dict[int, tuple[float, dict[str, Any]]] = {}
        self.lock = asyncio.Lock()

    async def summary(self, months: int) -> dict[str, Any]:
        async with self.lock:  # one read at a time, the others wait for its result
            at, value = self.entries.get(months, (float("-inf"), {}))
            if time.monotonic() - at < CACHE_SECONDS:
                return value
            now = dt.datetime.now(dt.UTC)
            wanted = public.months(now, months, self.tz)
            cases = await self.received(public.start_of(wanted[0], self.tz), now)
            value = public.summary(cases, wanted, self.prefectures, self.tz)
            self.entries[months] = (time.monotonic(), value)
            return value


def public_router(received: Received, tz: ZoneInfo) -> APIRouter:
    router = APIRouter(prefix="/public", tags=["public"])
    cached = _Cached(received, tz, public.Prefectures.load())

    @router.get("/summary", summary="Appeals per prefecture and month: aggregates only")
    async def summary(months: Months = 12) -> dict[str, Any]:
        return await cached.summary(months)

    @router.get("", response_class=HTMLResponse, summary="The public page (no login)")
    async def page(
        request: Request, months: Months = 12, lang: Literal["zh", "en"] = "zh"
    ) -> HTMLResponse:
        data = await cached.summary(months)
        labels = {k: v.format(min=public.MIN_CELL) for k, v in LABELS[lang].items()}
        html = TEMPLATES.get_template("public.html.j2").render(
            data=data, t=labels, lang=lang, months=months, bars=_bars(data)
        )
        return HTMLResponse(html, headers={"Cache-Control": f"public, max-age={CACHE_SECONDS:.0f}"})

    return router


def _bars(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's bars: each month's received and resolved cases of the whole region, scaled to
    the largest month (heights in the SVG's units, 0–100)."""
    totals = [(m, data["total"][m]) for m in data["months"]]
    top = max(((t or {}).get("received", 0) for _, t in totals), default=0) or 1
    bars = []
    for month, total in totals:
        received = (total or {}).get("received", 0)
        rate = (total or {}).get("resolution_rate")
        resolved = round(received * rate) if rate is not None else None
        bars.append(
            {
                "month": month,
                "small": bool((total or {}).get("suppressed")),
                "received": received,
                "resolved": resolved,
                "h_received": round(100 * received / top),
                "h_resolved": round(100 * (resolved or 0) / top),
            }
        )
    return bars
