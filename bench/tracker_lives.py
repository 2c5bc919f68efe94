"""The messages of the cases the tracker benchmark lives through, and checks of the result."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from fengqiao.contracts import (
    APPEALS,
    DISPATCH_ORDERS,
    REPLIES_SENT,
    UNIT_ACTIONS,
    AppealNormalized,
    Author,
    CaseMessage,
    DispatchOrdered,
    Outgoing,
    ReplyPurpose,
    ReplySent,
    ReplyTarget,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.messaging import DirectProducer
from fengqiao.runtime.store import ShardedCollection
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.timers import VERSIONS
from fengqiao.services.tracker.unit_of_work import Change
from fengqiao.testing.factories import appeal_message, dispatch_message, final_hop_message

EVENTS_PER_CASE = 7
TOPIC_OF = {
    AppealNormalized: APPEALS.name,
    DispatchOrdered: DISPATCH_ORDERS.name,
    ReplySent: REPLIES_SENT.name,
    UnitActed: UNIT_ACTIONS.name,
}


def case_messages(case_id: str, i: int, at: datetime) -> list[CaseMessage]:
    """The seven messages of one case's common path, in the order they happen."""
    lead = "652701"

    def action(kind: UnitActionKind, **fields: Any) -> UnitActed:
        return UnitActed(
            occurred_at=at,
            producer="tracker-api",
            case_id=case_id,
            unit_id=lead,
            action=kind,
            **fields,
        )

    return [
        appeal_message(
            event_id=f"{case_id}-appeal",
            case_id=case_id,
            occurred_at=at,
            posted_at=at,
            post_event_id=f"{case_id}-post",
            author=Author(id=f"u{i}"),
            reply_to=ReplyTarget(
                platform="weibo", account="@新疆检察", user_id=f"u{i}", post_id=f"p{i}"
            ),
        ),
        dispatch_message(case_id=case_id, occurred_at=at, hop=1),
        final_hop_message(
            case_id=case_id, occurred_at=at, to_unit=lead, to_handle="@博乐市人民检察院"
        ),
        ReplySent(
            occurred_at=at,
            producer="notifier",
            case_id=case_id,
            request_event_id=f"{case_id}-ack",
            idempotency_key=f"{case_id}:acknowledgment:0",
            purpose=ReplyPurpose.ACKNOWLEDGMENT,
            status="sent",
            platform_message_id=f"m{i}",
        ),
        action(UnitActionKind.ACCEPT),
        action(UnitActionKind.PROGRESS, note="已联系用人单位，正在核实"),
        action(UnitActionKind.RESOLVE, outcome="已追回拖欠工资", amount_recovered=12000.0),
    ]


def spread(start: datetime, i: int) -> datetime:
    """The instant of the i-th case: 10 ms after the one before, as a burst of appeals arrives.
    Cases do not share instants (a cache keyed on one would flatter the figure), and their
    clocks' wake times fall into the few hourly buckets a burst uses; all after `start`, so no
    clock runs out while the bench runs. (Spread over a week instead, 2,000 cases made the store
    create a bucket table per hour during the run, a cost a running tracker pays once an hour.)"""
    return start + timedelta(milliseconds=10 * i)


def bench_lives(run: str, cases: int, start: datetime) -> list[list[CaseMessage]]:
    """The messages of `cases` cases of this run, each case at its own instant."""
    return [case_messages(f"bench-{run}-{i:06d}", i, spread(start, i)) for i in range(cases)]


def change_for(message: CaseMessage, rules: domain.Rules) -> Change:
    """What the tracker's subscriber of the message's topic applies to the case."""
    if isinstance(message, AppealNormalized):
        return lambda c: domain.open_case(c, message, rules=rules)
    if isinstance(message, DispatchOrdered):
        return lambda c: domain.record_dispatch(c, message, rules=rules)
    if isinstance(message, ReplySent):
        return lambda c: domain.record_reply(c, message, rules=rules)
    if isinstance(message, UnitActed):
        return lambda c: domain.act(c, message, rules=rules)
    raise TypeError(f"no tracker change for {type(message).__name__}")


class CountingOutbox:
    """The tracker's outbox (a `DirectProducer` of its topics, as the app has), counted."""

    def __init__(self, producer: DirectProducer) -> None:
        self.producer, self.count = producer, 0

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        messages = list(messages)
        await self.producer.send_all(messages)
        self.count += len(messages)


async def wrong_cases(repo: Any, lives: Sequence[Sequence[CaseMessage]]) -> int:
    """Cases not as their messages leave them: every change stored, every outbox and effect done."""
    wrong = 0
    for messages in lives:
        case = await repo.get(messages[0].case_id)
        wrong += (
            case is None
            or case.state is not domain.S.RESOLVED
            or bool(case.outbox or case.effects)
            or not {m.event_id for m in messages} <= case.processed
        )
    return wrong


async def create_collections(db: Any) -> None:
    """Create the tracker's collections (the timers' versions, the unit index's shards)."""
    names = {VERSIONS} | {c.name for c in ShardedCollection(db, "unit_cases").all()}
    existing = set(await db.list_collection_names())
    for name in sorted(names - existing):
        await db.create_collection(name)
