"""Supervision (督办) per unit of a subtree: pure, takes the open cases, returns rows.

For the upper tiers (issue 19, deliver 5): each lead unit with open cases, worst first, with

- open        open cases it leads
- overdue     open cases past their feedback deadline (the clock's `overdue`, or the deadline
              gone by before the sweep marked it)
- sign_late   dispatched and not signed for past the signing deadline
- soon        not overdue, the deadline within `soon` working time (the calendar's office hours
              on working days); a case waiting for the citizen (its clock paused) is not
- escalated   supervised by a tier above (`escalation_level` > 0: 纵督促), with that unit

and the cases behind those counts (overdue, late, soon or escalated), worst first, so each can be
opened. A case counts for the unit that leads it (the last of its chain).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fengqiao.contracts import CaseState
from fengqiao.services.tracker.domain import OPEN_STATES, Case
from fengqiao.services.tracker.workcalendar import WorkCalendar

NOT_DISPATCHED = "(not dispatched)"
SOON = dt.timedelta(hours=24)
CASES_PER_UNIT = 50  # the cases listed under a unit (the counts count them all)


def _at(value: str | dt.datetime | None) -> dt.datetime | None:
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) and value else value or None
    return at if at is None or at.tzinfo else at.replace(tzinfo=dt.UTC)


def working_hours_until(
    due: dt.datetime | None, now: dt.datetime, calendar: WorkCalendar
) -> float | None:
    """Working hours from `now` until `due` (negative: working hours past it), or None."""
    if due is None:
        return None
    if due >= now:
        return calendar.working_between(now, due).total_seconds() / 3600
    return -calendar.working_between(due, now).total_seconds() / 3600


def hours_left(case: Case, now: dt.datetime, calendar: WorkCalendar) -> float | None:
    """Working hours until the case's deadline (negative: working hours past it), or None."""
    return working_hours_until(_at(case.deadline), now, calendar)


def with_working_time(
    doc: dict[str, Any], now: dt.datetime, calendar: WorkCalendar
) -> dict[str, Any]:
    """A case's summary or view with its clocks' working time left (office hours on working
    days): `deadline_working_hours`, and `sign_due_working_hours` until it is signed; none for
    a case done or waiting for the citizen (its clocks are paused)."""
    running = doc.get("state") in {s.value for s in OPEN_STATES} and not doc.get("paused_since")
    for clock, stop in (("deadline", None), ("sign_due", "signed_at")):
        due = _at(doc.get(clock)) if running and not (stop and doc.get(stop)) else None
        doc[f"{clock}_working_hours"] = working_hours_until(due, now, calendar)
    return doc


def flags(
    case: Case, now: dt.datetime, calendar: WorkCalendar, soon: dt.timedelta
) -> dict[str, Any]:
    """What supervision sees in one open case."""
    deadline = _at(case.deadline)
    left = hours_left(case, now, calendar)
    overdue = case.overdue or (deadline is not None and deadline < now)
    sign_due = _at(case.sign_due)
    unsigned = case.state in {CaseState.DISPATCHED, CaseState.REOPENED} and not case.signed_at
    level = case.escalation_level
    return {
        "overdue": overdue,
        "sign_late": unsigned and sign_due is not None and sign_due < now,
        "soon": not overdue
        and case.paused_since is None
        and left is not None
        and left <= soon.total_seconds() / 3600,
        "escalated": level > 0,
        "hours_left": None if left is None else round(left, 1),
        "supervisor": case.chain[-1 - level] if 0 < level < len(case.chain) else None,
    }


@dataclass
class Row:
    unit: str
    handle: str | None = None
    open: int = 0
    overdue: int = 0
    sign_late: int = 0
    soon: int = 0
    escalated: int = 0
    cases: list[dict[str, Any]] = field(default_factory=list)

    def add(self, case: Case, seen: dict[str, Any]) -> None:
        self.handle = self.handle or case.assigned_handle
        self.open += 1
        for name in ("overdue", "sign_late", "soon", "escalated"):
            setattr(self, name, getattr(self, name) + bool(seen[name]))
        if seen["overdue"] or seen["sign_late"] or seen["soon"] or seen["escalated"]:
            self.cases.append(
                {
                    "case_id": case.case_id,
                    "state": case.state.value,
                    "category": case.category,
                    "urgency": case.urgency,
                    "deadline": case.deadline,
                    "escalation_level": case.escalation_level,
                    **seen,
                }
            )

    def worst(self) -> tuple[int, int, int, int, int]:
        return (-self.overdue, -self.escalated, -self.sign_late, -self.soon, -self.open)

    def as_dict(self) -> dict[str, Any]:
        cases = sorted(self.cases, key=_case_order)
        return {
            "unit": self.unit, "handle": self.handle, "open": self.open,
            "overdue": self.overdue, "sign_late": self.sign_late, "soon": self.soon,
            "escalated": self.escalated, "cases": cases[:CASES_PER_UNIT],
            "cases_left_out": max(0, len(cases) - CASES_PER_UNIT),
        }  # fmt: skip


def _case_order(case: dict[str, Any]) -> tuple[int, int, float]:
    """Overdue first, then the most escalated, then the least time left."""
    left = case["hours_left"]
    return (0 if case["overdue"] else 1, -case["escalation_level"],
            left if left is not None else float("inf"))  # fmt: skip


def supervise(
    cases: Iterable[Case], now: dt.datetime, calendar: WorkCalendar, soon: dt.timedelta = SOON
) -> dict[str, Any]:
    """The rows per lead unit of the open `cases` (the caller's subtree's), worst first."""
    rows: dict[str, Row] = {}
    total = Row("total")
    for case in cases:
        if case.state not in OPEN_STATES or not case.opened:
            continue
        seen = flags(case, now, calendar, soon)
        unit = case.assigned_unit or NOT_DISPATCHED
        rows.setdefault(unit, Row(unit)).add(case, seen)
        total.add(case, seen)
    ordered = sorted(rows.values(), key=lambda r: (*r.worst(), r.unit))
    summary = total.as_dict()
    summary.pop("cases"), summary.pop("cases_left_out"), summary.pop("handle")
    return {
        "now": now.isoformat(),
        "soon_hours": soon.total_seconds() / 3600,
        "units": [row.as_dict() for row in ordered],
        "total": summary,
    }
