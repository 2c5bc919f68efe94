"""The triage queue's depth gauge over the in-memory queue: waiting items, urgent or not."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from fengqiao.services.router.adapters.triage_queue import InMemoryTriageQueue
from fengqiao.services.router.triage import Correction, Ruling
from fengqiao.services.router.triage_depth import TriageDepth
from tests.integration.test_triage_queue_store import T0, item


def pending(registry: CollectorRegistry, urgent: str) -> float | None:
    return registry.get_sample_value("fengqiao_router_triage_pending", {"urgent": urgent})


async def test_rulings_take_items_off_the_count() -> None:
    queue, registry = InMemoryTriageQueue(), CollectorRegistry()
    depth = TriageDepth(queue, registry)
    await depth.refresh()
    assert (pending(registry, "true"), pending(registry, "false")) == (0, 0)
    for n, urgent in ((1, True), (2, True), (3, False)):
        await queue.add(item(n, urgent=urgent))
    await queue.rule(Ruling.of(item(1, urgent=True), Correction(), person="p", unit="xj", at=T0))
    await depth.refresh()
    assert (pending(registry, "true"), pending(registry, "false")) == (1, 1)
