"""The batch pipeline: a batch subscriber's polls, finished in the background (up to
`BATCHES_IN_FLIGHT` at once) and committed in poll order with explicit offsets."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from fengqiao.runtime.compat import subscriber_consumers
from fengqiao.runtime.messaging.faults import Outages, is_transient

log = logging.getLogger("fengqiao.runtime.messaging")


class BatchFailures(dict[int, Exception]):
    """What a `batch_subscriber`'s handler returns: the position (in the list it was given) of
    each message it could not handle, and why; those go to dead letters."""


DECODED = "fengqiao_decoded_batch"  # the attribute of a batch's StreamMessage, see below


def batch_records(msg: Any) -> list[Any]:
    """The Kafka records of the messages a `batch_subscriber` handed its handler, in the same
    order (those refused by the contract left out)."""
    batch: DecodedBatch | None = getattr(msg, DECODED, None)
    return batch.records if batch is not None else list(msg.raw_message)


class DecodedBatch:
    """The records of a batch whose messages were handed to the handler (in the same order),
    and those refused by the contract."""

    def __init__(self, records: Iterable[Any] = ()) -> None:
        self.records: list[Any] = list(records)
        self.refused: list[tuple[Any, Exception]] = []


# Polls of one batch subscriber being finished at once: one poll's writes overlap the next
# poll's computing; more crowd the store (docs/performance.md, Messaging and the notifier).
BATCHES_IN_FLIGHT = 3


class Pipeline:
    """The polls of one batch subscriber's consumer that are being finished (handled, their
    failures dead-lettered), oldest first, and their commits.

    A poll's offsets (of each partition, the one after its last record) are committed once it
    and every poll before it are finished: a crash re-delivers whatever was not finished, as
    FastStream's commit after each handler did. A poll that could not be finished (its dead
    letters could not be written, or it was cancelled) is not committed, and neither is any
    poll taken after it: every partition is sought back to its first message not finished, and
    they come again (the tracker's changes are idempotent: a case keeps the ids of the messages
    it applied). A poll that failed transiently (the store or Kafka is away) is rewound the
    same way, after its partitions were paused for the service's wait (`faults.Outages`): the
    consumer keeps polling (and its group membership) but takes nothing meanwhile. A commit
    that fails (a rebalance moved the partition away, Kafka is gone a moment) is logged: the
    next poll's commit covers it, or the partition's new owner handles the messages again.
    """

    def __init__(self, consumer: AIOKafkaConsumer, outages: Outages | None = None) -> None:
        self.consumer = consumer
        self.outages = outages or Outages("unknown")
        self.draining = False  # `drain` paused the partitions for good
        self.finishing: deque[asyncio.Task[None]] = deque()
        # Raised when the consumer is sought back: the polls taken before are not committed.
        self.generation = 0
        # Each partition's first message not finished (in poll order): where a failure rewinds.
        # After a rebalance took a partition away and gave it back it may lie further back: the
        # messages between come again, which is safe, only slower.
        self.unfinished: dict[TopicPartition, int] = {}

    @classmethod
    def of(cls, consumer: Any, outages: Outages | None = None) -> Pipeline | None:
        """The pipeline of a real consumer (None for an in-memory test broker's)."""
        if not isinstance(consumer, AIOKafkaConsumer):
            return None
        pipeline = PIPELINES.get(consumer)
        if pipeline is None:
            pipeline = PIPELINES[consumer] = cls(consumer, outages)
        return pipeline

    async def add(
        self, finishing: Awaitable[None], records: Sequence[Any], generation: int
    ) -> None:
        """Finish and commit a poll taken in `generation` in the background; return once fewer
        than `BATCHES_IN_FLIGHT` polls are being finished (so the next poll can be taken)."""
        for record in records:  # a partition seen for the first time
            self.unfinished.setdefault(
                TopicPartition(record.topic, record.partition), record.offset
            )
        previous = self.finishing[-1] if self.finishing else None
        self.finishing.append(
            asyncio.ensure_future(self._finish(finishing, previous, records, generation))
        )
        while True:
            while self.finishing and self.finishing[0].done():
                self.finishing.popleft()  # they end in order: each waits for the one before
            if len(self.finishing) < BATCHES_IN_FLIGHT:
                return
            await asyncio.wait([self.finishing[0]])

    async def _finish(
        self,
        finishing: Awaitable[None],
        previous: asyncio.Task[None] | None,
        records: Sequence[Any],
        generation: int,
    ) -> None:
        failure: BaseException | None = None
        try:
            await finishing
        except BaseException as exc:  # cancelled too: not finished, so not committed
            failure = exc
        if previous is not None:
            await asyncio.wait([previous])
        # A poll of an earlier generation comes again: the rewind went back before it.
        if generation == self.generation:
            if failure is None:
                offsets = {TopicPartition(r.topic, r.partition): r.offset + 1 for r in records}
                self.unfinished.update(offsets)
                await self._commit(offsets)
                self.outages.passed(self)  # if a poll had failed transiently: it went through
            else:
                if isinstance(failure, Exception) and is_transient(failure):  # not cancelled
                    await self._wait_out(failure, records)
                self.generation += 1
                self._rewind(failure)
        if isinstance(failure, asyncio.CancelledError):
            raise failure

    async def _wait_out(self, failure: BaseException, records: Sequence[Any]) -> None:
        """Pause the partitions, wait as the service's outage says, resume: the poll comes
        again after the wait, and nothing new is taken meanwhile."""
        paused = self.consumer.assignment()
        self.consumer.pause(*paused)
        try:
            await self.outages.wait(failure, records[0].topic if records else "?", self)
        finally:
            if not self.draining:
                self.consumer.resume(*(tp for tp in paused if tp in self.consumer.assignment()))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.warning(
                "committing %s failed (%s: %s); the next commit covers it, or the messages "
                "come again",
                _describe_offsets(offsets),
                type(exc).__name__,
                exc,
            )

    def _rewind(self, failure: BaseException) -> None:
        assigned = self.consumer.assignment()
        rewound = {tp: o for tp, o in self.unfinished.items() if tp in assigned}
        for tp, offset in rewound.items():
            self.consumer.seek(tp, offset)
        log.log(
            logging.WARNING if is_transient(failure) else logging.ERROR,
            "a poll could not be finished (%s: %s); the messages come again from %s",
            type(failure).__name__,
            failure,
            _describe_offsets(rewound),
        )

    async def drain(self) -> None:
        """Wait until the polls being finished are finished and committed."""
        while self.finishing:
            await asyncio.wait([self.finishing[-1]])
            while self.finishing and self.finishing[0].done():
                self.finishing.popleft()


PIPELINES: weakref.WeakKeyDictionary[AIOKafkaConsumer, Pipeline] = weakref.WeakKeyDictionary()


def _describe_offsets(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in offsets.items())


async def drain(broker: KafkaBroker, timeout: float = 30.0) -> None:
    """Before `broker.stop()`: stop taking polls for the batch subscribers and wait (up to
    `timeout` seconds) until the polls they are finishing are committed; what is not finished
    by then comes again after the restart."""
    pipelines = []
    for consumer in (c for s in broker.subscribers for c in subscriber_consumers(s)):
        pipeline = PIPELINES.get(consumer)
        if pipeline is not None:
            pipeline.draining = True
            consumer.pause(*consumer.assignment())
            pipelines.append(pipeline)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.drain() for p in pipelines)), timeout)
    except TimeoutError:
        left = sum(len(p.finishing) for p in pipelines)
        log.warning(
            "stopping with %d polls not finished after %.0f s: they come again", left, timeout
        )
