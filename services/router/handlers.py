"""Router's subscribers: `appeals` → `dispatch.orders` (+ `coordination.requests`, and the
triage queue for what a person should check), and `unit.actions` (returns, reassignments) →
re-dispatch.

Appeals are routed a poll at a time (the batch pipeline, `batch_subscriber`): the poll's orders
go to Kafka in one `send_all` (one wait for the acknowledgements), then its routing records are
saved side by side (their inserts grouped into one write), and the poll is committed once. Routing
one appeal at a time cost a publish round trip, an insert and a commit each."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry, Counter

from fengqiao.contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    DispatchOrdered,
    Outgoing,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime import tracing
from fengqiao.runtime.logs import log_context
from fengqiao.runtime.messaging import (
    BatchFailures,
    DeclaredPublishers,
    Outbox,
    batch_records,
    batch_subscriber,
    is_transient,
    topic_subscriber,
)
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
PUBLISHES = (DISPATCH_ORDERS, COORDINATION_REQUESTS)

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
    outbox: Outbox | None = None,
) -> Dispatch:
    """Register the subscribers; return the dispatch routine (the triage API dispatches a post
    a dispatcher ruled an appeal with it). Orders go out through `outbox` when given (the app's
    `DirectProducer` of PUBLISHES), else through the declared publishers (as an in-memory test
    broker needs)."""
    declared = DeclaredPublishers.declare(broker, PUBLISHES)
    routing = _Routing(
        router,
        producer=producer,
        metrics=_Metrics(registry),
        store=store or InMemoryRecordStore(),
        queue=queue or InMemoryTriageQueue(),
        coordination=coordination or load_coordination(),
        return_rules=return_rules or load_return_rules(),
        outbox=outbox or declared,
    )

    @batch_subscriber(
        broker,
        APPEALS,
        group_id=group_id,
        action="route",
        description="Route appeals and dispatch them hop by hop (a poll at a time).",
        fill=True,  # the records of a filled poll are saved in one write
    )
    async def route_appeals(appeals: list[AppealNormalized], msg: KafkaMessage) -> BatchFailures:
        return await routing.route_many(appeals, batch_records(msg))

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


@dataclass
class _Plan:
    """What routing one appeal of a poll comes to: its orders and coordination requests (in
    the order they are published), the record to save, and what the triage queue needs."""

    appeal: AppealNormalized
    record: Any = None  # the Kafka record it was read from (its lines name its place)
    decision: Decision | None = None  # None: a follow-up (its case is dispatched already)
    orders: list[DispatchOrdered] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)

    def logged(self) -> AbstractContextManager[None]:
        """The lines logged about this appeal carry its case, event and place in Kafka."""
        record, appeal = self.record, self.appeal
        return log_context(
            case_id=appeal.case_id,
            event_id=appeal.event_id,
            topic=getattr(record, "topic", None),
            partition=getattr(record, "partition", None),
            offset=getattr(record, "offset", None),
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
    outbox: Outbox

    async def dispatch(self, appeal: AppealNormalized, decision: Decision) -> list[str]:
        """Publish the appeal's orders and coordination requests, then record the dispatch."""
        plan = self._dispatched(_Plan(appeal), decision)
        await self._publish_and_save([plan])
        return [order.event_id for order in plan.orders]

    async def route_many(
        self, appeals: Sequence[AppealNormalized], records: Sequence[Any] = ()
    ) -> BatchFailures:
        """Route a poll's appeals: decide each, publish every order at once, save the records
        side by side, then queue what a person should check. An appeal whose routing fails
        (not an outage) is the poll's failure alone; an outage fails the poll, which comes
        again (orders' event ids are derived: consumers ignore a repeat)."""
        failures = BatchFailures()
        plans: list[_Plan] = []
        for index, appeal in enumerate(appeals):
            try:
                # The span of routing this appeal, in its trace: its orders are published in it.
                with tracing.joined_for("appeals route", [appeal]):
                    tracing.carried_on(appeal)
                    plan = self._plan(appeal, records[index] if records else None)
                for out in plan.outgoing:
                    tracing.follow(out.message, appeal)
                plans.append(plan)
            except Exception as exc:
                if is_transient(exc):
                    raise
                failures[index] = exc
        await self._publish_and_save(plans)
        await asyncio.gather(*(self._after(plan) for plan in plans))
        return failures

    def _plan(self, appeal: AppealNormalized, record: Any) -> _Plan:
        plan = _Plan(appeal, record)
        if appeal.follow_up_of:
            return plan  # the case is dispatched already
        decision = self.router.decide(appeal)
        if not decision.is_appeal:
            plan.decision = decision
            return plan
        return self._dispatched(plan, decision)

    def _dispatched(self, plan: _Plan, decision: Decision) -> _Plan:
        router, producer = self.router, self.producer
        hops = router.dispatch(plan.appeal, producer=producer, decision=decision)
        asks = self.coordination.requests(
            hops[-1], plan.appeal.text, router.directory, producer=producer
        )
        plan.decision, plan.orders = decision, hops
        plan.outgoing = [Outgoing(DISPATCH_ORDERS.name, order) for order in hops] + [
            Outgoing(COORDINATION_REQUESTS.name, ask) for ask in asks
        ]
        return plan

    async def _publish_and_save(self, plans: Sequence[_Plan]) -> None:
        # Published before the records are saved: a crash in between publishes the same
        # (derived) event ids again, which consumers ignore.
        await self.outbox.send_all([out for plan in plans for out in plan.outgoing])
        dispatched = [plan for plan in plans if plan.orders]
        await asyncio.gather(
            *(
                self.store.save(record_dispatch(plan.orders, plan.appeal.event_id), plan.orders)
                for plan in dispatched
            )
        )
        for plan in dispatched:
            with plan.logged():
                log.info("case %s → %s", plan.appeal.case_id, " → ".join(plan.orders[-1].chain))

    async def _after(self, plan: _Plan) -> None:
        """Count the decision and queue what a person should check (after the dispatch: the
        case opens at once, a person checks it meanwhile)."""
        with plan.logged():
            await self._count_and_queue(plan)

    async def _count_and_queue(self, plan: _Plan) -> None:
        appeal, decision, decisions = plan.appeal, plan.decision, self.metrics.decisions
        if decision is None:
            decisions.labels("follow_up").inc()
            if appeal.triage is not None and "possibly_urgent" in appeal.triage.review:
                await self._enqueue(appeal, await self._held_where(appeal), dispatched=True)
        elif not plan.orders:
            decisions.labels("not_appeal").inc()
            await self._enqueue(appeal, decision, dispatched=False)
        else:
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
            await self._publish_orders(await store.last_orders(action.case_id))
            return
        new, redispatched = rule_on(
            record, action, self.router.directory, self.return_rules, producer=self.producer
        )
        # Saved first (the record is the decision), then published; a re-delivery of the
        # action finds it processed and publishes the saved orders again.
        if not await store.save(new, redispatched):
            raise RoutingError(f"case {action.case_id}: ruled on concurrently; retry")
        await self._publish_orders(redispatched)
        if action.action is UnitActionKind.RETURN:
            await store.count_return(
                action.event_id, action.case_id, action.unit_id, action.reason_code or "other"
            )
            self.metrics.returns.labels(action.unit_id).inc()
        self.metrics.decisions.labels(action.action.value).inc()
        log.info(
            "case %s %s by %s → %s", action.case_id, action.action.value, action.unit_id, new.holder
        )

    async def _publish_orders(self, orders: Sequence[DispatchOrdered]) -> None:
        await self.outbox.send_all([Outgoing(DISPATCH_ORDERS.name, order) for order in orders])
