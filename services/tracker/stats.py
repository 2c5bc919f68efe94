"""Statistics per unit and per tier for a period: the assessment rates of the 12345 rules.

Pure: takes cases, returns rows. The cases come from their views (`cases`), only those received
in the period (`CaseRepository.received`): one small document per case, never their versions. A
case counts in the period it was received in, for the unit that leads it (the last of its chain)
and for that unit's tier (region, prefecture, county by the depth of the chain).

- volume            cases received
- response_rate     signed for (签收) in time / cases with a signing clock (响应率)
- resolution_rate   resolved (办结, then or later called back and closed) / volume (解决率)
- satisfaction_rate satisfied + basically satisfied / callbacks answered (满意率); unanswered
                    callbacks are counted apart (`no_answer`)
- on_time_rate      resolved by the deadline / resolved
- median_sign_hours, median_resolution_hours   from the final dispatch / from the receipt
- overdue_open      open cases past their deadline
- returns           orders returned (退单)
- amount_recovered  yuan
- merged            duplicates merged into another case (counted apart, not in the rest)

A unit's row also names its account (`handle`, e.g. @博乐检察) as its cases' dispatches do.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from fengqiao.contracts import CaseState
from fengqiao.services.tracker.domain import OPEN_STATES, Case, Satisfaction

TIERS = ("region", "prefecture", "county")
RESOLVED_STATES = frozenset({CaseState.RESOLVED, CaseState.CALLBACK_PENDING, CaseState.CLOSED})


@dataclass
class Tally:
    """The counts of a unit, a tier or a period's cases (also the public page's cells)."""

    volume: int = 0
    signing_clocks: int = 0
    signed_in_time: int = 0
    resolved: int = 0
    resolved_in_time: int = 0
    answered: int = 0
    satisfied: int = 0
    no_answer: int = 0
    overdue_open: int = 0
    returns: int = 0
    amount_recovered: float = 0.0
    merged: int = 0
    sign_hours: list[float] = field(default_factory=list)
    resolution_hours: list[float] = field(default_factory=list)

    def add(self, case: Case) -> None:
        if case.state is CaseState.MERGED:
            self.merged += 1  # the case it duplicates counts
            return
        self.volume += 1
        self.returns += case.returns
        if case.sign_due is not None:
            self.signing_clocks += 1
            self.signed_in_time += bool(case.signed_in_time)
        final = [h for h in case.hops if h["final"]]
        if case.signed_at and final:
            dispatched = dt.datetime.fromisoformat(final[-1]["at"])
            self.sign_hours.append(_hours(dispatched, case.signed_at))
        if case.state in RESOLVED_STATES and case.resolved_at:
            self.resolved += 1
            self.resolved_in_time += bool(case.resolved_in_time)
            if case.received_at:
                received = dt.datetime.fromisoformat(case.received_at)
                self.resolution_hours.append(_hours(received, case.resolved_at))
            self.amount_recovered += case.amount_recovered or 0.0
        if case.satisfaction == Satisfaction.NO_ANSWER.value:
            self.no_answer += 1
        elif case.satisfaction is not None:
            self.answered += 1
            self.satisfied += case.satisfaction in {
                Satisfaction.SATISFIED.value,
                Satisfaction.BASICALLY.value,
            }
        if case.state in OPEN_STATES and case.overdue:
            self.overdue_open += 1

    def row(self, key: dict[str, str | None]) -> dict[str, object]:
        return {
            **key,
            "volume": self.volume,
            "response_rate": _rate(self.signed_in_time, self.signing_clocks),
            "resolution_rate": _rate(self.resolved, self.volume),
            "satisfaction_rate": _rate(self.satisfied, self.answered),
            "on_time_rate": _rate(self.resolved_in_time, self.resolved),
            "median_sign_hours": _median(self.sign_hours),
            "median_resolution_hours": _median(self.resolution_hours),
            "overdue_open": self.overdue_open,
            "returns": self.returns,
            "no_answer": self.no_answer,
            "amount_recovered": round(self.amount_recovered, 2),
            "merged": self.merged,
        }


def _hours(start: dt.datetime, end: str) -> float:
    return (dt.datetime.fromisoformat(end) - start).total_seconds() / 3600


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def tier_of(case: Case) -> str | None:
    return TIERS[min(len(case.chain), len(TIERS)) - 1] if case.chain else None


@dataclass(frozen=True)
class Report:
    since: dt.datetime
    until: dt.datetime
    units: list[dict[str, object]]
    tiers: list[dict[str, object]]
    total: dict[str, object]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "since": self.since.isoformat(), "until": self.until.isoformat()}


DEFAULT_PERIOD = dt.timedelta(days=30)


def period(
    since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The period asked for: `until` defaults to now, `since` to 30 days before it. ValueError
    when an end has no time zone or the period is empty."""
    until = until or now
    since = since or until - DEFAULT_PERIOD
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise ValueError(f"{name} needs a time zone, e.g. 2026-11-01T00:00:00+08:00")
    if since >= until:
        raise ValueError(f"since {since.isoformat()} is not before until {until.isoformat()}")
    return since, until


def compute(
    cases: Iterable[Case], since: dt.datetime, until: dt.datetime, *, unit: str | None = None
) -> Report:
    """The statistics of the cases received in [since, until) (only `unit`'s and those below it
    when given)."""
    units: dict[str, Tally] = {}
    handles: dict[str, str | None] = {}  # a unit's account (@…), as its cases name it
    tiers: dict[str, Tally] = {}
    total = Tally()
    for case in cases:
        if not case.opened or case.received_at is None:
            continue
        received = dt.datetime.fromisoformat(case.received_at)
        if not since <= received < until:
            continue
        if unit is not None and not case.visible_to(unit):
            continue
        lead = case.assigned_unit or "(not dispatched)"
        units.setdefault(lead, Tally()).add(case)
        handles[lead] = handles.get(lead) or case.assigned_handle
        tiers.setdefault(tier_of(case) or "(not dispatched)", Tally()).add(case)
        total.add(case)
    return Report(
        since=since,
        until=until,
        units=[units[u].row({"unit": u, "handle": handles.get(u)}) for u in sorted(units)],
        tiers=[tiers[t].row({"tier": t}) for t in sorted(tiers, key=_tier_order)],
        total=total.row({}),
    )


def _tier_order(tier: str) -> int:
    return TIERS.index(tier) if tier in TIERS else len(TIERS)
