"""Tracker's subscribers: appeals, dispatch orders and reply results change cases.

Each message is applied with `CaseStore.apply`: load the case, let the domain compute the new
case, write it conditionally (retrying on a concurrent write), then publish its outbox.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts import (
    APPEALS,
    CASE_EVENTS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    AppealNormalized,
    CoordinationRequested,
    DispatchOrdered,
    ReplySent,
    SupervisionOrdered,
)
from fengqiao.messaging import publish_to, topic_publisher, topic_subscriber
from services.tracker import domain
from services.tracker.adapters.cases import CaseRepository

log = logging.getLogger("fengqiao.tracker")

MAX_ATTEMPTS = 50

Handler = Callable[[Any], Awaitable[None]]


class ConcurrentWriteError(Exception):
    """The case kept changing under us; the message is retried via the dead-letter topic."""


class CaseStore:
    """Applies domain functions to stored cases and publishes what they ask for."""

    def __init__(self, repo: CaseRepository, publishers: dict[str, object]) -> None:
        self._repo = repo
        self._publishers = publishers
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, holders and waiters

    async def apply(
        self, case_id: str, change: Callable[[domain.Case], domain.Case]
    ) -> domain.Case:
        # One change per case at a time in this process (the subscribers of different topics
        # run concurrently); across replicas the store's compare-and-set decides.
        lock, users = self._locks.get(case_id, (asyncio.Lock(), 0))
        self._locks[case_id] = (lock, users + 1)
        try:
            async with lock:
                return await self._apply(case_id, change)
        finally:
            lock, users = self._locks[case_id]
            if users == 1:
                del self._locks[case_id]
            else:
                self._locks[case_id] = (lock, users - 1)

    async def _apply(
        self, case_id: str, change: Callable[[domain.Case], domain.Case]
    ) -> domain.Case:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:  # another writer (replica) won: back off a little, with jitter
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))
            case = await self._repo.get(case_id) or domain.new_case(case_id)
            updated = change(case)
            if updated is case or await self._repo.save(updated, expected_version=case.version):
                await self._flush(updated)
                return updated
        raise ConcurrentWriteError(f"case {case_id}: {MAX_ATTEMPTS} conflicting writes in a row")

    async def _flush(self, case: domain.Case) -> None:
        # Published before being removed from the outbox: a crash in between publishes again,
        # with the same event ids, and consumers ignore the repeat.
        for out in case.outbox:
            await publish_to(self._publishers[out.topic], out.message)
        await self._repo.clear_outbox(case, [o.message.event_id for o in case.outbox])


def register(
    broker: KafkaBroker,
    repo: CaseRepository,
    *,
    producer: str,
    group_id: str,
    registry: CollectorRegistry,
) -> CaseStore:
    applied = Counter(
        "fengqiao_tracker_messages_total", "Messages applied to cases", ["topic"], registry=registry
    )
    publishers: dict[str, object] = {
        CASE_EVENTS.name: topic_publisher(broker, CASE_EVENTS),
        REPLIES_REQUESTED.name: topic_publisher(broker, REPLIES_REQUESTED),
    }
    store = CaseStore(repo, publishers)

    def subscriber(topic: str, description: str) -> Callable[[Handler], Handler]:
        return topic_subscriber(
            broker, topic, group_id=group_id, action="track", description=description
        )

    @subscriber(APPEALS.name, "Open a case for a new appeal and ask for its acknowledgment.")
    async def on_appeal(appeal: AppealNormalized) -> None:
        if not appeal.is_appeal:
            return
        await store.apply(appeal.case_id, lambda c: domain.open_case(c, appeal, producer=producer))
        applied.labels(APPEALS.name).inc()

    @subscriber(DISPATCH_ORDERS.name, "Record one hop of a dispatch.")
    async def on_dispatch(order: DispatchOrdered) -> None:
        await store.apply(
            order.case_id, lambda c: domain.record_dispatch(c, order, producer=producer)
        )
        applied.labels(DISPATCH_ORDERS.name).inc()

    @subscriber(REPLIES_SENT.name, "Record what the platform answered to a reply.")
    async def on_reply(sent: ReplySent) -> None:
        await store.apply(sent.case_id, lambda c: domain.record_reply(c, sent, producer=producer))
        applied.labels(REPLIES_SENT.name).inc()

    @subscriber(COORDINATION_REQUESTS.name, "Record a request to an outside agency (横协调).")
    async def on_coordination(request: CoordinationRequested) -> None:
        await store.apply(
            request.case_id, lambda c: domain.record_coordination(c, request, producer=producer)
        )
        applied.labels(COORDINATION_REQUESTS.name).inc()

    @subscriber(SUPERVISION_ORDERS.name, "Record an upper tier's supervision order (纵督促).")
    async def on_supervision(order: SupervisionOrdered) -> None:
        await store.apply(
            order.case_id, lambda c: domain.record_supervision(c, order, producer=producer)
        )
        applied.labels(SUPERVISION_ORDERS.name).inc()

    return store
