"""Router's subscribers: `appeals` → `dispatch.orders` (+ `coordination.requests`), and
`unit.actions` (returns, reassignments) → re-dispatch."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    UnitActed,
    UnitActionKind,
)
from fengqiao.messaging import publish_to, topic_publisher, topic_subscriber
from services.router.adapters.records import InMemoryRecordStore, RecordStore
from services.router.coordination import CoordinationRules, load_coordination
from services.router.domain import Router
from services.router.returns import (
    ReturnRules,
    RoutingError,
    load_return_rules,
    record_dispatch,
    rule_on,
)

log = logging.getLogger("fengqiao.router")


def register(
    broker: KafkaBroker,
    router: Router,
    *,
    producer: str,
    group_id: str,
    registry: CollectorRegistry,
    store: RecordStore | None = None,
    coordination: CoordinationRules | None = None,
    return_rules: ReturnRules | None = None,
) -> None:
    store = store or InMemoryRecordStore()
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
    orders = topic_publisher(broker, DISPATCH_ORDERS)
    requests = topic_publisher(broker, COORDINATION_REQUESTS)

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
            return
        decision = router.decide(appeal)
        if not decision.is_appeal:
            decisions.labels("not_appeal").inc()
            return
        hops = router.dispatch(appeal, producer=producer, decision=decision)
        asks = coordination.requests(hops[-1], appeal.text, router.directory, producer=producer)
        # Published before the record is saved: a crash in between publishes the same
        # (derived) event ids again, which consumers ignore.
        for order in hops:
            await publish_to(orders, order)
        for ask in asks:
            await publish_to(requests, ask)
        await store.save(record_dispatch(hops, appeal.event_id), hops)
        decisions.labels("dispatched").inc()
        log.info("case %s → %s", appeal.case_id, " → ".join(hops[-1].chain))

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
