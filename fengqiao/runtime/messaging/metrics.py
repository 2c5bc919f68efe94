"""How every subscriber of every service is measured, here and not per service."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fengqiao.runtime.compat import consumer_group, subscriber_consumers


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
            group = consumer_group(consumer) or ""
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
