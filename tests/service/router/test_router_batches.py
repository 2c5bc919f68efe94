"""The router routes a poll of appeals at once: one publish of all their orders (each case's in
hop order), their records saved side by side (so the store groups the inserts), and an appeal
that cannot be routed fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from fengqiao.contracts import APPEALS, AppealNormalized, DeadLetter, DispatchOrdered, Outgoing
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router import handlers
from fengqiao.services.router.adapters.records import InMemoryRecordStore
from fengqiao.services.router.app import build_router
from fengqiao.services.router.domain import Router
from fengqiao.services.router.returns import RoutingRecord
from fengqiao.services.router.settings import RouterSettings
from fengqiao.testing.factories import appeal_message

COUNTIES = ("博乐市", "伊宁市", "库尔勒市")


class Outbox:
    """Records each `send_all` call (what the app's direct producer would publish at once)."""

    def __init__(self) -> None:
        self.calls: list[list[Outgoing]] = []

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        self.calls.append(list(messages))


class Gathered(InMemoryRecordStore):
    """Saves only once `expected` saves are waiting together: routing that saved one record
    after another would never get past the first."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.barrier = asyncio.Barrier(expected)

    async def save(self, record: RoutingRecord, last_orders: list[DispatchOrdered]) -> bool:
        await asyncio.wait_for(self.barrier.wait(), timeout=5)
        return await super().save(record, last_orders)


def appeals(n: int) -> list[AppealNormalized]:
    return [
        appeal_message(
            f"{COUNTIES[i % len(COUNTIES)]}的工地拖欠工资，求助",
            case_id=f"c-{i}",
            event_id=f"appeal-{i}",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def router() -> Router:
    return build_router(RouterSettings())


def registered(router: Router, store: InMemoryRecordStore) -> tuple[Runtime, Outbox]:
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    outbox = Outbox()
    handlers.register(
        runtime.broker,
        router,
        producer="router",
        group_id="router",
        registry=CollectorRegistry(),
        store=store,
        outbox=outbox,
    )
    return runtime, outbox


async def test_a_poll_is_published_at_once_and_saved_side_by_side(router: Router) -> None:
    store = Gathered(3)
    runtime, outbox = registered(router, store)
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish_batch(*appeals(3), topic=APPEALS.name)
    [published] = outbox.calls
    orders = [o.message for o in published if isinstance(o.message, DispatchOrdered)]
    assert {o.case_id for o in orders} == {"c-0", "c-1", "c-2"}
    for case_id in ("c-0", "c-1", "c-2"):
        assert [o.hop for o in orders if o.case_id == case_id] == [1, 2]  # hop by hop
    for case_id in ("c-0", "c-1", "c-2"):
        record = await store.get(case_id)
        assert record is not None and record.holder


async def test_an_appeal_that_cannot_be_routed_fails_alone(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InMemoryRecordStore()
    runtime, outbox = registered(router, store)
    letters: list[DeadLetter] = []

    @runtime.broker.subscriber(APPEALS.dlq, group_id="probe")
    async def on_letter(letter: DeadLetter) -> None:
        letters.append(letter)

    decide = Router.decide

    def refuse_one(self: Router, appeal: AppealNormalized) -> object:
        if appeal.case_id == "c-1":
            raise ValueError("no unit for this appeal")
        return decide(self, appeal)

    monkeypatch.setattr(Router, "decide", refuse_one)
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish_batch(*appeals(3), topic=APPEALS.name)
    [published] = outbox.calls
    assert {o.message.case_id for o in published} == {"c-0", "c-2"}
    assert [letter.error for letter in letters if "no unit" in letter.error] != []
    assert await store.get("c-1") is None
