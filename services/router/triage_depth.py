"""The triage queue's depth as a gauge: posts waiting for a person's ruling, urgent or not.

Counted from the store every `FENGQIAO_ROUTER_TRIAGE_DEPTH_SECONDS` (default 30), so every
router replica serves the same number (aggregate with max, not sum); a count that fails (the
store away) is logged and the last one stays.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Gauge

from fengqiao.runtime.periodic import every
from fengqiao.services.router.adapters.triage_queue import TriageQueue

log = logging.getLogger("fengqiao.router")


class TriageDepth:
    def __init__(self, queue: TriageQueue, registry: CollectorRegistry) -> None:
        self.queue = queue
        self.pending = Gauge(
            "fengqiao_router_triage_pending",
            "Posts in the triage queue waiting for a person's ruling, urgent or not",
            ["urgent"],
            registry=registry,
        )

    async def refresh(self) -> None:
        """Count the queue now."""
        for urgent, count in (await self.queue.depth()).items():
            self.pending.labels("true" if urgent else "false").set(count)

    async def run(self, interval: float) -> None:
        """Count at once, then every `interval` seconds until cancelled."""
        await every(interval, self.refresh, what="counting the triage queue")
