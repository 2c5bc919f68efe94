"""Kafka plumbing every service shares: the broker, topic creation, dead letters and metrics.

- Producers wait for all in-sync replicas (acks=all) and are idempotent, so a publish that
  returned has been stored once.
- Consumers commit only after the handler finished (at-least-once); a message that fails is
  written to `<topic>.dlq` with its error and origin, and the consumer moves on. If even the
  dead-letter write fails (Kafka gone), the message is not committed and comes again. A batch
  subscriber may finish a poll in the background while it takes the next; its polls are still
  committed in order, each once it and those before it are finished (`_Pipeline`).
- Every subscriber of every service is measured the same way, here and not per service:
  messages processed and failed per topic, handler latency, and consumer lag (`SubscriberMetrics`).
- `DirectProducer` (and `DirectPublisher`, for one topic) publishes through a plain aiokafka
  producer with the same guarantees and wire format, for hot paths: intake's webhooks (a message
  per HTTP request) and the tracker's outboxes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy, BaseMiddleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fengqiao.contracts import TOPICS, DeadLetter, Envelope, Outgoing, Topic
from fengqiao.contracts.topics import DLQ_PARTITIONS
from fengqiao.runtime.clock import utcnow

log = logging.getLogger("fengqiao.runtime.messaging")

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def make_broker(
    bootstrap: str,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    metrics: SubscriberMetrics | None = None,
) -> KafkaBroker:
    """A broker with fengqiao's delivery guarantees and the dead-letter middleware; with a
    registry, its subscribers are measured (`metrics`, or new ones on that registry)."""
    if metrics is None and registry is not None:
        metrics = SubscriberMetrics(service, registry)
    middlewares: list[Any] = [DeadLetterMiddleware.for_service(service, metrics)]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=service))
    return KafkaBroker(
        bootstrap,
        client_id=f"fengqiao-{service}",
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=middlewares,
        logger=logging.getLogger(f"fengqiao.{service}.kafka"),
        log_level=logging.DEBUG,  # one line per message is for debugging, not for operations
    )


async def publish(broker: KafkaBroker, topic: str, message: Envelope) -> None:
    """Publish `message` keyed by its contract's key and wait for the broker's acknowledgement."""
    await broker.publish(message, topic=topic, key=message.kafka_key().encode())


def topic_specs(replication: int = 1, names: Iterable[str] | None = None) -> list[NewTopic]:
    """The NewTopic of every fengqiao topic (and its dead-letter topic)."""
    wanted = set(names) if names is not None else None
    specs = []
    for topic in TOPICS:
        for name, partitions in ((topic.name, topic.partitions), (topic.dlq, DLQ_PARTITIONS)):
            if wanted is None or name in wanted:
                specs.append(NewTopic(name, partitions, replication))
    return specs


async def ensure_topics(bootstrap: str, *, replication: int = 1) -> list[str]:
    """Create every fengqiao topic that does not exist yet; return the names created.

    Safe to call from every service at every start, concurrently: a topic another service
    created a moment ago is simply skipped.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="fengqiao-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in topic_specs(replication) if s.name not in existing]
        created = []
        for spec in missing:  # one by one, so a race on one topic does not hide the others
            try:
                await admin.create_topics([spec])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


