"""`DirectPublisher` and `DirectProducer` on the real Kafka: keyed like the broker's publishers, in
the format FastStream subscribers read, acknowledged before `publish`/`send_all` return, counted;
a message for a topic the producer was not made for is refused before anything is sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from fengqiao.contracts import (
    CASE_EVENTS,
    POSTS_RAW,
    CaseEventRecorded,
    CaseState,
    Outgoing,
    RawPostReceived,
    by_name,
)
from fengqiao.runtime import tracing
from fengqiao.runtime.messaging import DirectProducer, DirectPublisher
from fengqiao.runtime.settings import StackSettings


def raw_post(run_id: str) -> RawPostReceived:
    return RawPostReceived(
        occurred_at=datetime.now(UTC),
        producer="itest",
        platform="generic",
        channel="webhook",
        account="@新疆检察",
        source_id=f"direct:{run_id}",
        delivery_id=run_id,
        payload={"id": run_id, "text": "博乐市拖欠工资求助"},
    )


async def last_records(stack: StackSettings, topic: str, key: bytes) -> list[Any]:
    """The records of `key` among the last few of each partition of `topic`, in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(by_name(topic).partitions)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:  # the last few records of each partition hold ours
            consumer.seek(tp, max(ends[tp] - 50, 0))
        found = []
        batches = await consumer.getmany(timeout_ms=5000, max_records=10_000)
        for records in batches.values():
            found += [r for r in records if r.key == key]
    finally:
        await consumer.stop()
    return sorted(found, key=lambda r: r.offset)


async def test_a_published_message_is_stored_keyed_and_readable(
    stack: StackSettings, run_id: str
) -> None:
    registry = CollectorRegistry()
    publisher = DirectPublisher(
        stack.kafka_bootstrap, POSTS_RAW, service="itest", registry=registry
    )
    message = raw_post(run_id)
    await publisher.start()
    try:
        await publisher.publish(message)  # returns once acknowledged
    finally:
        await publisher.stop()

    found = await last_records(stack, POSTS_RAW.name, message.kafka_key().encode())
    assert len(found) == 1
    record = found[0]
    assert dict(record.headers)["content-type"] == b"application/json"
    assert RawPostReceived.model_validate_json(record.value) == message
    ok = registry.get_sample_value(
        "fengqiao_direct_published_total", {"topic": POSTS_RAW.name, "result": "ok"}
    )
    assert ok == 1


async def test_publishing_before_start_is_refused(stack: StackSettings, run_id: str) -> None:
    publisher = DirectPublisher(stack.kafka_bootstrap, POSTS_RAW, service="itest")
    with pytest.raises(RuntimeError, match=r"posts\.raw publisher is not started"):
        await publisher.publish(raw_post(run_id))


def case_event(case_id: str, n: int) -> CaseEventRecorded:
    return CaseEventRecorded(
        occurred_at=datetime.now(UTC),
        producer="itest",
        case_id=case_id,
        event="case.progress",
        state=CaseState.IN_PROGRESS,
        previous_state=CaseState.ACCEPTED,
        caused_by=f"action-{n}",
        detail=f"step {n}",
    )


async def test_messages_sent_together_are_stored_in_order_and_counted(
    stack: StackSettings, run_id: str
) -> None:
    registry = CollectorRegistry()
    producer = DirectProducer(
        stack.kafka_bootstrap, [CASE_EVENTS, POSTS_RAW], service="itest", registry=registry
    )
    events = [case_event(f"c-direct-{run_id}", n) for n in range(5)]
    await producer.start()
    try:
        await producer.send_all(
            [Outgoing(CASE_EVENTS.name, e) for e in events]
            + [Outgoing(POSTS_RAW.name, raw_post(run_id))]
        )
        with pytest.raises(ValueError, match=r"'replies\.requested' is not one of"):
            await producer.send_all([Outgoing("replies.requested", events[0])])
    finally:
        await producer.stop()
    found = await last_records(stack, CASE_EVENTS.name, events[0].kafka_key().encode())
    assert [CaseEventRecorded.model_validate_json(r.value) for r in found] == events
    counted = {
        topic: registry.get_sample_value(
            "fengqiao_direct_published_total", {"topic": topic, "result": "ok"}
        )
        for topic in (CASE_EVENTS.name, POSTS_RAW.name)
    }
    assert counted == {CASE_EVENTS.name: 5, POSTS_RAW.name: 1}


async def test_with_tracing_each_message_carries_the_traceparent_of_its_publish(
    stack: StackSettings, run_id: str
) -> None:
    """What a consumer reads back names the publish span of the trace it was sent in (the
    webhook's, a case's change), so the trace does not end at a direct publish (issue 20)."""
    spans = InMemorySpanExporter()
    tracing.setup("itest", exporter=spans)
    producer = DirectProducer(stack.kafka_bootstrap, [CASE_EVENTS], service="itest")
    events = [case_event(f"c-traced-{run_id}", n) for n in range(2)]
    try:
        await producer.start()
        with tracing.tracer().start_as_current_span("a case's change") as change:
            await producer.send_all([Outgoing(CASE_EVENTS.name, e) for e in events])
        await producer.stop()
    finally:
        tracing.reset()
    found = await last_records(stack, CASE_EVENTS.name, events[0].kafka_key().encode())
    assert len(found) == 2
    publishes = [s for s in spans.get_finished_spans() if s.name == "case.events publish"]
    assert len(publishes) == 2
    for record, publish in zip(found, publishes, strict=True):
        assert dict(record.headers)["content-type"] == b"application/json"
        carried = tracing.span_context_of(tracing.extract(record.headers))
        assert carried is not None, "no traceparent on the record"
        assert carried.trace_id == change.get_span_context().trace_id
        assert carried.span_id == publish.context.span_id
