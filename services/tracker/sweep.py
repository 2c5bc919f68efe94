"""The sweep that fires the cases' clocks, and the tracker's gauges."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.timers import Timer, Timers, fire_due
from fengqiao.services.tracker.unit_of_work import UnitOfWork

log = logging.getLogger("fengqiao.tracker")

SWEEP_LIMIT = 500  # timers fired in one pass


class Tracker:
    """The registered subscribers' unit of work, and the sweep that fires the clocks."""

    def __init__(
        self, work: UnitOfWork, timers: Timers, rules: domain.Rules, registry: CollectorRegistry
    ) -> None:
        self.work = work
        self.timers = timers
        self.rules = rules
        self.registry = registry
        self.fired = Counter(
            "fengqiao_tracker_timers_fired_total",
            "Clocks that ran out",
            ["clock"],
            registry=registry,
        )
        self.sweep_seconds = Histogram(
            "fengqiao_tracker_sweep_seconds", "Time of one timer sweep", registry=registry
        )
        self.last_sweep = Gauge(
            "fengqiao_tracker_last_sweep_timestamp", "When the last sweep ended", registry=registry
        )
        self.pending_timers = Gauge(
            "fengqiao_tracker_pending_timers", "Timers waiting to wake", registry=registry
        )
        self.overdue_cases = Gauge(
            "fengqiao_tracker_overdue_cases", "Open cases past their deadline", registry=registry
        )

    async def fire(self, timer: Timer) -> None:
        fired = domain.TimerFired(
            step=domain.TimerStep.from_payload(timer.payload),
            occurred_at=max(timer.due_at, dt.datetime.now(dt.UTC)),
        )
        await self.work.apply(fired.case_id, lambda c: domain.on_timer(c, fired, self.rules))
        self.fired.labels(fired.clock.value).inc()

    async def sweep(self, now: dt.datetime | None = None, *, limit: int = SWEEP_LIMIT) -> int:
        """Fire every clock that is due (one pass); the number fired."""
        started = time.perf_counter()
        handled = await fire_due(
            self.timers, now or dt.datetime.now(dt.UTC), self.fire, limit=limit
        )
        self.sweep_seconds.observe(time.perf_counter() - started)
        self.last_sweep.set_to_current_time()
        return handled

    async def refresh_gauges(self) -> None:
        """Pending timers and overdue cases: counted, so they are right across replicas."""
        self.pending_timers.set(await self.timers.pending())
        self.overdue_cases.set(await self.work.repo.overdue())

    async def run_sweeps(self, interval: float, gauges_every: float = 60.0) -> None:
        """Sweep every `interval` seconds until cancelled. A sweep that meets a store or Kafka
        outage waits it out with the service (`work.outages`) and goes on where it was (the
        clocks due meanwhile fire late, none is lost: a claim that ran out fires again); any
        other failure is logged and retried. The gauges are counted every `gauges_every`."""
        counted = 0.0

        async def sweep_all() -> None:
            nonlocal counted
            while await self.sweep() >= SWEEP_LIMIT:
                pass  # a backlog (after downtime): go on at once
            if time.monotonic() - counted >= gauges_every:
                counted = time.monotonic()
                await self.refresh_gauges()

        while True:
            try:
                await self.work.outages.retry(sweep_all, "timer sweep")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer sweep failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)
