"""The assessment figures and SLA breaches as Prometheus gauges, for the Grafana dashboard.

`fengqiao stats` computes the figures on demand. The dashboard needs them scraped, and each scrape
cannot read every case. So the tracker recomputes them in the background every
`FENGQIAO_TRACKER_FIGURES_INTERVAL_SECONDS` (default 5 minutes) over the cases received in the
last `FENGQIAO_TRACKER_FIGURES_DAYS` (default 30): the same summary views and the same code as
`fengqiao stats` (stats.compute), and supervision's flags over the open cases
(supervision.supervise). A scrape only serves the last result, never half of one.

- fengqiao_tracker_unit_rate{unit, rate}   response, resolution, satisfaction, on_time (0..1);
                                           a rate with nothing to divide by is left out
- fengqiao_tracker_tier_rate{tier, rate}   the same per tier (region, prefecture, county)
- fengqiao_tracker_unit_cases{unit, count} volume, overdue_open, returns, no_answer, merged
- fengqiao_tracker_tier_cases{tier, count} the same per tier
- fengqiao_tracker_sla_breaches{unit, breach}  open cases now: overdue (past the deadline),
                                           sign_late (not signed for in time), escalated (督办)
- fengqiao_tracker_figures_timestamp_seconds  when they were computed (0: not yet)

Every tracker replica computes the same figures: aggregate with max, not sum.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from fengqiao.runtime.periodic import every
from fengqiao.services.tracker import stats, supervision
from fengqiao.services.tracker.adapters.cases import CaseRepository
from fengqiao.services.tracker.workcalendar import WorkCalendar

log = logging.getLogger("fengqiao.tracker")

RATES = ("response", "resolution", "satisfaction", "on_time")
COUNTS = ("volume", "overdue_open", "returns", "no_answer", "merged")
BREACHES = ("overdue", "sign_late", "escalated")


@dataclass(frozen=True)
class Figures:
    """One computation's samples: (labels, value) per gauge."""

    at: float = 0.0
    unit_rates: list[tuple[list[str], float]] = field(default_factory=list)
    tier_rates: list[tuple[list[str], float]] = field(default_factory=list)
    unit_cases: list[tuple[list[str], float]] = field(default_factory=list)
    tier_cases: list[tuple[list[str], float]] = field(default_factory=list)
    breaches: list[tuple[list[str], float]] = field(default_factory=list)


def _rates(key: str, rows: list[dict[str, Any]]) -> list[tuple[list[str], float]]:
    return [
        ([str(row[key]), rate], float(row[f"{rate}_rate"]))
        for row in rows
        for rate in RATES
        if row[f"{rate}_rate"] is not None
    ]


def _counts(key: str, rows: list[dict[str, Any]]) -> list[tuple[list[str], float]]:
    return [([str(row[key]), count], float(row[count])) for row in rows for count in COUNTS]


def figures_of(report: stats.Report, supervised: dict[str, Any], at: float) -> Figures:
    """The gauges' samples from a statistics report and a supervision summary."""
    return Figures(
        at=at,
        unit_rates=_rates("unit", report.units),
        tier_rates=_rates("tier", report.tiers),
        unit_cases=_counts("unit", report.units),
        tier_cases=_counts("tier", report.tiers),
        breaches=[
            ([row["unit"], breach], float(row[breach]))
            for row in supervised["units"]
            for breach in BREACHES
        ],
    )


class AssessmentFigures:
    """A collector on the service's registry serving the last figures computed."""

    def __init__(
        self,
        repo: CaseRepository,
        calendar: WorkCalendar,
        registry: CollectorRegistry,
        *,
        window: dt.timedelta = stats.DEFAULT_PERIOD,
    ) -> None:
        self.repo = repo
        self.calendar = calendar
        self.window = window
        self.figures = Figures()
        registry.register(self)

    async def refresh(self, now: dt.datetime | None = None) -> None:
        """Compute the figures of the cases received in the window up to `now`."""
        now = now or dt.datetime.now(dt.UTC)
        since = now - self.window
        report = stats.compute(await self.repo.received(since, now), since, now)
        supervised = supervision.supervise(await self.repo.open_cases(), now, self.calendar)
        self.figures = figures_of(report, supervised, time.time())

    async def run(self, interval: float) -> None:
        """Refresh at once, then every `interval` seconds until cancelled; a failure (the store
        away) is logged and the last figures stay (their timestamp says how old they are)."""
        await every(interval, self.refresh, what="computing the assessment figures")

    def collect(self) -> Iterator[Metric]:
        """The last figures (prometheus_client calls this on every scrape)."""
        f = self.figures
        families: list[tuple[str, str, list[str], list[tuple[list[str], float]]]] = [
            ("unit_rate", "Assessment rates per lead unit (响应率 解决率 满意率 on time), "
             "cases received in the window", ["unit", "rate"], f.unit_rates),
            ("tier_rate", "Assessment rates per tier, cases received in the window",
             ["tier", "rate"], f.tier_rates),
            ("unit_cases", "Cases per lead unit received in the window: volume, merged, "
             "overdue_open, returns, no_answer", ["unit", "count"], f.unit_cases),
            ("tier_cases", "Cases per tier received in the window", ["tier", "count"],
             f.tier_cases),
            ("sla_breaches", "Open cases per lead unit now overdue, not signed for in time, "
             "or escalated (督办)", ["unit", "breach"], f.breaches),
        ]  # fmt: skip
        for name, documentation, labels, samples in families:
            family = GaugeMetricFamily(f"fengqiao_tracker_{name}", documentation, labels=labels)
            for values, value in samples:
                family.add_metric(values, value)
            yield family
        yield GaugeMetricFamily(
            "fengqiao_tracker_figures_timestamp_seconds",
            "When the assessment figures were last computed (0: not yet)",
            value=f.at,
        )
