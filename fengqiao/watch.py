"""Read fengqiao topics from a point in time on, as contract messages (demo, tests, ops)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.security import BaseSecurity

from fengqiao.contracts import LANES, Envelope, message_for
from fengqiao.runtime.compat import refresh_metadata
from fengqiao.runtime.kafka_security import kafka_options


class TopicWatcher:
    """Collects every message on `topics` published since `since_ms` (default: now), once per
    event id. A topic's urgent lane (`LANES`) is read with it: `of(topic)` gives both, and
    `urgent` holds the event ids that came through a lane."""

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[str],
        *,
        since_ms: int | None = None,
        security: BaseSecurity | None = None,
    ) -> None:
        self._options = kafka_options(bootstrap, security)
        self._topics = [name for t in topics for name in (t, *_lane_of(t))]
        self._since_ms = since_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.messages: list[tuple[str, Envelope]] = []
        self._seen: set[tuple[str, str]] = set()
        self.urgent: set[str] = set()
        self.errors: list[str] = []

    async def __aenter__(self) -> TopicWatcher:
        since = self._since_ms if self._since_ms is not None else int(time.time() * 1000)
        consumer = AIOKafkaConsumer(**self._options, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            await self._seek(consumer, since)
        except BaseException:
            await consumer.stop()  # no client left behind by a failed start
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._pump())
        return self

    async def _seek(self, consumer: AIOKafkaConsumer, since: int) -> None:
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(await topic_partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        offsets = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            found = offsets.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])

    async def _pump(self) -> None:
        assert self._consumer is not None
        async for record in self._consumer:
            try:
                model = message_for(record.topic)
                message = model.model_validate_json(record.value or b"")
                topic = _BASES.get(record.topic, record.topic)
                if topic != record.topic:
                    self.urgent.add(message.event_id)
                # A re-published message keeps its event id; show it once.
                if (topic, message.event_id) not in self._seen:
                    self._seen.add((topic, message.event_id))
                    self.messages.append((topic, message))
            except Exception as exc:
                self.errors.append(f"{record.topic}@{record.offset}: {exc}")

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def of(self, topic: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [m for t, m in self.messages if t == topic and where(m)]

    async def wait_for(
        self, predicate: Callable[[TopicWatcher], bool], *, timeout: float, what: str
    ) -> None:
        """Wait until `predicate(self)` holds; TimeoutError names `what` was awaited."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.1)


_BASES = {lane.name: base for base, lane in LANES.items()}  # a lane → the topic it is a lane of


def _lane_of(topic: str) -> list[str]:
    return [LANES[topic].name] if topic in LANES else []


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The partitions of `topic` (LookupError when it does not exist)."""
    if found := consumer.partitions_for_topic(topic):
        return set(found)
    # Metadata of a topic the consumer has not seen yet arrives after one refresh.
    for _ in range(50):
        await refresh_metadata(consumer)
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await asyncio.sleep(0.1)
    raise LookupError(f"topic {topic!r} does not exist")
