"""Figures over the caller's subtree for the upper tiers (issue 19, deliver 5: the workbench's
督办 and 统计 pages), beside `GET /ops/stats`:

    GET /ops/supervision     the open cases per lead unit: overdue, late to sign, due within
                             `soon_hours` working hours, escalated (`supervision`), worst first
    GET /ops/stats/months    the statistics (`stats`) of each of the last `months` calendar
                             months (in the calendar's time zone) and of them together

Both count only the cases the caller's unit sees (its own and those below it, never a
sibling's or a parent's: `policy.sees`), for the roles the policy names (FIGURES).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations as objects.

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from fengqiao.auth import Identity, policy
from fengqiao.services.tracker import public, stats, supervision
from fengqiao.services.tracker.adapters.cases import CaseRepository
from fengqiao.services.tracker.workcalendar import WorkCalendar

Months = Annotated[int, Query(ge=1, le=public.MAX_MONTHS, description="Months, newest last.")]
SoonHours = Annotated[
    float, Query(gt=0, le=240, description="Working hours that make a deadline soon.")
]


def figures_router(repo: CaseRepository, calendar: WorkCalendar, caller: Any) -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["operators"])

    @router.get("/supervision", summary="督办: open, overdue, soon-due, escalated cases per unit")
    async def supervise(soon_hours: SoonHours = 24, who: Identity = caller) -> dict[str, Any]:
        seen = [c for c in await repo.open_cases() if policy.sees(who, c.chain, c.co_units)]
        soon = dt.timedelta(hours=soon_hours)
        return supervision.supervise(seen, dt.datetime.now(dt.UTC), calendar, soon)

    @router.get("/stats/months", summary="Statistics per unit and tier for each recent month")
    async def by_month(months: Months = 6, who: Identity = caller) -> dict[str, Any]:
        return await monthly(repo, calendar, months, who, dt.datetime.now(dt.UTC))

    return router


async def monthly(
    repo: CaseRepository, calendar: WorkCalendar, months: int, who: Identity, now: dt.datetime
) -> dict[str, Any]:
    """Each month's statistics of the cases the caller sees, and the months' together."""
    tz = calendar.timezone
    wanted = public.months(now, months, tz)
    starts = [public.start_of(m, tz) for m in wanted]
    ends = [*starts[1:], _next_month(starts[-1])]
    received = await repo.received(starts[0], ends[-1])
    seen = [c for c in received if policy.sees(who, c.chain, c.co_units)]
    return {
        "months": wanted,
        "time_zone": str(tz),
        "by_month": {
            m: stats.compute(seen, s, e).as_dict()
            for m, s, e in zip(wanted, starts, ends, strict=True)
        },
        "period": stats.compute(seen, starts[0], ends[-1]).as_dict(),
    }


def _next_month(start: dt.datetime) -> dt.datetime:
    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    return start.replace(year=year, month=month)