class SubscriberMetrics:
    """What every subscriber of a service is measured by, on the service's registry.

    - `fengqiao_messages_processed_total{service,topic}`: handled (and committed);
    - `fengqiao_messages_failed_total{service,topic,error_type}`: the handler raised;
    - `fengqiao_dead_letters_total{service,topic}`: of those, written to `<topic>.dlq`;
    - `fengqiao_handler_seconds{service,topic}`: handler latency, failures included;
    - `fengqiao_consumer_lag{service,group,topic,partition}`: messages behind the end of each
      assigned partition, computed at every scrape (`refresh_lag`).
    """

    LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5, 10)

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.processed = Counter(
            "fengqiao_messages_processed_total",
            "Messages a subscriber handled",
            ["service", "topic"],
            registry=registry,
        )
        self.failed = Counter(
            "fengqiao_messages_failed_total",
            "Messages whose handler raised (then dead-lettered)",
            ["service", "topic", "error_type"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "fengqiao_dead_letters_total",
            "Messages sent to a dead-letter topic",
            ["service", "topic"],
            registry=registry,
        )
        self.latency = Histogram(
            "fengqiao_handler_seconds",
            "Time a subscriber's handler took for one message",
            ["service", "topic"],
            buckets=self.LATENCY_BUCKETS,
            registry=registry,
        )
        self.lag = Gauge(
            "fengqiao_consumer_lag",
            "Messages between a consumer group's position and the end of the partition",
            ["service", "group", "topic", "partition"],
            registry=registry,
        )
        # Offset after the last message handled per (topic, partition): the prefetch buffer
        # runs ahead of the consumer's fetch position, so lag counts from what was handled.
        self.handled: dict[tuple[str, int], int] = {}
        self._by_topic: dict[str, tuple[Any, Any]] = {}  # topic → (latency, processed) children

    def observe(self, record: Any, seconds: float, error: BaseException | None) -> None:
        topic = record.topic
        children = self._by_topic.get(topic)
        if children is None:  # labels() looks its child up each time: once per topic
            children = self._by_topic[topic] = (
                self.latency.labels(self.service, topic),
                self.processed.labels(self.service, topic),
            )
        latency, processed = children
        latency.observe(seconds)
        if error is None:
            processed.inc()
        else:
            self.failed.labels(self.service, topic, type(error).__name__).inc()
        if isinstance(record.partition, int) and isinstance(record.offset, int):
            self.handled[(topic, record.partition)] = record.offset + 1

    async def refresh_lag(self, broker: KafkaBroker, timeout: float = 2.0) -> None:
        """Recompute the lag gauge from the subscribers' consumers (at scrape time)."""
        values: list[tuple[str, TopicPartition, int]] = []
        assigned: set[tuple[str, int]] = set()
        for consumer in (c for s in broker.subscribers for c in subscriber_consumers(s)):
            group = getattr(consumer, "_group_id", None) or ""
            for tp in sorted(consumer.assignment()):
                assigned.add((tp.topic, tp.partition))
                try:
                    high = consumer.highwater(tp)
                except AssertionError:  # revoked by a rebalance while we awaited a commit
                    continue
                if high is None:  # no fetch answered yet for this partition
                    continue
                done = self.handled.get((tp.topic, tp.partition))
                if done is None:  # nothing handled here since start: the group's commit
                    try:
                        done = await asyncio.wait_for(consumer.committed(tp), timeout)
                    except Exception:  # the gauge is best effort; readiness reports Kafka
                        continue
                    if done is None:
                        continue
                    self.handled[(tp.topic, tp.partition)] = done
                values.append((group, tp, max(high - done, 0)))
        # A partition another replica took over: forget it, its offsets move elsewhere.
        for key in [k for k in self.handled if k not in assigned]:
            del self.handled[key]
        self.lag.clear()
        for group, tp, lag in values:
            self.lag.labels(self.service, group, tp.topic, str(tp.partition)).set(lag)


def consumers_assigned(broker: KafkaBroker) -> dict[str, str]:
    """Each subscriber's consumer group and whether it has joined: "assigned N" (partitions),
    "joined" (a member with no partition: more replicas than partitions), or what is missing.
    """
    states: dict[str, str] = {}
    for subscriber in broker.subscribers:
        consumers = subscriber_consumers(subscriber)
        names = ",".join(getattr(subscriber, "topic_names", None) or ()) or "?"
        if not consumers:
            states[names] = "not started"
            continue
        group = getattr(consumers[0], "_group_id", None) or names
        assigned: set[TopicPartition] = set().union(*(c.assignment() for c in consumers))
        generations = [
            getattr(getattr(c, "_coordinator", None), "generation", -1) for c in consumers
        ]
        if assigned:
            states[group] = f"assigned {len(assigned)}"
        elif any(isinstance(g, int) and g > 0 for g in generations):
            states[group] = "joined"
        else:
            states[group] = "not assigned"
    return states


def subscriber_consumers(subscriber: Any) -> list[Any]:
    """The aiokafka consumers of a FastStream subscriber: one, or `max_workers` of them (a
    concurrent subscriber keeps them in `consumer_subgroup`); none before it started."""
    subgroup = getattr(subscriber, "consumer_subgroup", None)
    if subgroup:
        return list(subgroup)
    consumer = getattr(subscriber, "consumer", None)
    return [consumer] if consumer is not None else []


class DeadLetterMiddleware(BaseMiddleware):
    """Measures each message's handling and sends a message whose handling failed to
    `<topic>.dlq` instead of losing or looping on it."""

    service: str = "unknown"
    metrics: SubscriberMetrics | None = None

    @classmethod
    def for_service(
        cls, service: str, metrics: SubscriberMetrics | None
    ) -> type[DeadLetterMiddleware]:
        return type(
            f"DeadLetterMiddleware_{service}",
            (cls,),
            {"service": service, "metrics": metrics},
        )

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        record = msg.raw_message
        if isinstance(record, (list, tuple)):
            return await self._consume_batch(call_next, msg)
        started = time.perf_counter()
        try:
            result = await call_next(msg)
        except Exception as exc:
            if self.metrics is not None:
                self.metrics.observe(record, time.perf_counter() - started, exc)
            await self._dead_letter(record, exc)
            return None
        if self.metrics is not None:
            self.metrics.observe(record, time.perf_counter() - started, None)
        return result

    async def _consume_batch(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        """A `batch_subscriber`'s poll: the messages its decoder refused and those its handler
        failed (`BatchFailures`) go to dead letters, one by one; the others count as handled. A
        handler that raises fails every message it was given, as it would have failed each.

        The poll is then committed by its consumer's `_Pipeline`, in poll order. A handler that
        returns a task of its failures (it carries on with the poll in the background) is handed
        the next poll meanwhile."""
        started = time.perf_counter()
        pipeline = _Pipeline.of(getattr(msg, "consumer", None))
        generation = pipeline.generation if pipeline is not None else 0
        try:
            result = await call_next(msg)
        except Exception as raised:
            result = raised
        # Not decoded at all (the handler was not reached): every record is the handler's.
        batch: _DecodedBatch = getattr(msg, _DECODED, None) or _DecodedBatch(msg.raw_message)
        finishing = self._finish_batch(batch, result, started)
        if pipeline is None:  # an in-memory test broker: done before its publish returns
            await finishing
        else:
            await pipeline.add(finishing, msg.raw_message, generation)
        return None

    async def _finish_batch(self, batch: _DecodedBatch, result: Any, started: float) -> None:
        if isinstance(result, asyncio.Future):
            try:
                result = await result
            except Exception as raised:
                result = raised
        seconds = (time.perf_counter() - started) / max(len(batch.records) + len(batch.refused), 1)
        if isinstance(result, Exception):
            failures = BatchFailures(dict.fromkeys(range(len(batch.records)), result))
        else:
            failures = result if isinstance(result, BatchFailures) else BatchFailures()
        failed = [*batch.refused, *((batch.records[i], exc) for i, exc in failures.items())]
        for record, exc in failed:
            await self._dead_letter(record, exc)
        if self.metrics is not None:
            for record, exc in failed:
                self.metrics.observe(record, seconds, exc)
            for index, record in enumerate(batch.records):
                if index not in failures:
                    self.metrics.observe(record, seconds, None)

    async def _dead_letter(self, record: Any, exc: BaseException) -> None:
        letter = dead_letter_for(record, exc, consumer=self.service)
        broker = self.context.get("broker")
        await publish(broker, f"{record.topic}.dlq", letter)
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.service, record.topic).inc()
        log.error(
            "dead letter: %s[%s]@%s failed in %s: %s",
            record.topic,
            record.partition,
            record.offset,
            self.service,
            letter.error,
        )


def dead_letter_for(record: Any, exc: BaseException, *, consumer: str) -> DeadLetter:
    """The DeadLetter describing `record` (an aiokafka ConsumerRecord) and why it failed."""
    value: bytes = record.value or b""
    key: bytes | None = record.key
    return DeadLetter(
        occurred_at=utcnow(),
        producer=consumer,
        origin_topic=record.topic,
        origin_partition=record.partition,
        origin_offset=record.offset,
        origin_key=key.decode("utf-8", "replace")[:400] if key else None,
        consumer=consumer,
        error_type=type(exc).__name__,
        error=_describe(exc)[:4000],
        payload=value.decode("utf-8", "replace"),
    )


def _describe(exc: BaseException) -> str:
    # pydantic's ValidationError lists every field with the input value; keep field and reason
    # only, since the input may hold private data and the payload is kept separately anyway.
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(_field_error(e) for e in errors())
        except Exception:
            pass
    return str(exc) or type(exc).__name__


def _field_error(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


async def publish_to(publisher: Any, message: Envelope) -> None:
    """Publish through a declared publisher (so it appears in AsyncAPI), keyed by contract."""
    await publisher.publish(message, key=message.kafka_key().encode())


async def publish_all(messages: Iterable[tuple[Any, Envelope]]) -> None:
    """Publish each (declared publisher, message) in order, keyed by contract, without waiting
    for each acknowledgement; return once all are acknowledged (acks=all), or raise the first
    failure once all have been answered. Messages of one key keep their order in their partition.
    """
    pending: list[Any] = []
    for publisher, message in messages:
        sent = await publisher.publish(message, key=message.kafka_key().encode(), no_confirm=True)
        if inspect.isawaitable(sent):  # the delivery future (a test broker answers at once)
            pending.append(sent)
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def topic_publisher(broker: KafkaBroker, topic: Topic) -> Any:
    """Declare the publisher of `topic` (documented in AsyncAPI with its message schema)."""
    return broker.publisher(
        topic.name,
        title=f"{topic.name}:publish",
        description=topic.description,
        schema=topic.message,
    )


def topic_subscriber(
    broker: KafkaBroker,
    topic: Topic | str,
    *,
    group_id: str,
    action: str,
    description: str,
    **options: Any,
) -> Callable[[Handler], Handler]:
    """Declare a subscriber of `topic` in consumer group `<group_id>.<topic>`, reading from the
    start of the topic when the group is new (nothing published before a service's first start
    is lost); `action` names it in AsyncAPI (`<topic>:<action>`), with the `<topic>.dlq` its
    failures go to.

    One group per subscribed topic: FastStream gives each subscriber its own consumer, and
    consumers of different topics in one group rebalance each other on every start (measured:
    14 s before a tracker consumed its first message, with five subscribers in one group).

    `options` go to FastStream's subscriber as they are (e.g. `max_workers=6`: one consumer per
    partition, each committing its own offsets after its handler)."""
    name = topic if isinstance(topic, str) else topic.name
    dead_letter_publisher(broker, name)
    # Typed as keeping the handler (FastStream returns its subscriber object) so that handlers
    # stay typed for mypy.
    subscriber: Callable[[Handler], Handler] = broker.subscriber(
        name,
        group_id=f"{group_id}.{name}",
        auto_offset_reset="earliest",
        title=f"{name}:{action}",
        description=description,
        **options,
    )
    return subscriber


class BatchFailures(dict[int, Exception]):
    """What a `batch_subscriber`'s handler returns: the position (in the list it was given) of
    each message it could not handle, and why; those go to dead letters."""


_DECODED = "fengqiao_decoded_batch"  # the attribute of a batch's StreamMessage, see below


class _DecodedBatch:
    """The records of a batch whose messages were handed to the handler (in the same order),
    and those refused by the contract."""

    def __init__(self, records: Iterable[Any] = ()) -> None:
        self.records: list[Any] = list(records)
        self.refused: list[tuple[Any, Exception]] = []


def batch_subscriber(
    broker: KafkaBroker,
    topic: Topic,
    *,
    group_id: str,
    action: str,
    description: str,
    max_records: int = 500,
) -> Callable[[Handler], Handler]:
    """Like `topic_subscriber`, but the handler gets what one poll returned, up to `max_records`
    messages of the topic as a list (in partition order; one consumer for all partitions), and
    the poll is committed once the handler returns. Each message is checked against the topic's
    contract on its own: one that is off contract goes to dead letters and the others are
    handed over. The handler returns the `BatchFailures` of the messages it could not handle.

    For handlers that gain from seeing many messages at once (the tracker writes the changes of
    a case in one batch as one version, and applies different cases side by side).

    The handler may also return a task of its `BatchFailures`, once it has done what must come
    before the next poll's handling (the tracker: taken its place in the queue of each case).
    It is then handed the next poll while the task carries on: up to `BATCHES_IN_FLIGHT` polls
    at once, so one poll's writes overlap the next poll's computing. Polls are committed in
    order, each once it and all before it are finished (`_Pipeline`)."""
    model = topic.message

    async def decode(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        batch = _DecodedBatch()
        messages = []
        for record in msg.raw_message:
            try:
                messages.append(model.model_validate_json(record.value or b""))
            except ValueError as exc:  # pydantic's ValidationError is one
                batch.refused.append((record, exc))
            else:
                batch.records.append(record)
        setattr(msg, _DECODED, batch)
        return messages

    return topic_subscriber(
        broker,
        topic,
        group_id=group_id,
        action=action,
        description=description,
        batch=True,
        max_records=max_records,
        decoder=decode,
        # Committed by the poll's `_Pipeline` (explicit offsets, in poll order), not FastStream.
        ack_policy=AckPolicy.MANUAL,
    )


# Polls of one batch subscriber being finished at once (see below). The tracker's bench, A/B
# against committing each poll before taking the next: 1,452-1,674 → 1,722-1,909 events/s at 2,
# 1,442-1,674 → 1,884-1,994 at 3 (alternating runs); 6 was no faster than 3 (2,105-2,186
# against 2,148-2,568 at one moment), its three topics' 18 polls crowding the store.
BATCHES_IN_FLIGHT = 3


class _Pipeline:
    """The polls of one batch subscriber's consumer that are being finished (handled, their
    failures dead-lettered), oldest first, and their commits.

    A poll's offsets (of each partition, the one after its last record) are committed once it
    and every poll before it are finished: a crash re-delivers whatever was not finished, as
    FastStream's commit after each handler did. A poll that could not be finished (its dead
    letters could not be written, or it was cancelled) is not committed, and neither is any
    poll taken after it: every partition is sought back to its first message not finished, and
    they come again (the tracker's changes are idempotent: a case keeps the ids of the messages
    it applied). A commit that fails (a rebalance moved the partition away, Kafka is gone a
    moment) is logged: the next poll's commit covers it, or the partition's new owner handles
    the messages again.
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.finishing: deque[asyncio.Task[None]] = deque()
        # Raised when the consumer is sought back: the polls taken before are not committed.
        self.generation = 0
        # Each partition's first message not finished (in poll order): where a failure rewinds.
        # After a rebalance took a partition away and gave it back it may lie further back: the
        # messages between come again, which is safe, only slower.
        self.unfinished: dict[TopicPartition, int] = {}

    @classmethod
    def of(cls, consumer: Any) -> _Pipeline | None:
        """The pipeline of a real consumer (None for an in-memory test broker's)."""
        if not isinstance(consumer, AIOKafkaConsumer):
            return None
        pipeline = _PIPELINES.get(consumer)
        if pipeline is None:
            pipeline = _PIPELINES[consumer] = cls(consumer)
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
            else:
                self.generation += 1
                self._rewind(failure)
        if isinstance(failure, asyncio.CancelledError):
            raise failure

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
        log.error(
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


_PIPELINES: weakref.WeakKeyDictionary[AIOKafkaConsumer, _Pipeline] = weakref.WeakKeyDictionary()


def _describe_offsets(offsets: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in offsets.items())


async def drain(broker: KafkaBroker, timeout: float = 30.0) -> None:
    """Before `broker.stop()`: stop taking polls for the batch subscribers and wait (up to
    `timeout` seconds) until the polls they are finishing are committed; what is not finished
    by then comes again after the restart."""
    pipelines = []
    for consumer in (c for s in broker.subscribers for c in subscriber_consumers(s)):
        pipeline = _PIPELINES.get(consumer)
        if pipeline is not None:
            consumer.pause(*consumer.assignment())
            pipelines.append(pipeline)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.drain() for p in pipelines)), timeout)
    except TimeoutError:
        left = sum(len(p.finishing) for p in pipelines)
        log.warning(
            "stopping with %d polls not finished after %.0f s: they come again", left, timeout
        )


_DLQ_PUBLISHERS: weakref.WeakKeyDictionary[KafkaBroker, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def dead_letter_publisher(broker: KafkaBroker, topic: str) -> Any:
    """The publisher of `<topic>.dlq` on this broker, declared once (for AsyncAPI): the
    middleware publishes dead letters itself; a service that writes its own (the notifier, after
    its last retry) publishes through this one."""
    publishers = _DLQ_PUBLISHERS.setdefault(broker, {})
    if topic not in publishers:
        publishers[topic] = broker.publisher(
            f"{topic}.dlq",
            title=f"{topic}.dlq:publish",
            description=f"Messages of {topic} this service failed to handle, with the error "
            "and their origin (`fengqiao ops dlq`).",
            schema=DeadLetter,
        )
    return publishers[topic]


class Outbox(Protocol):
    """Where a service hands several messages at once (e.g. what one change of a case asks to
    publish)."""

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        """Publish each message on its topic, in order, keyed by contract; return once all are
        acknowledged, or raise the first failure once all have been answered."""


class DeclaredPublishers:
    """An `Outbox` through FastStream publishers by topic: those `declare` declares on a broker
    (what AsyncAPI documents and what an in-memory test broker delivers)."""

    def __init__(self, publishers: dict[str, Any]) -> None:
        self.publishers = publishers

    @classmethod
    def declare(cls, broker: KafkaBroker, topics: Iterable[Topic]) -> DeclaredPublishers:
        return cls({topic.name: topic_publisher(broker, topic) for topic in topics})

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        await publish_all((self.publishers[o.topic], o.message) for o in messages)


class DirectProducer:
    """Publishes the messages of some topics through a plain aiokafka producer of its own.

    The guarantees are the broker's (acks=all, idempotent, keyed by the contract's key) and so
    is the wire format (the message as JSON with a `content-type: application/json` header, as
    FastStream writes it, so FastStream subscribers read it unchanged). What it leaves out is
    FastStream's per-message publish machinery (command objects, middleware chain, its
    Prometheus middleware), which cost more than a third of each publish on a path that
    publishes once per HTTP request (intake's webhooks) and about 60 % of the tracker's
    publishing; it keeps two cheap metrics of its own.

    Declare the topics' publishers on the broker as well (`topic_publisher`, or
    `DeclaredPublishers` as the path for in-memory test brokers), so AsyncAPI documents them.
    `start()`/`stop()` belong in the service's lifespan (`Runtime.on_start`/`on_stop`).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Iterable[Topic],
        *,
        service: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        names = [topic.name for topic in topics]
        self._producer: AIOKafkaProducer | None = None
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": f"fengqiao-{service}-{'+'.join(names)}",
            "acks": "all",
            "enable_idempotence": True,
            # linger_ms stays 0: requests arriving while one is in flight are batched anyway,
            # and waiting longer only delayed each answer (measured: linger 2 ms, 8 connections:
            # 1,265-1,615 req/s against 2,150-2,173 without).
            # What one partition buffers while its batch is in flight. At aiokafka's 16 KB, a
            # burst (the tracker publishes the outboxes of up to a poll's 500 cases at once)
            # fills it with about fifteen messages and every further send waits for the batch
            # to drain: 1 KB messages from 500 senders cost 120 µs of CPU each, 25 µs at 256 KB
            # (measured on this project's Kafka).
            "max_batch_size": 256 * 1024,
            "partitioner": RememberedPartitioner(),
        }
        registry = registry or CollectorRegistry()
        published = Counter(
            "fengqiao_direct_published_total",
            "Messages published by a direct publisher, by topic and result (ok or error)",
            ["topic", "result"],
            registry=registry,
        )
        ack_seconds = Histogram(
            "fengqiao_direct_publish_seconds",
            "Time from a direct publish to Kafka's acknowledgement (acks=all)",
            ["topic"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        # topic → (ok counter, error counter, acknowledgement histogram)
        self._metrics = {
            name: (
                published.labels(name, "ok"),
                published.labels(name, "error"),
                ack_seconds.labels(name),
            )
            for name in names
        }

    async def start(self) -> None:
        # Built here, not in __init__: aiokafka binds the running event loop.
        producer = AIOKafkaProducer(**self._options)
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def send(self, topic: str, message: Envelope) -> None:
        """Publish `message` on `topic`, keyed by its contract's key; return once Kafka
        acknowledged it."""
        await self.send_all([Outgoing(topic, message)])

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        """Publish each message on its topic, in order, without waiting for each acknowledgement;
        return once all are acknowledged, or raise the first failure once all have been
        answered. Messages of one key keep their order in their partition."""
        producer = self._producer
        started = time.perf_counter()
        sent: list[tuple[str, Any]] = []
        failure: BaseException | None = None
        for outgoing in messages:
            topic = outgoing.topic
            if topic not in self._metrics:
                raise ValueError(f"{topic!r} is not one of this producer's topics")
            if producer is None:
                raise RuntimeError(f"the {topic} publisher is not started")
            try:
                delivery = await producer.send(
                    topic,
                    outgoing.body,
                    key=outgoing.message.kafka_key().encode(),
                    headers=_JSON,
                )
            except Exception as exc:  # not even queued: what was sent before is still awaited
                self._metrics[topic][1].inc()
                failure = exc
                break
            sent.append((topic, delivery))
        try:
            results = await asyncio.gather(*(d for _, d in sent), return_exceptions=True)
        except BaseException:  # cancelled before every answer came (a caller's timeout)
            for topic, _ in sent:
                self._metrics[topic][1].inc()
            raise
        acknowledged = time.perf_counter() - started
        for (topic, _), result in zip(sent, results, strict=True):
            ok, error, ack_seconds = self._metrics[topic]
            if isinstance(result, BaseException):
                error.inc()
                failure = failure or result
            else:
                ok.inc()
                ack_seconds.observe(acknowledged)
        if failure is not None:
            raise failure


_JSON = [("content-type", b"application/json")]


class RememberedPartitioner:
    """aiokafka's default partitioner (murmur2 of the key, as Java clients and Kafka Streams
    place keys), remembering the partition of recent keys: a case's key comes back with each of
    its messages, and aiokafka's murmur2 is pure Python."""

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._known: dict[tuple[bytes, int], int] = {}
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:  # spread at random, as aiokafka does
            return int(self._default(key, all_partitions, available))
        known = (key, len(all_partitions))
        partition = self._known.get(known)
        if partition is None:
            if len(self._known) >= self._size:
                self._known.clear()  # forget them all: the next ones are hashed again
            partition = int(self._default(key, all_partitions, available))
            self._known[known] = partition
        return partition


class DirectPublisher(DirectProducer):
    """A `DirectProducer` of one topic, for request paths that publish one message at a time."""

    def __init__(
        self,
        bootstrap: str,
        topic: Topic,
        *,
        service: str,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(bootstrap, [topic], service=service, registry=registry)
        self.topic = topic.name

    async def publish(self, message: Envelope) -> None:
        """Publish `message` keyed by its contract's key; return once Kafka acknowledged it."""
        await self.send(self.topic, message)
