"""The workbench in front of the real tracker app, both in-process (the tracker's unit API and
guard; Kafka replaced by FastStream's test broker), for tests of the workbench's pages.

    async with in_process_workbench(accounts) as bench:
        await bench.broker.publish(...)           # open and dispatch cases on the tracker
        await bench.http.get("/", headers=HTML)   # the workbench, as a browser would ask
        async with bench.browser() as other: ...  # another browser (its own cookies)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import Guard, LocalSessions
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings


@dataclass
class InProcess:
    http: httpx.AsyncClient  # a browser: base URL `http://w`, keeps its cookies
    broker: Any  # the tracker's test broker
    app: Any  # the workbench's ASGI app

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://w")


def tracker_app(accounts: Accounts) -> tuple[Runtime, Any]:
    """The real tracker app in-process (in-memory cases; its unit API and guard over the
    accounts' sessions): its runtime (whose broker the tests drive) and its ASGI app."""
    from fengqiao.services.tracker import domain, handlers
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
    from fengqiao.services.tracker.adapters.timers import InMemoryTimers
    from fengqiao.services.tracker.api import unit_router

    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo, indexes = InMemoryCaseRepository(), InMemoryIndexes()
    handlers.register(
        runtime.broker, repo, indexes=indexes, timers=InMemoryTimers(),
        rules=domain.Rules.default(), group_id="tracker", registry=runtime.registry,
    )  # fmt: skip
    guard = Guard("tracker", [LocalSessions(accounts)])
    router = unit_router(runtime.broker, repo, indexes, guard.caller, producer="tracker")
    return runtime, http_app(runtime, description="tracker", routers=[router], guard=guard)


@contextlib.asynccontextmanager
async def in_process_workbench(
    accounts: Accounts, settings: WorkbenchSettings | None = None
) -> AsyncIterator[InProcess]:
    """The workbench and the tracker behind it, with a first browser."""
    runtime, tracker = tracker_app(accounts)
    settings = settings or WorkbenchSettings(tracker_url="http://tracker")
    _, app = build(
        settings, accounts=accounts, transports={"tracker": httpx.ASGITransport(tracker)}
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as http:
            yield InProcess(http, broker, app)
