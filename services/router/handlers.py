"""Router's subscribers: `appeals` → `dispatch.orders` (+ `coordination.requests`, and the
triage queue for what a person should check), and `unit.actions` (returns, reassignments) →
re-dispatch."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

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
    store = store or InMemoryRecordStore()
    queue = queue or InMemoryTriageQueue()
    coordination = coordination or load_coordination()
    return_rules = return_rules or load_return_rules()
    decisions = Counter(
        "fengqiao_router_decisions_total", "Routing decisions", ["outcome"], registry=registry
    )
    returns = Counter(
        "fengqiao_router_returns_total",
        "Orders returned (退单), by unit",
        ["unit"],
        registry=registry,
    )
    queued = Counter(
        "fengqiao_router_triage_queued_total",
        "Posts sent to the triage queue for a person, by the first reason",
        ["reason"],
        registry=registry,
    )
    orders = topic_publisher(broker, DISPATCH_ORDERS)
    requests = topic_publisher(broker, COORDINATION_REQUESTS)

    async def dispatch(appeal: AppealNormalized, decision: Decision) -> list[str]:
        """Publish the appeal's orders and coordination requests, then record the dispatch."""
        hops = router.dispatch(appeal, producer=producer, decision=decision)
        asks = coordination.requests(hops[-1], appeal.text, router.directory, producer=producer)
        # Published before the record is saved: a crash in between publishes the same
        # (derived) event ids again, which consumers ignore.
        for order in hops:
            await publish_to(orders, order)
        for ask in asks:
            await publish_to(requests, ask)
        await store.save(record_dispatch(hops, appeal.event_id), hops)
        log.info("case %s → %s", appeal.case_id, " → ".join(hops[-1].chain))
        return [order.event_id for order in hops]

    async def held_where(appeal: AppealNormalized) -> Decision:
        """The decision for a post that joins a case: where the case is now, not where the
        post's own words point (a follow-up often names no place)."""
        decision = router.decide(appeal)
        record = await store.get(appeal.case_id)
        if record is None:
            return decision
        chain = router.chain_of(record.holder)
        return dataclasses.replace(decision, chain=chain, opens_at=record.holder)

    async def enqueue(appeal: AppealNormalized, decision: Decision, *, dispatched: bool) -> None:
        # Queued after the dispatch: the case opens at once, a person checks it meanwhile.
        if decision.review and await queue.add(item_for(appeal, decision, dispatched=dispatched)):
            queued.labels(decision.review[0]).inc()

    @topic_subscriber(
        broker,
        APPEALS,
        group_id=group_id,
        action="route",
        description="Route an appeal and dispatch it hop by hop.",
    )
    async def route_appeal(appeal: AppealNormalized) -> None:
        if appeal.follow_up_of:
            decisions.labels("follow_up").inc()  # the case is dispatched already
            if appeal.triage is not None and "possibly_urgent" in appeal.triage.review:
                await enqueue(appeal, await held_where(appeal), dispatched=True)
            return
        decision = router.decide(appeal)
        if not decision.is_appeal:
            decisions.labels("not_appeal").inc()
            await enqueue(appeal, decision, dispatched=False)
            return
        await dispatch(appeal, decision)
        decisions.labels("dispatched").inc()
        await enqueue(appeal, decision, dispatched=True)

    @topic_subscriber(
        broker,
        UNIT_ACTIONS,
        group_id=group_id,
        action="rule",
        description="Rule on returned orders (终审) and reassignments; re-dispatch.",
    )
    async def rule_on_action(action: UnitActed) -> None:
        if action.action not in (UnitActionKind.RETURN, UnitActionKind.REASSIGN):
            return
        record = await store.get(action.case_id)
        if record is None:
            raise RoutingError(f"case {action.case_id}: no dispatch to rule on")
        if action.event_id in record.processed:
            # Saved but maybe not published before a crash: publish the same orders again.
            for order in await store.last_orders(action.case_id):
                await publish_to(orders, order)
            return
        new, redispatched = rule_on(
            record, action, router.directory, return_rules, producer=producer
        )
        # Saved first (the record is the decision), then published; a re-delivery of the
        # action finds it processed and publishes the saved orders again.
        if not await store.save(new, redispatched):
            raise RoutingError(f"case {action.case_id}: ruled on concurrently; retry")
        for order in redispatched:
            await publish_to(orders, order)
        if action.action is UnitActionKind.RETURN:
            await store.count_return(
                action.event_id, action.case_id, action.unit_id, action.reason_code or "other"
            )
            returns.labels(action.unit_id).inc()
        decisions.labels(action.action.value).inc()
        log.info(
            "case %s %s by %s → %s", action.case_id, action.action.value, action.unit_id, new.holder
        )

    return dispatch
