"""Router's subscriber: `appeals` → `dispatch.orders`."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from contracts import APPEALS, DISPATCH_ORDERS, AppealNormalized, DispatchOrdered
from fengqiao.messaging import publish_to
from services.router.domain import Router

log = logging.getLogger("fengqiao.router")


def register(
    broker: KafkaBroker,
    router: Router,
    *,
    producer: str,
    group_id: str,
    registry: CollectorRegistry,
) -> None:
    decisions = Counter(
        "fengqiao_router_decisions_total", "Routing decisions", ["outcome"], registry=registry
    )
    orders = broker.publisher(
        DISPATCH_ORDERS.name,
        title=f"{DISPATCH_ORDERS.name}:publish",
        description=DISPATCH_ORDERS.description,
        schema=DispatchOrdered,
    )

    @broker.subscriber(
        APPEALS.name,
        group_id=group_id,
        auto_offset_reset="earliest",
        title=f"{APPEALS.name}:route",
        description="Route an appeal and dispatch it hop by hop.",
    )
    async def route_appeal(appeal: AppealNormalized) -> None:
        if not appeal.is_appeal or appeal.follow_up_of:
            decisions.labels("skipped").inc()
            return
        hops = router.dispatch(appeal, producer=producer)
        for order in hops:
            await publish_to(orders, order)
        decisions.labels("dispatched").inc()
        log.info("case %s → %s", appeal.case_id, " → ".join(hops[-1].chain))
