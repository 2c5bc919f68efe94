"""bench/tracker.py --mode service: the whole tracker app with its Kafka consumers."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from machine import CpuMeter, store_name
from pymongo import AsyncMongoClient
from tracker_lives import (
    EVENTS_PER_CASE,
    TOPIC_OF,
    bench_lives,
    create_collections,
    wrong_cases,
)

from fengqiao.contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    CaseMessage,
    Outgoing,
    Topic,
)
from fengqiao.ops.kafka import Cluster, connect
from fengqiao.runtime.compat import registered_collector
from fengqiao.runtime.messaging import DirectProducer, ensure_topics
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import serving


async def start_groups_at_end(bootstrap: str, group_id: str, topics: Sequence[Topic]) -> None:
    """Commit the end of each topic for the tracker's consumer groups, so that the app reads
    only what is published from now on (not what earlier runs left on the topics)."""
    for topic in topics:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=f"{group_id}.{topic.name}",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
        finally:
            await consumer.stop()


PRELOADED = [APPEALS, DISPATCH_ORDERS, REPLIES_SENT]  # the topics of the first four messages


async def uncommitted(cluster: Cluster, group_id: str, ends: dict[TopicPartition, int]) -> int:
    """The messages before `ends` that the tracker's groups (`<group_id>.<topic>`) have not
    committed yet."""
    behind = 0
    for topic in sorted({tp.topic for tp in ends}):
        committed = await cluster.committed(f"{group_id}.{topic}")
        behind += sum(
            max(end - committed.get(tp, 0), 0) for tp, end in ends.items() if tp.topic == topic
        )
    return behind


def counted(registry: Any, name: str) -> float:
    """The sum of a counter's samples (over its labels). Only that counter is collected (found
    by its name in the registry): collecting the whole registry every 50 ms took 2-3 % of the
    CPU of the tracker it measures."""
    collector = registered_collector(registry, f"{name}_total") or registry
    total = 0.0
    for metric in collector.collect():
        if metric.name == name:
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


Sent = tuple[str, CaseMessage]  # topic, message
INPUTS = [APPEALS, DISPATCH_ORDERS, REPLIES_SENT, UNIT_ACTIONS]  # the topics of TOPIC_OF


async def send_messages(bootstrap: str, messages: Sequence[Sent]) -> None:
    """Publish `messages` in order as the services do (`DirectProducer`) and wait for all
    acknowledgements."""
    producer = DirectProducer(bootstrap, INPUTS, service="bench-producer")
    await producer.start()
    try:
        await producer.send_all(Outgoing(topic, message) for topic, message in messages)
    finally:
        await producer.stop()


class ChildPublisher:
    """Publishes messages from a process of its own once told to `go` (spawned at once, so its
    start-up is over before the measured time)."""

    def __init__(self, bootstrap: str, messages: Sequence[Sent]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._go = context.Event(), context.Event()
        self._process = context.Process(
            target=_publish_when_told, args=(bootstrap, list(messages), self._ready, self._go)
        )
        self._process.start()

    def ready(self) -> None:
        if not self._ready.wait(60):
            raise TimeoutError("the publishing process did not start in 60 s")

    def go(self) -> None:
        self._go.set()

    def join(self) -> None:
        self._process.join(60)
        if self._process.exitcode != 0:
            raise RuntimeError(f"the publishing process ended with {self._process.exitcode}")


def _publish_when_told(bootstrap: str, messages: list[Sent], ready: Any, go: Any) -> None:
    async def run() -> None:
        ready.set()
        await asyncio.to_thread(go.wait)
        await send_messages(bootstrap, messages)

    asyncio.run(run())


async def prepare(settings: StackSettings, run: str) -> tuple[TrackerSettings, Any, Any]:
    """The tracker app of this run (its own database and consumer groups), its tables made and
    its groups at the end of every topic."""
    from fengqiao.services.tracker.app import build

    tracker_settings = TrackerSettings(
        stack=settings, database=f"bench_tracker_svc_{run}", group_id=f"bench-tracker-{run}"
    )
    runtime, app = build(tracker_settings)
    await ensure_topics(settings.kafka_bootstrap)
    creating: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri)
    try:
        await create_collections(creating[tracker_settings.database])
    finally:
        await creating.close()
    consumed = [APPEALS, DISPATCH_ORDERS, REPLIES_SENT, UNIT_ACTIONS]
    consumed += [SUPERVISION_ORDERS, COORDINATION_REQUESTS]
    await start_groups_at_end(settings.kafka_bootstrap, tracker_settings.group_id, consumed)
    return tracker_settings, runtime, app


async def first_applied(runtime: Any, cpu: CpuMeter) -> float:
    """The instant the first message is applied (the CPU is measured from then on): watched
    from before the app starts, as its consumers may begin while it is still starting."""
    while True:  # polled: the counter has no event to wait on
        if counted(runtime.registry, "fengqiao_tracker_messages") > 0:
            break
        await asyncio.sleep(0.002)
    cpu.start()
    return time.perf_counter()


async def handled(bootstrap: str, group_id: str, runtime: Any, topics: Sequence[Topic]) -> None:
    """Wait until the tracker's groups have committed everything on `topics`: each poll is
    committed once it was applied. (Not the count of messages applied: a poll handed over
    again after its partition moved to another consumer is applied again, as a no-op.)"""
    async with connect(bootstrap) as cluster:
        ends = await cluster.end_offsets(await cluster.partitions(t.name for t in topics))
        progress, last = None, time.perf_counter()
        while behind := await uncommitted(cluster, group_id, ends):
            if behind != progress:
                progress, last = behind, time.perf_counter()
            elif time.perf_counter() - last > 60:
                dead = counted(runtime.registry, "fengqiao_dead_letters")
                raise TimeoutError(
                    f"{behind} messages not handled, {dead:.0f} dead letters, "
                    "and no progress for 60 s"
                )
            await asyncio.sleep(0.05)


async def measure(
    settings: StackSettings,
    group_id: str,
    runtime: Any,
    app: Any,
    lives: list[list[CaseMessage]],
    cpu: CpuMeter,
) -> dict[str, float]:
    """Run the app through the cases' lives; the times of the phases and the CPU they took."""

    def messages(steps: range) -> list[Sent]:
        """Those steps of every case, in order within a case."""
        return [(TOPIC_OF[type(life[step])], life[step]) for step in steps for life in lives]

    # The appeal, its dispatch and its acknowledgment travel on three topics and may be applied
    # in any order; the units act once the case reached them (as the unit API refuses actions
    # on cases a unit cannot see yet).
    loading = time.perf_counter()
    await send_messages(settings.kafka_bootstrap, messages(range(4)))
    loaded = time.perf_counter() - loading
    # The units' actions come from another process, as they would (the unit API, a replica):
    # publishing them here would take this process's CPU from the tracker it measures.
    acting_process = ChildPublisher(settings.kafka_bootstrap, messages(range(4, EVENTS_PER_CASE)))
    started = time.perf_counter()
    watching = asyncio.create_task(first_applied(runtime, cpu))
    try:
        async with serving(app):
            up = time.perf_counter() - started
            first = await watching
            await handled(settings.kafka_bootstrap, group_id, runtime, PRELOADED)
            first_phase, first_cpu = time.perf_counter() - first, cpu.seconds()
            await asyncio.to_thread(acting_process.ready)
            acting = time.perf_counter()
            acting_process.go()
            await asyncio.to_thread(acting_process.join)  # all published (in a fraction)
            await handled(settings.kafka_bootstrap, group_id, runtime, [UNIT_ACTIONS])
            second_phase, finished = time.perf_counter() - acting, time.perf_counter()
            cpu.stop()
            second_cpu = cpu.used[cpu.this] - first_cpu
    finally:
        watching.cancel()
    return {
        "loaded": loaded,
        "up": up,
        "first_phase": first_phase,
        "second_phase": second_phase,
        "in_all": finished - started,
        "first_cpu": first_cpu,
        "second_cpu": second_cpu,
    }


