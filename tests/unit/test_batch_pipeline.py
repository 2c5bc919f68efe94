"""The commits of a batch subscriber's polls (`Pipeline`), on a consumer that records what it is
told: in poll order, never past a poll that is not finished, and a failure rewinds every
partition to its first message not finished."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from pymongo.errors import AutoReconnect

from fengqiao.runtime.messaging import Outages, Pipeline

TOPIC = "t"


class Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[int, int]] = []
        self.seeks: dict[int, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp.partition] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append({tp.partition: offset for tp, offset in offsets.items()})


def poll(partition: int, first: int, size: int = 4) -> list[Any]:
    return [
        SimpleNamespace(topic=TOPIC, partition=partition, offset=o)
        for o in range(first, first + size)
    ]


async def finished_when(event: asyncio.Event, failure: Exception | None = None) -> None:
    await event.wait()
    if failure is not None:
        raise failure


async def test_polls_are_committed_in_order_though_they_finish_out_of_order() -> None:
    consumer = Consumer()
    pipeline = Pipeline(consumer)  # type: ignore[arg-type]
    first, second = asyncio.Event(), asyncio.Event()
    await pipeline.add(finished_when(first), poll(0, 0), pipeline.generation)
    adding = asyncio.ensure_future(
        pipeline.add(finished_when(second), poll(0, 4), pipeline.generation)
    )
    second.set()
    await asyncio.sleep(0.01)
    assert consumer.commits == []  # the second is finished, the first is not
    first.set()
    await adding
    await pipeline.drain()
    assert consumer.commits == [{0: 4}, {0: 8}]


async def test_a_failure_rewinds_every_partition_and_nothing_after_it_is_committed() -> None:
    """Poll A (partition 0) fails while poll B (partition 1, taken after it) fails too: B is of
    the generation A's failure ended, so A's rewind must bring B's messages back as well."""
    consumer = Consumer()
    pipeline = Pipeline(consumer)  # type: ignore[arg-type]
    done = asyncio.Event()
    done.set()
    await pipeline.add(finished_when(done), poll(0, 0), pipeline.generation)  # committed
    a, b = asyncio.Event(), asyncio.Event()
    generation = pipeline.generation
    refused = RuntimeError("dead letters refused")
    await pipeline.add(finished_when(a, refused), poll(0, 4), generation)
    adding = asyncio.ensure_future(pipeline.add(finished_when(b, refused), poll(1, 0), generation))
    b.set()
    await asyncio.sleep(0.01)
    a.set()
    await adding
    await pipeline.drain()
    assert consumer.commits == [{0: 4}]
    assert consumer.seeks == {0: 4, 1: 0}
    # Polls taken after the rewind are committed again.
    await pipeline.add(finished_when(done), poll(0, 4), pipeline.generation)
    await pipeline.add(finished_when(done), poll(1, 0), pipeline.generation)
    await pipeline.drain()
    assert consumer.commits == [{0: 4}, {0: 8}, {1: 4}]


async def test_a_cancelled_poll_is_not_committed_and_rewinds() -> None:
    consumer = Consumer()
    pipeline = Pipeline(consumer)  # type: ignore[arg-type]
    never = asyncio.Event()
    handling = asyncio.ensure_future(never.wait())
    await pipeline.add(handling, poll(1, 10), pipeline.generation)
    handling.cancel()
    await pipeline.drain()
    assert consumer.commits == [] and consumer.seeks == {1: 10}


class PausingConsumer(Consumer):
    def __init__(self) -> None:
        super().__init__()
        self.paused: set[TopicPartition] = set()
        self.paused_during_wait: set[TopicPartition] = set()

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused.update(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused.difference_update(partitions)


async def test_a_transient_failure_pauses_waits_and_the_poll_comes_again() -> None:
    """The store was away while a poll was finished in the background: its partitions are
    paused for the service's wait, nothing is committed, the poll comes again, and its commit
    ends the outage."""
    consumer = PausingConsumer()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        consumer.paused_during_wait = set(consumer.paused)

    outages = Outages("svc", first=0.5, sleep=sleep)
    pipeline = Pipeline(consumer, outages)  # type: ignore[arg-type]
    done = asyncio.Event()
    done.set()
    await pipeline.add(finished_when(done, AutoReconnect("gone")), poll(0, 0), pipeline.generation)
    await pipeline.drain()
    assert consumer.commits == [] and consumer.seeks == {0: 0}
    assert waits == [0.5] and consumer.paused_during_wait == consumer.assignment()
    assert consumer.paused == set() and outages.readiness() != "ok"
    await pipeline.add(finished_when(done), poll(0, 0), pipeline.generation)
    await pipeline.drain()
    assert consumer.commits == [{0: 4}] and outages.readiness() == "ok"
