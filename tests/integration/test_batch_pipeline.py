"""A batch subscriber whose handler finishes its polls in the background (the tracker's) is
handed the next poll meanwhile, and its offsets are committed in poll order, never past a
message that is not finished: on a real Kafka consumer, with polls that finish out of order, a
poll whose dead letter cannot be written, and a stop in the middle."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka.annotations import KafkaMessage

from fengqiao.contracts import AppealNormalized, Topic
from fengqiao.runtime import messaging
from fengqiao.runtime.messaging import BatchFailures, DeadLetterMiddleware, batch_subscriber
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message

MESSAGES = 60


@pytest.fixture
async def topic(stack: StackSettings, run_id: str) -> Topic:
    name = f"test.pipeline.{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1), NewTopic(f"{name}.dlq", 1, 1)])
    finally:
        await admin.close()
    return Topic(name, 2, "case_id", AppealNormalized, "a test topic")


async def publish(stack: StackSettings, topic: str, appeals: list[AppealNormalized]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i, appeal in enumerate(appeals):  # both partitions, in turn
            body, key = appeal.model_dump_json().encode(), appeal.case_id.encode()
            await producer.send(topic, body, key=key, partition=i % 2)
        await producer.flush()
    finally:
        await producer.stop()


async def committed(stack: StackSettings, topic: str, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
    finally:
        await consumer.stop()


async def test_polls_finished_in_the_background_are_committed_in_order(
    stack: StackSettings, run_id: str, topic: Topic, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime.create("svc", stack, with_mongo=False)
    finished: set[tuple[int, int]] = set()  # (partition, offset) of the messages finished
    handled: list[str] = []
    refused = ("c-dl0", "c-dl1")  # failed by the handler: to dead letters
    commits: list[dict[TopicPartition, int]] = []
    early: list[tuple[int, int]] = []  # commits past an unfinished message
    polls = 0

    @batch_subscriber(
        runtime.broker, topic, group_id=f"t-{run_id}", action="t", description="t", max_records=4
    )
    async def handle(
        appeals: list[AppealNormalized], message: KafkaMessage
    ) -> asyncio.Task[BatchFailures]:
        nonlocal polls
        polls += 1
        records = message.raw_message
        # Earlier polls take longer: each would be committed before the one before it ended.
        delay = 0.05 if polls % 2 else 0.0

        async def finish() -> BatchFailures:
            await asyncio.sleep(delay)
            handled.extend(a.case_id for a in appeals)
            finished.update((r.partition, r.offset) for r in records)
            return BatchFailures(
                {i: ValueError("refused") for i, a in enumerate(appeals) if a.case_id in refused}
            )

        return asyncio.ensure_future(finish())

    # The first two dead letters cannot be written (Kafka refuses them): their polls are not
    # committed. One message of each partition is refused, so that a poll of the other partition
    # may fail while the first failure is rewound.
    dead_letter = DeadLetterMiddleware._dead_letter
    refusals = [RuntimeError("the dead-letter topic is gone") for _ in refused]

    async def refusing(self: DeadLetterMiddleware, record: Any, exc: BaseException) -> None:
        if refusals:
            raise refusals.pop()
        await dead_letter(self, record, exc)

    monkeypatch.setattr(DeadLetterMiddleware, "_dead_letter", refusing)

    commit = messaging.Pipeline._commit

    async def checked(self: messaging.Pipeline, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():  # nothing before the committed offset is unfinished
            if not all((tp.partition, o) in finished for o in range(offset)):
                early.append((tp.partition, offset))
        commits.append(offsets)
        await commit(self, offsets)

    monkeypatch.setattr(messaging.Pipeline, "_commit", checked)

    cases = [f"c-{i}" for i in range(MESSAGES)]
    cases[MESSAGES // 2], cases[MESSAGES // 2 + 1] = refused
    appeals = [appeal_message(case_id=c, event_id=f"e-{run_id}-{i}") for i, c in enumerate(cases)]
    async with serving(http_app(runtime, description="t")):
        await publish(stack, topic.name, appeals)
        for _ in range(600):
            again = sum(map(handled.count, refused)) >= 2 * len(refused)  # the rewound polls
            if set(cases) <= set(handled) and not refusals and len(finished) == MESSAGES and again:
                break
            await asyncio.sleep(0.05)
        # The stop comes while polls may still be finishing: what they finish is committed.
    assert set(cases) <= set(handled)
    assert commits and early == []
    # The polls whose dead letters failed came again (so did the polls taken after them): each
    # refusal brings its message back once more. Which refused message a refusal hits depends
    # on timing (a rewind may bring the first one back before the second is ever read), so
    # the refused messages count two handlings each in all, not each two.
    assert sum(map(handled.count, refused)) >= 2 * len(refused)
    assert await committed(stack, topic.name, f"t-{run_id}.{topic.name}") == {
        p: sum(1 for r in finished if r[0] == p) for p in (0, 1)
    }
    for earlier, later in itertools.pairwise(commits):  # never backwards
        assert all(later[tp] >= earlier[tp] for tp in later.keys() & earlier.keys())


async def test_a_stop_commits_the_polls_being_finished_and_takes_no_more(
    stack: StackSettings, run_id: str, topic: Topic
) -> None:
    runtime = Runtime.create("svc", stack, with_mongo=False)
    finished: list[int] = []  # partitions of the messages finished
    begun = asyncio.Event()

    @batch_subscriber(
        runtime.broker, topic, group_id=f"t-{run_id}", action="t", description="t", max_records=4
    )
    async def handle(
        appeals: list[AppealNormalized], message: KafkaMessage
    ) -> asyncio.Task[BatchFailures]:
        begun.set()

        async def finish() -> BatchFailures:
            await asyncio.sleep(0.3)
            finished.extend(r.partition for r in message.raw_message)
            return BatchFailures()

        return asyncio.ensure_future(finish())

    appeals = [appeal_message(case_id=f"c-{i}", event_id=f"e-{run_id}-{i}") for i in range(40)]
    async with serving(http_app(runtime, description="t")):
        await publish(stack, topic.name, appeals)
        await asyncio.wait_for(begun.wait(), 60)
        # Stopped at once: the polls taken are still finishing.
    assert 0 < len(finished) < len(appeals)
    done = await committed(stack, topic.name, f"t-{run_id}.{topic.name}")
    assert {p: n or 0 for p, n in done.items()} == {p: finished.count(p) for p in (0, 1)}
