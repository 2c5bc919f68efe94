"""Router's subscribers: `appeals` → `dispatch.orders` (+ `coordination.requests`, and the
triage queue for what a person should check), and `unit.actions` (returns, reassignments) →
re-dispatch."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from fengqiao.contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.messaging import publish_to, topic_publisher, topic_subscriber
from fengqiao.services.router.adapters.records import InMemoryRecordStore, RecordStore
from fengqiao.services.router.adapters.triage_queue import InMemoryTriageQueue, TriageQueue
from fengqiao.services.router.coordination import CoordinationRules, load_coordination
from fengqiao.services.router.domain import Decision, Router
from fengqiao.services.router.returns import (
    ReturnRules,
    RoutingError,
    load_return_rules,
    record_dispatch,
    rule_on,
)
from fengqiao.services.router.triage import item_for

Dispatch = Callable[[AppealNormalized, Decision], Awaitable[list[str]]]

log = logging.getLogger("fengqiao.router")


def register(
    broker: KafkaBroker,
    router: Router,
    *,
    producer: str,
    group_id: str,
    registry: CollectorRegistry,
    store: RecordStore | None = None,
    queue: TriageQueue | None = None,
    coordination: CoordinationRules | None = None,
    return_rules: ReturnRules | None = None,
) -> Dispatch:
    """Register the subscribers; return the dispatch routine (the triage API dispatches a post
    a dispatcher ruled an appeal with it)."""
    routing = _Routing(
        router,
        producer=producer,
        metrics=_Metrics(registry),
        store=store or InMemoryRecordStore(),
        queue=queue or InMemoryTriageQueue(),
        coordination=coordination or load_coordination(),
        return_rules=return_rules or load_return_rules(),
        orders=topic_publisher(broker, DISPATCH_ORDERS),
        requests=topic_publisher(broker, COORDINATION_REQUESTS),
    )

    @topic_subscriber(
        broker,
        APPEALS,
        group_id=group_id,
        action="route",
        description="Route an appeal and dispatch it hop by hop.",
    )
    async def route_appeal(appeal: AppealNormalized) -> None:
        await routing.route(appeal)

    @topic_subscriber(
        broker,
        UNIT_ACTIONS,
        group_id=group_id,
        action="rule",
        description="Rule on returned orders (终审) and reassignments; re-dispatch.",
    )
    async def rule_on_action(action: UnitActed) -> None:
        await routing.rule(action)

    return routing.dispatch


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "fengqiao_router_decisions_total", "Routing decisions", ["outcome"], registry=registry
        )
        self.returns = Counter(
            "fengqiao_router_returns_total",
            "Orders returned (退单), by unit",
            ["unit"],
            registry=registry,
        )
        self.queued = Counter(
            "fengqiao_router_triage_queued_total",
            "Posts sent to the triage queue for a person, by the first reason",
            ["reason"],
            registry=registry,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _Routing:
    """What the subscribers do: route appeals, dispatch them, rule on returns."""

    router: Router
    producer: str
    metrics: _Metrics
    store: RecordStore
    queue: TriageQueue
    coordination: CoordinationRules
    return_rules: ReturnRules
    orders: Any  # FastStream's publishers of DISPATCH_ORDERS and COORDINATION_REQUESTS
    requests: Any

    async def dispatch(self, appeal: AppealNormalized, decision: Decision) -> list[str]:
        """Publish the appeal's orders and coordination requests, then record the dispatch."""
        router, producer = self.router, self.producer
        hops = router.dispatch(appeal, producer=producer, decision=decision)
        asks = self.coordination.requests(
            hops[-1], appeal.text, router.directory, producer=producer
        )
        # Published before the record is saved: a crash in between publishes the same
        # (derived) event ids again, which consumers ignore.
        for order in hops:
            await publish_to(self.orders, order)
        for ask in asks:
            await publish_to(self.requests, ask)
        await self.store.save(record_dispatch(hops, appeal.event_id), hops)
        log.info("case %s → %s", appeal.case_id, " → ".join(hops[-1].chain))
        return [order.event_id for order in hops]

    async def route(self, appeal: AppealNormalized) -> None:
        """Dispatch an appeal that opens a case; queue what a person should check."""
        decisions = self.metrics.decisions
        if appeal.follow_up_of:
            decisions.labels("follow_up").inc()  # the case is dispatched already
            if appeal.triage is not None and "possibly_urgent" in appeal.triage.review:
                await self._enqueue(appeal, await self._held_where(appeal), dispatched=True)
            return
        decision = self.router.decide(appeal)
        if not decision.is_appeal:
            decisions.labels("not_appeal").inc()
            await self._enqueue(appeal, decision, dispatched=False)
            return
        await self.dispatch(appeal, decision)
        decisions.labels("dispatched").inc()
        await self._enqueue(appeal, decision, dispatched=True)

    async def _held_where(self, appeal: AppealNormalized) -> Decision:
        """The decision for a post that joins a case: where the case is now, not where the
        post's own words point (a follow-up often names no place)."""
        decision = self.router.decide(appeal)
        record = await self.store.get(appeal.case_id)
        if record is None:
            return decision
        chain = self.router.chain_of(record.holder)
        return dataclasses.replace(decision, chain=chain, opens_at=record.holder)

    async def _enqueue(
        self, appeal: AppealNormalized, decision: Decision, *, dispatched: bool
    ) -> None:
        # Queued after the dispatch: the case opens at once, a person checks it meanwhile.
        if decision.review and await self.queue.add(
            item_for(appeal, decision, dispatched=dispatched)
        ):
            self.metrics.queued.labels(decision.review[0]).inc()

    async def rule(self, action: UnitActed) -> None:
        """Rule on a returned order or a reassignment, and re-dispatch."""
        if action.action not in (UnitActionKind.RETURN, UnitActionKind.REASSIGN):
            return
        store = self.store
        record = await store.get(action.case_id)
        if record is None:
            raise RoutingError(f"case {action.case_id}: no dispatch to rule on")
        if action.event_id in record.processed:
            # Saved but maybe not published before a crash: publish the same orders again.
            for order in await store.last_orders(action.case_id):
                await publish_to(self.orders, order)
            return
        new, redispatched = rule_on(
            record, action, self.router.directory, self.return_rules, producer=self.producer
        )
        # Saved first (the record is the decision), then published; a re-delivery of the
        # action finds it processed and publishes the saved orders again.
        if not await store.save(new, redispatched):
            raise RoutingError(f"case {action.case_id}: ruled on concurrently; retry")
        for order in redispatched:
            await publish_to(self.orders, order)
        if action.action is UnitActionKind.RETURN:
            await store.count_return(
                action.event_id, action.case_id, action.unit_id, action.reason_code or "other"
            )
            self.metrics.returns.labels(action.unit_id).inc()
        self.metrics.decisions.labels(action.action.value).inc()
        log.info(
            "case %s %s by %s → %s", action.case_id, action.action.value, action.unit_id, new.holder
        )
