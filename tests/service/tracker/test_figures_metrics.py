"""The assessment figures and SLA breaches on the tracker's /metrics: for a known set of cases,
each gauge carries what `fengqiao stats` and supervision say of them."""

from __future__ import annotations

from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
from fengqiao.services.tracker.figures_metrics import AssessmentFigures
from tests.unit.tracker.cases import T0
from tests.unit.tracker.test_stats import cases

NOW = T0 + timedelta(hours=12)


async def scrape(repo: InMemoryCaseRepository, *, refresh: bool = True) -> dict[tuple, float]:
    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    calendar = domain.Rules.default().calendar
    # A day's window: c-old, received nine days before, is left out as test_stats's period does.
    figures = AssessmentFigures(repo, calendar, runtime.registry, window=timedelta(days=1))
    if refresh:
        await figures.refresh(NOW)
    app = http_app(runtime, description="tracker")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    return {
        (s.name, *sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        if family.name.startswith("fengqiao_tracker_")
        for s in family.samples
    }


async def stored(*known: domain.Case) -> InMemoryCaseRepository:
    repo = InMemoryCaseRepository()
    for case in known:
        assert await repo.save(case, expected_version=case.version - 1)
    return repo


async def test_the_assessment_rates_per_unit_and_tier() -> None:
    samples = await scrape(await stored(*cases()))

    def unit(rate: str) -> float | None:
        return samples.get(("fengqiao_tracker_unit_rate", ("rate", rate), ("unit", "652701")))

    # As test_stats's own figures of the same cases: a and b signed in time, c and d never.
    assert unit("response") == 0.5
    assert unit("resolution") == 0.5
    assert unit("satisfaction") == 1.0
    assert unit("on_time") == 1.0
    tier = ("fengqiao_tracker_tier_rate", ("rate", "resolution"), ("tier", "county"))
    assert samples[tier] == 0.5
    volume = ("fengqiao_tracker_unit_cases", ("count", "volume"), ("unit", "652701"))
    assert samples[volume] == 4
    overdue = ("fengqiao_tracker_unit_cases", ("count", "overdue_open"), ("unit", "652701"))
    assert samples[overdue] == 1
    assert samples[("fengqiao_tracker_figures_timestamp_seconds",)] > 0


async def test_sla_breaches_of_the_open_cases() -> None:
    samples = await scrape(await stored(*cases()))
    breach = "fengqiao_tracker_sla_breaches"
    # Open: c-c (dispatched, never signed, its clock ran out) and c-d (returned, its deadline
    # gone by at NOW); supervision counts both overdue, c-c also late to be signed for.
    assert samples[(breach, ("breach", "overdue"), ("unit", "652701"))] == 2
    assert samples[(breach, ("breach", "sign_late"), ("unit", "652701"))] == 1
    assert samples[(breach, ("breach", "escalated"), ("unit", "652701"))] == 0


async def test_before_the_first_computation_no_figures_and_no_timestamp() -> None:
    samples = await scrape(await stored(*cases()), refresh=False)
    assert samples[("fengqiao_tracker_figures_timestamp_seconds",)] == 0
    assert not any(key[0] == "fengqiao_tracker_unit_rate" for key in samples)
