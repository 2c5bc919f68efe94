"""The services' apps in-process for the schemathesis tests (issue 20, deliver 7): the same routes
as each service's own app (checked by the tests), with its subscribers on the in-memory broker
and in-memory stores, and a few things in them (a case, a triage item, a dead letter, held
replies) whose ids `known` names, so generated requests can reach real things.

    built = tracker(guard)       # built.app, built.seams (enter: the test broker, the things)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import TestKafkaBroker

from fengqiao.auth.guard import Guard
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS, REPLIES_REQUESTED, DeadLetter
from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.factories import (
    appeal_message,
    dispatch_to_bole,
    final_hop_message,
    triage_message,
)

CASE = "c-0123456789abcdef"  # opened at 博乐市 (652701)
ITEM = "appeal-queued"  # a triage item waiting for a dispatcher
LETTER = "appeals:2:7"  # a dead letter of `appeals`
HELD = [f"c-0123456789abcd{n:02d}:acknowledgment:0" for n in range(4)]  # replies held


@dataclass
class Built:
    app: Any
    seams: Callable[[], AbstractAsyncContextManager[Any]]
    known: dict[str, list[str]] = field(default_factory=dict)  # path parameter → known values


def tracker(guard: Guard) -> Built:
    from fengqiao.services.tracker import app as tracker_app
    from fengqiao.services.tracker import domain, handlers
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
    from fengqiao.services.tracker.adapters.timers import InMemoryTimers
    from fengqiao.services.tracker.api import unit_router
    from fengqiao.services.tracker.figures_api import figures_router
    from fengqiao.services.tracker.public_api import public_router

    rules = domain.Rules.default()
    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo, indexes = InMemoryCaseRepository(), InMemoryIndexes()
    handlers.register(
        runtime.broker, repo, indexes=indexes, timers=InMemoryTimers(), rules=rules,
        group_id="tracker", registry=runtime.registry,
    )  # fmt: skip
    routers = [
        tracker_app.ops_router(repo, runtime.broker, guard.caller),
        unit_router(runtime.broker, repo, indexes, guard.caller, producer="tracker",
                    apply_wait_seconds=0.5, calendar=rules.calendar),
        public_router(repo.received, rules.calendar.timezone),
        figures_router(repo, rules.calendar, guard.caller),
    ]  # fmt: skip
    app = http_app(runtime, description="tracker", routers=routers, guard=guard)

    @contextlib.asynccontextmanager
    async def seams() -> AsyncIterator[None]:
        async with TestKafkaBroker(runtime.broker) as broker:
            now = datetime.now(UTC)
            appeal = appeal_message("博乐市拖欠工资", case_id=CASE, occurred_at=now)
            await broker.publish(appeal, APPEALS.name, key=CASE.encode())
            for order in dispatch_to_bole(CASE, now):
                await broker.publish(order, DISPATCH_ORDERS.name, key=CASE.encode())
            yield

    return Built(app, seams, {"case_id": [CASE]})


def router(guard: Guard) -> Built:
    from fengqiao.ops import dlq
    from fengqiao.ops.http import dead_letter_router
    from fengqiao.services.router import app as router_app
    from fengqiao.services.router import handlers
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.adapters.triage_queue import InMemoryTriageQueue
    from fengqiao.services.router.directory_api import directory_router
    from fengqiao.services.router.http import ops_router
    from fengqiao.services.router.returns import record_dispatch
    from fengqiao.services.router.settings import RouterSettings
    from fengqiao.services.router.triage_api import triage_router

    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    records, queue = InMemoryRecordStore(), InMemoryTriageQueue()
    routing = router_app.build_router(RouterSettings())
    dispatch = handlers.register(
        runtime.broker, routing, producer="router", group_id="router",
        registry=runtime.registry, store=records, queue=queue,
    )  # fmt: skip
    routers = [
        ops_router(runtime.broker, records, routing.directory, producer="router",
                   caller=guard.caller),
        triage_router(runtime.broker, queue, routing, guard.caller, dispatch, producer="router"),
        dead_letter_router(_dead_letters, dlq.InMemoryActionStore(), _published,
                           caller=guard.caller),
        directory_router(routing.directory, guard.caller),
    ]  # fmt: skip
    app = http_app(runtime, description="router", routers=routers, guard=guard)

    @contextlib.asynccontextmanager
    async def seams() -> AsyncIterator[None]:
        async with TestKafkaBroker(runtime.broker) as broker:
            final = final_hop_message(case_id=CASE)
            await records.save(record_dispatch([final], "order-2"), [final])
            triage = triage_message("wage_arrears", urgent=True, review=("possibly_urgent",))
            text = "博乐市的工地，老板欠钱，我在楼顶上"
            queued = appeal_message(text, case_id="c-queued", event_id=ITEM, triage=triage)
            await broker.publish(queued, APPEALS.name, key=b"c-queued")
            yield

    return Built(app, seams, {"case_id": [CASE], "item_id": [ITEM], "letter_id": [LETTER]})


class _Record:
    topic, partition, offset = "appeals.dlq", 0, 0
    value = DeadLetter(
        occurred_at=datetime(2026, 11, 27, tzinfo=UTC), producer="tracker",
        origin_topic="appeals", origin_partition=2, origin_offset=7, origin_key=CASE,
        consumer="tracker", error_type="ValueError", error="bad", payload="{}",
    ).model_dump_json().encode()  # fmt: skip


async def _dead_letters() -> AsyncIterator[Any]:
    yield _Record()


async def _published(topic: str, value: bytes, key: bytes | None, headers: Any) -> tuple[int, int]:
    return 2, 100


def notifier(guard: Guard) -> Built:
    from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox
    from fengqiao.services.notifier.app import build
    from fengqiao.services.notifier.settings import NotifierSettings
    from tests.service.notifier.test_notifier_handlers import NOW, FakePlatform, request

    settings = NotifierSettings(
        default_access_token="t", hold_categories=["crime_report"], rate_limits=False,
        retry_base_seconds=0.001, max_attempts=2,
    )  # fmt: skip
    runtime, app, _ = build(
        settings, platform=FakePlatform(), outbox=InMemoryOutbox(), clock=FakeClock(NOW),
        guard=guard,
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def seams() -> AsyncIterator[None]:
        async with TestKafkaBroker(runtime.broker) as broker:
            for key in HELD:
                held = request(key.split(":")[0], category="crime_report")
                await broker.publish(held, REPLIES_REQUESTED.name)
            yield

    return Built(app, seams, {"key": HELD})


def pick_known(case: Any, known: dict[str, list[str]]) -> None:
    """Half the generated values of a known path parameter (those of even length) become one of
    its known values, so requests reach real things as well as missing ones."""
    params = case.path_parameters or {}
    for name, values in known.items():
        given = str(params.get(name, ""))
        if name in params and len(given) % 2 == 0:
            params[name] = values[len(given) % len(values)]
