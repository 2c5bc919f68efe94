"""Tracker's subscribers: each takes what one poll of its topic returned, binds every message to
the domain function for it, and hands the changes to the unit of work (`unit_of_work.py`), which
applies them case by case and hands back the task of the poll's failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter

from fengqiao.contracts import (
    APPEALS,
    CASE_EVENTS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    CoordinationRequested,
    DispatchOrdered,
    ReplySent,
    SupervisionOrdered,
    Topic,
    UnitActed,
)
from fengqiao.runtime import tracing
from fengqiao.runtime.messaging import (
    BatchFailures,
    DeclaredPublishers,
    Outages,
    Outbox,
    batch_subscriber,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import CaseRepository
from fengqiao.services.tracker.adapters.indexes import Indexes
from fengqiao.services.tracker.adapters.timers import Timers
from fengqiao.services.tracker.sweep import Tracker
from fengqiao.services.tracker.unit_of_work import Change, UnitOfWork

BATCH_RECORDS = 500  # messages of a topic handed over at once (what one poll returned)
PUBLISHES = (CASE_EVENTS, REPLIES_REQUESTED, SUPERVISION_ORDERS)  # what a case's outbox holds

BatchTask = asyncio.Task[BatchFailures]


def register(
    broker: KafkaBroker,
    repo: CaseRepository,
    *,
    indexes: Indexes,
    timers: Timers,
    rules: domain.Rules,
    group_id: str,
    registry: CollectorRegistry,
    settle_after: float | None = None,
    outbox: Outbox | None = None,
    outages: Outages | None = None,
) -> Tracker:
    """Register the tracker's subscribers on `broker` and declare its publishers (PUBLISHES).
    Cases' outboxes go through `outbox` when given (the app's `DirectProducer` of PUBLISHES),
    else through the declared publishers (as an in-memory test broker needs)."""
    declared = DeclaredPublishers.declare(broker, PUBLISHES)
    work = UnitOfWork(
        repo, outbox or declared, indexes, timers, settle_after=settle_after, outages=outages
    )
    on = _Subscribers(broker, work, rules, group_id, registry)

    @on(
        APPEALS,
        "Open a case for a new appeal (and ask for its acknowledgment); a citizen's answer to a "
        "callback question closes or reopens the case it answers.",
    )
    async def on_appeals(appeals: list[AppealNormalized]) -> BatchTask:
        return await on.appeals(appeals)

    @on(DISPATCH_ORDERS, "Record one hop of a dispatch and start its clocks.")
    async def on_dispatch(orders: list[DispatchOrdered]) -> BatchTask:
        return on.begin(DISPATCH_ORDERS, domain.record_dispatch, orders)

    @on(REPLIES_SENT, "Record what the platform answered to a reply.")
    async def on_reply(sent: list[ReplySent]) -> BatchTask:
        return on.begin(REPLIES_SENT, domain.record_reply, sent)

    @on(COORDINATION_REQUESTS, "Record a request to an outside agency (横协调).")
    async def on_coordination(requests: list[CoordinationRequested]) -> BatchTask:
        return on.begin(COORDINATION_REQUESTS, domain.record_coordination, requests)

    @on(SUPERVISION_ORDERS, "Record an upper tier's supervision order (纵督促).")
    async def on_supervision(orders: list[SupervisionOrdered]) -> BatchTask:
        return on.begin(SUPERVISION_ORDERS, domain.record_supervision, orders)

    @on(
        UNIT_ACTIONS,
        "Apply what an office did (签收, progress, 办结, 退单, extensions, notes); an action the "
        "case no longer allows is recorded as refused.",
    )
    async def on_action(actions: list[UnitActed]) -> BatchTask:
        return on.begin(UNIT_ACTIONS, domain.act, actions)

    return Tracker(work, timers, rules, registry)


class _Subscribers:
    """What the subscribers share: the broker, the unit of work, the rules, the count of the
    messages applied."""

    def __init__(
        self,
        broker: KafkaBroker,
        work: UnitOfWork,
        rules: domain.Rules,
        group_id: str,
        registry: CollectorRegistry,
    ) -> None:
        self.broker, self.work, self.rules, self.group_id = broker, work, rules, group_id
        self.applied = Counter(
            "fengqiao_tracker_messages_total",
            "Messages applied to cases",
            ["topic"],
            registry=registry,
        )

    def __call__(self, topic: Topic, description: str) -> Callable[[Any], Any]:
        """Subscribe to what one poll returned, at once: the messages of one case one after
        the other and written as one version, different cases side by side."""
        return batch_subscriber(
            self.broker,
            topic,
            group_id=self.group_id,
            action="track",
            description=description,
            max_records=BATCH_RECORDS,
            fill=True,  # the cases' writes of a filled poll are grouped
        )

    def begin(
        self, topic: Topic, apply: Callable[..., domain.Case], messages: Sequence[Any]
    ) -> BatchTask:
        """Begin applying `apply(case, message, rules=...)` for each message."""
        changes = [(m.case_id, self.bound(apply, m)) for m in messages]
        return self.begin_changes(topic, changes, traced=traced(topic, messages))

    def bound(self, apply: Callable[..., domain.Case], message: Any) -> Change:
        """The change a message makes: `apply(case, message, rules=rules)`."""
        rules = self.rules
        return lambda case: apply(case, message, rules=rules)

    def begin_changes(
        self,
        topic: Topic,
        changes: list[tuple[str, Change]],
        positions: list[int] | None = None,
        failed: BatchFailures | None = None,
        traced: tracing.Traced | None = None,
    ) -> BatchTask:
        """Begin applying the changes (their turns at their cases are taken at once, so the
        subscriber can be handed its next poll meanwhile); the task of the failures by position
        in the batch (`positions[i]` for the i-th change, default i), with those `failed`
        before. `traced`: the trace of each change's message (see `tracing.joined_by`)."""
        applying = self.work.begin_many(changes, traced)

        async def failures() -> BatchFailures:
            found = BatchFailures(failed or {})
            results = await applying
            for i, result in enumerate(results):
                if isinstance(result, Exception):
                    found[positions[i] if positions is not None else i] = result
            self.applied.labels(topic.name).inc(sum(not isinstance(r, Exception) for r in results))
            return found

        return asyncio.ensure_future(failures())

    async def appeals(self, appeals: list[AppealNormalized]) -> BatchTask:
        """A citizen's post answers the case that waits for them, if one does and it reads as an
        answer; else an appeal opens (or adds to) its own case."""
        keys = [domain.awaiting_key(a.platform, a.author.id) for a in appeals]
        waiting = await self.work.indexes.awaiting(keys)
        failures = BatchFailures()
        answers = [i for i, key in enumerate(keys) if key in waiting]
        answered = set()
        if answers:  # few: applied before the poll's new cases are begun
            results = await self.work.apply_many(
                [(waiting[keys[i]], self.bound(_answer, appeals[i])) for i in answers],
                traced(APPEALS, [appeals[i] for i in answers]),
            )
            for i, result in zip(answers, results, strict=True):
                if isinstance(result, Exception):
                    failures[i] = result
                elif result.has_processed(appeals[i].event_id):
                    answered.add(i)
            self.applied.labels(APPEALS.name).inc(len(answered))
        opening = [
            i
            for i, appeal in enumerate(appeals)
            if appeal.is_appeal and i not in answered and i not in failures
        ]
        changes = [(appeals[i].case_id, self.bound(domain.open_case, appeals[i])) for i in opening]
        opened = traced(APPEALS, [appeals[i] for i in opening])
        return self.begin_changes(APPEALS, changes, opening, failures, opened)


def _answer(case: domain.Case, appeal: AppealNormalized, *, rules: domain.Rules) -> domain.Case:
    """The citizen's answer to the case, or the case unchanged (not an answer)."""
    return domain.record_citizen_reply(case, appeal, rules=rules) or case


def traced(topic: Topic, messages: Sequence[Any]) -> tracing.Traced | None:
    """The trace of each message, for the span of each case's work (`<topic> apply`)."""
    return tracing.traced(f"{topic.name} apply", messages)
