"""Publishing through a plain aiokafka producer, for hot paths (see `DirectProducer`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from faststream.security import BaseSecurity
from prometheus_client import CollectorRegistry, Counter, Histogram

from fengqiao.contracts import LANES, Envelope, Outgoing, Topic, lane_for
from fengqiao.runtime import tracing
from fengqiao.runtime.kafka_security import kafka_options


class DirectProducer:
    """Publishes the messages of some topics through a plain aiokafka producer of its own.

    The guarantees are the broker's (acks=all, idempotent, keyed by the contract's key) and so
    is the wire format (the message as JSON with a `content-type: application/json` header, as
    FastStream writes it, so FastStream subscribers read it unchanged). What it leaves out is
    FastStream's per-message publish machinery (command objects, middleware chain, its
    Prometheus middleware), a large share of each publish on the hot paths (intake's webhooks,
    the tracker's outboxes; docs/performance.md); it keeps two cheap metrics of its own. With
    tracing on (`fengqiao.runtime.tracing`), each message gets a `<topic> publish` span of the
    current one and carries its W3C `traceparent`, so the trace goes on in its consumer.

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
        security: BaseSecurity | None = None,
    ) -> None:
        topics = list(topics)
        # With their urgent lanes (`LANES`): a message goes where `lane_for` puts it.
        names = [t.name for t in topics] + [LANES[t.name].name for t in topics if t.name in LANES]
        self._producer: AIOKafkaProducer | None = None
        self._options: dict[str, Any] = {
            **kafka_options(bootstrap, security),
            "client_id": f"fengqiao-{service}-{'+'.join(t.name for t in topics)}",
            "acks": "all",
            "enable_idempotence": True,
            # linger_ms stays 0: requests arriving while one is in flight are batched anyway,
            # and waiting longer only delays each answer.
            # What one partition buffers while its batch is in flight: at aiokafka's 16 KB a
            # burst (a poll's outboxes) fills it and every further send waits for it to drain.
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
            topic = lane_for(outgoing.topic, outgoing.message)
            if topic not in self._metrics:
                raise ValueError(f"{topic!r} is not one of this producer's topics")
            if producer is None:
                raise RuntimeError(f"the {topic} publisher is not started")
            try:
                with tracing.within(outgoing.message), tracing.publishing(topic):
                    delivery = await producer.send(
                        topic,
                        outgoing.body,
                        key=outgoing.message.kafka_key().encode(),
                        headers=tracing.headers(_JSON),
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
        security: BaseSecurity | None = None,
    ) -> None:
        super().__init__(bootstrap, [topic], service=service, registry=registry, security=security)
        self.topic = topic.name

    async def publish(self, message: Envelope) -> None:
        """Publish `message` keyed by its contract's key; return once Kafka acknowledged it."""
        await self.send(self.topic, message)
