"""What the operator commands read from Kafka: topics, consumer groups and their lag, and the
records of a time range. Every read is bounded (it stops at the end offsets it found)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import GroupLoadInProgressError, KafkaConnectionError, KafkaError
from faststream.security import BaseSecurity

from fengqiao.contracts import TOPICS, all_topic_names
from fengqiao.ops import Unreachable
from fengqiao.runtime.compat import watch_topics
from fengqiao.runtime.kafka_security import KafkaAccessRefused, check_access, kafka_options

T = TypeVar("T")


@dataclass(frozen=True)
class TopicStats:
    name: str
    partitions: int
    end_offsets: dict[int, int]
    messages: int  # end minus beginning: what retention still holds
    rate: float | None  # messages per second over the sampling interval
    retention_ms: int | None

    @property
    def end(self) -> int:
        return sum(self.end_offsets.values())


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None  # None: the group has committed nothing there yet
    end: int
    lag: int


@dataclass(frozen=True)
class GroupLag:
    """A service's consumer group of one topic (`<group>.<topic>`)."""

    group: str
    service: str
    topic: str
    state: str
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


def fengqiao_topics(with_dlq: bool = True) -> list[str]:
    return all_topic_names() if with_dlq else [t.name for t in TOPICS]


async def while_loading(ask: Callable[[], Awaitable[T]], limit: float = 30.0) -> T:
    """`ask()`, asked again while a broker just started still loads its groups (Kafka answers
    GROUP_LOAD_IN_PROGRESS, or COORDINATOR_LOAD_IN_PROGRESS, for a few seconds)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return await ask()
        except GroupLoadInProgressError:  # also COORDINATOR_LOAD_IN_PROGRESS (one class)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


class Cluster:
    """An admin client and an unsubscribed consumer on one cluster, for reading only."""

    def __init__(
        self, bootstrap: str, *, timeout: float = 10.0, security: BaseSecurity | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self._timeout_ms = int(timeout * 1000)
        self._security = security
        self.admin = AIOKafkaAdminClient(
            **kafka_options(bootstrap, security),
            client_id="fengqiao-ops",
            request_timeout_ms=self._timeout_ms,
        )
        self.consumer = AIOKafkaConsumer(
            **kafka_options(bootstrap, security),
            client_id="fengqiao-ops",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=self._timeout_ms,
        )

    async def start(self) -> None:
        try:
            await check_access(self.bootstrap, self._security, timeout=self._timeout_ms / 1000)
        except KafkaAccessRefused as exc:
            await self.close()
            raise Unreachable(str(exc)) from None
        try:
            await asyncio.wait_for(self.admin.start(), self._timeout_ms / 1000)
            await asyncio.wait_for(self.consumer.start(), self._timeout_ms / 1000)
        except (KafkaConnectionError, TimeoutError, OSError) as exc:
            await self.close()
            reason = str(exc) or type(exc).__name__
            raise Unreachable(f"Kafka at {self.bootstrap} does not answer ({reason})") from exc

    async def close(self) -> None:
        for client in (self.consumer.stop, self.admin.close):
            with contextlib.suppress(Exception):  # closing what never started
                await client()

    async def existing(self, names: Iterable[str]) -> list[str]:
        present = set(await self.admin.list_topics())
        return [n for n in names if n in present]

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        names = list(topics)
        described = await self.admin.describe_topics(names)
        await watch_topics(self.consumer, names)  # else its offsets come seconds later
        return sorted(
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if not t["error_code"]
            for p in t["partitions"]
        )

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(await self.consumer.end_offsets(tps)) if tps else {}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(await self.consumer.beginning_offsets(tps)) if tps else {}

    async def retention(self, topics: list[str]) -> dict[str, int | None]:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, t, {"retention.ms": None}) for t in topics
        ]
        found: dict[str, int | None] = dict.fromkeys(topics)
        if not resources:
            return found
        for response in await self.admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    if entry["config_names"] == "retention.ms":
                        found[resource["resource_name"]] = int(entry["config_value"])
        return found

    async def topic_stats(self, topics: list[str], *, interval: float) -> list[TopicStats]:
        """Partitions, end offsets, retention, and messages/s over `interval` seconds."""
        names = await self.existing(topics)
        tps = await self.partitions(names)
        first = await self.end_offsets(tps)
        started = time.monotonic()
        if interval > 0:
            await asyncio.sleep(interval)
        ends = await self.end_offsets(tps) if interval > 0 else first
        elapsed = time.monotonic() - started
        begins = await self.beginning_offsets(tps)
        retention = await self.retention(names)
        stats = []
        for name in names:
            mine = [tp for tp in tps if tp.topic == name]
            added = sum(ends[tp] - first[tp] for tp in mine)
            stats.append(
                TopicStats(
                    name=name,
                    partitions=len(mine),
                    end_offsets={tp.partition: ends[tp] for tp in mine},
                    messages=sum(ends[tp] - begins[tp] for tp in mine),
                    rate=added / elapsed if interval > 0 else None,
                    retention_ms=retention.get(name),
                )
            )
        return stats

    async def group_lags(self, topics: list[str] | None = None) -> list[GroupLag]:
        """Lag of every consumer group named `<group>.<topic>` for a fengqiao topic."""
        wanted = sorted(set(topics or fengqiao_topics()), key=len, reverse=True)  # longest
        groups = []
        for entry in await while_loading(self.admin.list_consumer_groups):
            name = entry[0]
            topic = next((t for t in wanted if name.endswith("." + t)), None)
            if topic is not None:
                groups.append((name, name[: -len(topic) - 1], topic))
        tps = await self.partitions(sorted({t for _, _, t in groups}))
        ends = await self.end_offsets(tps)
        begins = await self.beginning_offsets(tps)
        lags = []
        for group, service, topic in sorted(groups, key=lambda g: (g[1], g[2])):
            committed = await self.committed(group)
            parts = []
            for tp in (tp for tp in tps if tp.topic == topic):
                offset = committed.get(tp)
                # Nothing committed: a new group reads from the beginning (auto_offset_reset).
                start = offset if offset is not None else begins[tp]
                parts.append(PartitionLag(tp.partition, offset, ends[tp], max(ends[tp] - start, 0)))
            lags.append(GroupLag(group, service, topic, await self._state(group), parts))
        return lags

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """The offsets `group` has committed, by partition (none where it committed nothing)."""
        found = await while_loading(lambda: self.admin.list_consumer_group_offsets(group))
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def _state(self, group: str) -> str:
        try:
            [response] = await self.admin.describe_consumer_groups([group])
            described = response.to_object()["groups"][0]
        except (KafkaError, IndexError, KeyError, ValueError):
            return "unknown"
        members = len(described.get("members") or ())
        return f"{described.get('state', '?')} ({members} member{'s' if members != 1 else ''})"

    async def read(
        self, topics: list[str], *, since_ms: int | None = None
    ) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
        """Every record of `topics` from `since_ms` (or the beginning) to the current end."""
        tps = await self.partitions(await self.existing(topics))
        if not tps:
            return
        self.consumer.assign(tps)
        ends = await self.end_offsets(tps)
        if since_ms is None:
            starts = await self.beginning_offsets(tps)
        else:
            found = await self.consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
            starts = {tp: (f.offset if f is not None else ends[tp]) for tp, f in found.items()}
        pending = {tp for tp in tps if starts[tp] < ends[tp]}
        for tp in tps:
            self.consumer.seek(tp, starts[tp])
        idle = 0
        while pending and idle < 10:  # ten empty fetches in a row: nothing more will come
            batch = await self.consumer.getmany(*pending, timeout_ms=1000, max_records=2000)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
                if await self.consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if not batch:  # compacted or deleted offsets: trust the position
                for tp in list(pending):
                    if await self.consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)


@asynccontextmanager
async def connect(
    bootstrap: str, *, timeout: float = 10.0, security: BaseSecurity | None = None
) -> AsyncIterator[Cluster]:
    cluster = Cluster(bootstrap, timeout=timeout, security=security)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.close()


def decode(record: ConsumerRecord[bytes, bytes]) -> Any:
    """The record's contract message, or None when it does not parse."""
    from fengqiao.contracts import read

    try:
        return read(record.topic, record.value or b"")
    except Exception:
        return None
