"""The assessment figures' gauges from the cases' views on the real store (the tracker's path:
MongoCaseRepository.received and open_cases), for the cases of tests/unit/tracker/test_stats."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.figures_metrics import AssessmentFigures
from tests.unit.tracker.cases import T0
from tests.unit.tracker.test_stats import cases


async def test_the_gauges_carry_the_figures_of_the_stored_cases(
    stack: StackSettings, run_id: str
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    database = f"itest_figures_{run_id}"
    try:
        repo = MongoCaseRepository(client, database)
        for case in cases():
            assert await repo.save(replace(case, version=1), expected_version=0)
        await repo.flush()
        registry = CollectorRegistry()
        figures = AssessmentFigures(
            repo, domain.Rules.default().calendar, registry, window=timedelta(days=1)
        )
        await figures.refresh(T0 + timedelta(hours=12))

        def sample(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(f"fengqiao_tracker_{name}", labels)

        assert sample("unit_rate", unit="652701", rate="response") == 0.5
        assert sample("unit_rate", unit="652701", rate="satisfaction") == 1.0
        assert sample("tier_rate", tier="county", rate="resolution") == 0.5
        assert sample("unit_cases", unit="652701", count="volume") == 4
        assert sample("sla_breaches", unit="652701", breach="overdue") == 2
        assert sample("sla_breaches", unit="652701", breach="sign_late") == 1
    finally:
        await client.drop_database(database)
        await client.close()
