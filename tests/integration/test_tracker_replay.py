"""Idempotency on the real stack: every message of several cases delivered again (twice more,
as a replay of the topics would) leaves each case exactly as it was, and emits nothing new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from fengqiao.contracts import (
    APPEALS,
    CASE_EVENTS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    Envelope,
    ReplyPurpose,
    ReplySent,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.app import build
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message, dispatch_message
from fengqiao.testing.groups import start_group_at_end
from fengqiao.watch import TopicWatcher

# Every topic the tracker subscribes to.
TOPIC_NAMES = [
    t.name
    for t in (
        APPEALS,
        DISPATCH_ORDERS,
        REPLIES_SENT,
        UNIT_ACTIONS,
        COORDINATION_REQUESTS,
        SUPERVISION_ORDERS,
    )
]


def messages_of(case_id: str, n: int, at: datetime) -> list[tuple[str, Envelope]]:
    """A case's life in messages: opened, dispatched in two hops, acknowledged, signed,
    progress, resolved."""

    def action(kind: UnitActionKind, minutes: int, **fields: Any) -> UnitActed:
        return UnitActed(
            event_id=f"{case_id}-{kind.value}",
            occurred_at=at + timedelta(minutes=minutes),
            producer="itest",
            case_id=case_id,
            unit_id="652701",
            action=kind,
            **fields,
        )

    return [
        (
            APPEALS.name,
            appeal_message(
                f"博乐市拖欠工资 第{n}件",
                event_id=f"{case_id}-appeal",
                case_id=case_id,
                occurred_at=at,
            ),
        ),
        *[
            (
                DISPATCH_ORDERS.name,
                dispatch_message(
                    event_id=f"{case_id}-order-{hop}",
                    case_id=case_id,
                    hop=hop,
                    from_unit=src,
                    to_unit=dst,
                    to_tier="prefecture" if hop == 1 else "county",
                    final=hop == 2,
                    occurred_at=at + timedelta(seconds=hop),
                ),
            )
            for hop, src, dst in ((1, "xj", "652700"), (2, "652700", "652701"))
        ],
        (
            REPLIES_SENT.name,
            ReplySent(
                event_id=f"{case_id}-ack",
                occurred_at=at + timedelta(seconds=5),
                producer="itest",
                case_id=case_id,
                request_event_id="r",
                idempotency_key=f"{case_id}:acknowledgment:0",
                purpose=ReplyPurpose.ACKNOWLEDGMENT,
                status="sent",
                platform_message_id=f"m-{n}",
            ),
        ),
        (UNIT_ACTIONS.name, action(UnitActionKind.ACCEPT, 10)),
        (UNIT_ACTIONS.name, action(UnitActionKind.PROGRESS, 20, note="已联系")),
        (UNIT_ACTIONS.name, action(UnitActionKind.RESOLVE, 30, outcome="已发放")),
    ]


async def caught_up(bootstrap: str, group_prefix: str, topics: list[str]) -> None:
    """Wait until the tracker's consumer groups have committed every message of `topics`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        for _ in range(600):
            behind = 0
            for topic in topics:
                committed = await admin.list_consumer_group_offsets(f"{group_prefix}.{topic}")
                partitions = [
                    TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
                ]
                ends = await consumer.end_offsets(partitions)
                for tp, end in ends.items():
                    meta = committed.get(tp)
                    behind += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
            if behind == 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the tracker is still {behind} messages behind")
    finally:
        await consumer.stop()
        await admin.close()


async def test_replaying_every_message_twice_changes_no_case(
    stack: StackSettings, run_id: str
) -> None:
    settings = TrackerSettings(
        stack=stack, database=f"itest_replay_{run_id}", group_id=f"tracker-{run_id}"
    )
    runtime, app = build(settings)
    at = datetime.now(UTC)
    cases = [f"c-replay-{run_id}-{n}" for n in range(6)]
    sent = [m for n, c in enumerate(cases) for m in messages_of(c, n, at)]
    topics = sorted({topic for topic, _ in sent})
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    repo = MongoCaseRepository(client, settings.database)

    async def settled(upto: list[tuple[str, Envelope]]) -> dict[str, dict[str, Any]]:
        """Each case's view once every one of those messages is applied, its outbox is empty
        and its view shows that version (views trail their versions by up to a second)."""
        wanted = {c: {m.event_id for _, m in upto if m.case_id == c} for c in cases}
        for _ in range(300):
            docs = {c: await repo.get(c) for c in cases}
            views = {c: await repo.find(c) or {} for c in cases}
            if all(
                d is not None
                and wanted[c] <= d.processed
                and not d.outbox
                and not d.effects
                and views[c].get("version") == d.version
                for c, d in docs.items()
            ):
                return views
            await asyncio.sleep(0.2)
        raise AssertionError("the tracker never applied every message")

    async def publish_all(messages: list[tuple[str, Envelope]]) -> None:
        for topic, message in messages:
            await runtime.broker.publish(message, topic, key=message.kafka_key().encode())

    # A new group would read every earlier test's messages first: start it at the end.
    for topic in TOPIC_NAMES:
        await start_group_at_end(stack.kafka_bootstrap, f"{settings.group_id}.{topic}", topic)
    try:
        async with (
            TopicWatcher(stack.kafka_bootstrap, [CASE_EVENTS.name, REPLIES_REQUESTED.name]) as w,
            serving(app),
        ):
            # The topics are read concurrently: the offices act once the cases reached them.
            before_actions = [(t, m) for t, m in sent if t != UNIT_ACTIONS.name]
            await publish_all(before_actions)
            await settled(before_actions)
            await publish_all([(t, m) for t, m in sent if t == UNIT_ACTIONS.name])
            first = await settled(sent)
            emitted = len([m for _, m in w.messages if m.case_id in cases])
            await publish_all(sent)
            await publish_all(sent)
            await caught_up(stack.kafka_bootstrap, settings.group_id, topics)
            again = {c: await repo.find(c) or {} for c in cases}
            after = len([m for _, m in w.messages if m.case_id in cases])
        assert again == first
        assert after == emitted
        assert [d["state"] for d in first.values()] == ["resolved"] * len(cases)
    finally:
        await client.drop_database(settings.database)
        await client.close()