async def run_service(settings: StackSettings, cases: int, cpu: CpuMeter) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    tracker_settings, runtime, app = await prepare(settings, run)
    lives = bench_lives(run, cases, datetime.now(UTC))
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    try:
        t = await measure(settings, tracker_settings.group_id, runtime, app, lives, cpu)
        dead = counted(runtime.registry, "fengqiao_dead_letters")
        events = cases * EVENTS_PER_CASE
        wrong = await wrong_cases(MongoCaseRepository(client, tracker_settings.database), lives)
        stored = await stored_documents(client[tracker_settings.database])
        seconds = t["first_phase"] + t["second_phase"]
        return {
            "mode": "service",
            "events": events,
            "seconds": seconds,
            "rate": events / seconds,
            "published": None,
            "wrong_cases": wrong + int(dead),
            "detail": (
                f"{cases} cases; appeals, dispatches and acknowledgments pre-loaded "
                f"({t['loaded']:.1f} s) and applied in {t['first_phase']:.1f} s from the first, "
                f"then the units' actions published and applied in {t['second_phase']:.1f} s; "
                f"app up in {t['up']:.1f} s, {t['in_all']:.1f} s in all; {dead:.0f} dead "
                f"letters; {cpu.per_event(events)} (tracker: "
                f"{t['first_cpu'] / (cases * 4) * 1e6:,.0f} µs while applying the pre-loaded, "
                f"{t['second_cpu'] / (cases * 3) * 1e6:,.0f} µs the actions); stored per event: "
                + ", ".join(f"{name} {count / events:.2f}" for name, count in stored.items())
            ),
            "store": await store_name(client[tracker_settings.database]),
        }
    finally:
        await client.drop_database(tracker_settings.database)
        await client.close()


async def stored_documents(db: Any) -> dict[str, int]:
    """The documents in the tracker's database, by collection (shards and buckets together)."""
    counts: dict[str, int] = {}
    for name in sorted(await db.list_collection_names()):
        kind = re.sub(r"_[0-9a-f]+$", "", name)
        counts[kind] = counts.get(kind, 0) + await db[name].count_documents({})
    return counts
