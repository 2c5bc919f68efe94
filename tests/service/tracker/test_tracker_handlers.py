"""Tracker's subscribers through FastStream's in-memory broker, with the in-memory case store."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import (
    APPEALS,
    CASE_EVENTS,
    DISPATCH_ORDERS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    AppealNormalized,
    CaseEventRecorded,
    DeadLetter,
    DispatchMode,
    DispatchOrdered,
    Envelope,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    Urgency,
)
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker import domain, handlers
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers
from fengqiao.testing.factories import appeal_message

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
CASE = "c-0123456789abcdef"
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")


def appeal(**overrides: Any) -> AppealNormalized:
    fields: dict[str, Any] = {
        "event_id": "appeal-1",
        "case_id": CASE,
        "original_text": "电话13812345678，博乐市拖欠工资",
        "text": "电话13812345678,博乐市拖欠工资",
        "masked_text": "电话138****5678,博乐市拖欠工资",
        "pii_kinds": ["phone"],
        "reply_to": TARGET,
    }
    return appeal_message(**{**fields, **overrides})


def orders() -> list[DispatchOrdered]:
    return [
        DispatchOrdered(
            event_id=f"order-{hop}",
            occurred_at=AT + timedelta(seconds=hop),
            producer="router",
            case_id=CASE,
            hop=hop,
            from_unit=src,
            to_unit=dst,
            to_tier=tier,
            final=hop == 2,
            chain=["xj", "652700", "652701"],
            mode=DispatchMode.PUBLIC_MENTION,
            to_handle=handle,
            lead_unit="652701",
            category="wage_arrears",
            urgency=Urgency.GENERAL,
            confidence=1.0,
        )
        for hop, src, dst, tier, handle in (
            (1, "xj", "652700", "prefecture", "@博州检察"),
            (2, "652700", "652701", "county", "@博乐检察"),
        )
    ]


def acknowledged(request: ReplyRequested) -> ReplySent:
    return ReplySent(
        event_id="sent-1",
        occurred_at=AT + timedelta(minutes=1),
        producer="notifier",
        case_id=CASE,
        request_event_id=request.event_id,
        idempotency_key=request.idempotency_key,
        purpose=request.purpose,
        status="sent",
        platform_message_id="5000000000000000",
        text="您好，已收到",
    )


@dataclass
class Tracker:
    runtime: Runtime
    repo: InMemoryCaseRepository
    events: list[CaseEventRecorded] = field(default_factory=list)
    requests: list[ReplyRequested] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)


@pytest.fixture
def tracker() -> Tracker:
    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo = InMemoryCaseRepository()
    handlers.register(
        runtime.broker,
        repo,
        indexes=InMemoryIndexes(),
        timers=InMemoryTimers(),
        rules=domain.Rules.default(),
        group_id="tracker",
        registry=runtime.registry,
    )
    probe = Tracker(runtime, repo)
    broker = runtime.broker

    @broker.subscriber(CASE_EVENTS.name, group_id="probe")
    async def on_event(event: CaseEventRecorded) -> None:
        probe.events.append(event)

    @broker.subscriber(REPLIES_REQUESTED.name, group_id="probe")
    async def on_request(request: ReplyRequested) -> None:
        probe.requests.append(request)

    for topic in (APPEALS, DISPATCH_ORDERS, REPLIES_SENT):

        @broker.subscriber(topic.dlq, group_id="probe")
        async def on_letter(letter: DeadLetter) -> None:
            probe.letters.append(letter)

    return probe


async def publish_all(broker: Any, messages: list[tuple[str, Envelope]]) -> None:
    for topic, message in messages:
        await broker.publish(message, topic, key=message.kafka_key().encode())


async def test_an_appeal_opens_a_case_and_asks_for_its_acknowledgment(tracker: Tracker) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await broker.publish(appeal(), APPEALS.name)
    [request] = tracker.requests
    assert (request.case_id, request.purpose, request.template_id) == (
        CASE,
        ReplyPurpose.ACKNOWLEDGMENT,
        "acknowledgment",
    )
    assert request.target == TARGET
    assert [(e.event, e.state) for e in tracker.events] == [("case.opened", "received")]
    doc = tracker.repo.docs[CASE]
    assert (doc["state"], doc["opened"], doc["outbox"]) == ("received", True, {})
    assert doc["masked_text"] == "电话138****5678,博乐市拖欠工资"


async def test_a_post_that_is_not_an_appeal_opens_nothing(tracker: Tracker) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await broker.publish(appeal(is_appeal=False), APPEALS.name)
    assert tracker.repo.docs == {}
    assert tracker.requests == tracker.events == []


async def test_appeal_dispatch_and_reply_build_the_case(tracker: Tracker) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await publish_all(broker, [(APPEALS.name, appeal())])
        await publish_all(broker, [(DISPATCH_ORDERS.name, o) for o in orders()])
        request, announcement = tracker.requests
        assert announcement.purpose is ReplyPurpose.DISPATCH_ANNOUNCEMENT
        assert announcement.variables["to_handle"] == "@博乐检察"
        await publish_all(broker, [(REPLIES_SENT.name, acknowledged(request))])

    doc = tracker.repo.docs[CASE]
    assert doc["state"] == "dispatched"
    assert doc["acknowledged"] is True
    assert doc["chain"] == ["xj", "652700", "652701"]
    assert [(h["hop"], h["to_unit"], h["final"]) for h in doc["hops"]] == [
        (1, "652700", False),
        (2, "652701", True),
    ]
    assert (doc["assigned_unit"], doc["category"], doc["urgency"]) == (
        "652701",
        "wage_arrears",
        "general",
    )
    assert doc["replies"][f"{CASE}:acknowledgment:0"]["platform_message_id"] == "5000000000000000"
    assert [e["event"] for e in doc["timeline"]] == [
        "case.opened",
        "case.dispatched",
        "case.dispatched",
        "case.acknowledged",
    ]
    assert doc["processed"] == sorted(["appeal-1", "order-1", "order-2", "sent-1"])
    assert doc["outbox"] == {}
    assert [(e.event, e.state, e.unit_id) for e in tracker.events] == [
        ("case.opened", "received", None),
        ("case.dispatched", "dispatched", "652700"),
        ("case.dispatched", "dispatched", "652701"),
        ("case.acknowledged", "dispatched", None),
    ]
    assert {e.caused_by for e in tracker.events} == {"appeal-1", "order-1", "order-2", "sent-1"}
    assert len(tracker.requests) == 2  # the acknowledgment, the public @ of the unit
    assert tracker.letters == []


async def test_everything_delivered_twice_changes_nothing_the_second_time(
    tracker: Tracker,
) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await publish_all(broker, [(APPEALS.name, appeal())])
        await publish_all(broker, [(DISPATCH_ORDERS.name, o) for o in orders()])
        reply = acknowledged(tracker.requests[0])
        everything = [
            (APPEALS.name, appeal()),
            *[(DISPATCH_ORDERS.name, o) for o in orders()],
            (REPLIES_SENT.name, reply),
        ]
        await publish_all(broker, [(REPLIES_SENT.name, reply)])
        after_first = copy.deepcopy(tracker.repo.docs)
        published = (list(tracker.events), list(tracker.requests))

        await publish_all(broker, everything)

    assert tracker.repo.docs == after_first
    assert (tracker.events, tracker.requests) == published
    assert tracker.letters == []


async def test_a_dispatch_before_its_appeal_is_kept(tracker: Tracker) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await publish_all(broker, [(DISPATCH_ORDERS.name, orders()[0])])
        assert tracker.repo.docs[CASE]["state"] == "dispatched"
        assert tracker.repo.docs[CASE]["opened"] is False
        assert tracker.requests == []
        await publish_all(broker, [(APPEALS.name, appeal())])
    doc = tracker.repo.docs[CASE]
    assert (doc["state"], doc["opened"]) == ("dispatched", True)
    assert len(tracker.requests) == 1


async def test_a_failed_reply_is_on_the_timeline(tracker: Tracker) -> None:
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await publish_all(broker, [(APPEALS.name, appeal())])
        request = tracker.requests[0]
        failed = ReplySent(
            event_id="sent-x",
            occurred_at=AT,
            producer="notifier",
            case_id=CASE,
            request_event_id=request.event_id,
            idempotency_key=request.idempotency_key,
            purpose=request.purpose,
            status="failed",
            error="21301: auth faild!",
        )
        await publish_all(broker, [(REPLIES_SENT.name, failed)])
    doc = tracker.repo.docs[CASE]
    assert doc["state"] == "received"
    assert doc["acknowledged"] is False
    assert doc["timeline"][-1]["event"] == "reply.failed"
    assert doc["timeline"][-1]["detail"] == "acknowledgment: 21301: auth faild!"
    assert tracker.events[-1].event == "reply.failed"


async def test_a_message_off_contract_goes_to_dead_letters(tracker: Tracker) -> None:
    body = orders()[0].model_dump(mode="json")
    body["hop"] = 0
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await broker.publish(body, DISPATCH_ORDERS.name, key=CASE.encode())
    [letter] = tracker.letters
    assert (letter.origin_topic, letter.origin_key, letter.consumer) == (
        DISPATCH_ORDERS.name,
        CASE,
        "tracker",
    )
    assert letter.error == "hop: Input should be greater than or equal to 1"
    assert tracker.repo.docs == {}


async def test_fields_a_newer_producer_added_are_ignored_not_dead_lettered(
    tracker: Tracker,
) -> None:
    # A rolling deploy: the router already writes a field this tracker does not know yet.
    body = orders()[0].model_dump(mode="json")
    body["priority"] = "high"
    body["evidence"] = [{"kind": "geo", "value": "博乐", "weight": 1.0, "source": "gps"}]
    async with TestKafkaBroker(tracker.runtime.broker) as broker:
        await publish_all(broker, [(APPEALS.name, appeal())])
        await broker.publish(body, DISPATCH_ORDERS.name, key=CASE.encode())
    assert tracker.letters == []
    assert [h["hop"] for h in tracker.repo.docs[CASE]["hops"]] == [1]
