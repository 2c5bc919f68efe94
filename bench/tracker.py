"""Case events per second in one tracker process (target: >= 2,000 against the local store).

    .venv/bin/python bench/tracker.py [--cases 400] [--concurrency 64] [--mode both|all|...]

A case event is one message applied to a case: the domain change, the new version written to the
store (compare-and-set by unique insert), the outbox published to Kafka (acks=all) and the
effects carried out (durable timers scheduled or cancelled, unit index entries); the outbox is
recorded as done as the service does it (`settle_seconds` after a burst; the last ones inside the
measured time). Every case lives through seven of them, the common path of an appeal:

    appeal (opens the case, asks for the acknowledgment, starts its clock)
    dispatch hop 1 (xj → 652700) and the final hop 2 (652700 → 652701, announced publicly)
    the acknowledgment sent (stops its clock)
    签收 (accept), progress with a note (told to the citizen), 办结 (resolve, callback clock)

Two ways to measure, both against the real FerretDB and Kafka of the local stack:

- `store`: `CaseStore.apply` with the real repositories (MongoCaseRepository, MongoTimers,
  MongoIndexes) and the app's Kafka producer (`DirectProducer`); `--concurrency` cases in
  flight at once, each case's messages one after the other (as the partitions of a Kafka topic
  would hand them over).
- `service`: the whole tracker app (`fengqiao.services.tracker.app.build`) in this process with
  its Kafka consumers (one per topic): the appeals, dispatch orders and acknowledgments of all
  cases are put on their topics first, then the app starts and the time runs from the first message
  applied until the tracker's consumer groups have committed all of them (a poll is committed
  once it is applied); then the units' actions are published (by a process of their own, as the
  unit API or another replica would) and the time runs until they are committed too. (The first
  three kinds may be applied in any order, as they travel on different topics; a unit acts on a
  case that reached it.) The figure is all messages over the two times.

Prints one summary line per mode (`RESULT ...`) with the machine and its load average; the
service mode adds the CPU time per event of this process (also per phase) and of the stack's
servers, and the documents stored per event by collection.

Run it on a stack of its own (`FENGQIAO_KAFKA_BOOTSTRAP`, `FENGQIAO_MONGO_URI`), not beside a demo:
its databases are dropped at the end, but its messages stay on the topics (case events and reply
requests of made-up cases; in the service mode appeals, orders and actions too), where services
and tests using the default consumer groups of that stack would read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing
import re
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from machine import CpuMeter, machine, store_name
from pymongo import AsyncMongoClient

from fengqiao import stack
from fengqiao.contracts import (
    APPEALS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    Author,
    CaseMessage,
    DispatchOrdered,
    Outgoing,
    ReplyPurpose,
    ReplySent,
    ReplyTarget,
    Topic,
    UnitActed,
    UnitActionKind,
)
from fengqiao.ops.kafka import Cluster, connect
from fengqiao.runtime.messaging import DirectProducer, ensure_topics
from fengqiao.runtime.service import GC_THRESHOLDS
from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.store import ShardedCollection
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository, MongoCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes, MongoIndexes
from fengqiao.services.tracker.adapters.timers import VERSIONS, InMemoryTimers, MongoTimers
from fengqiao.services.tracker.handlers import PUBLISHES, CaseStore, Change
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message, dispatch_message, final_hop_message

EVENTS_PER_CASE = 7
TOPIC_OF = {
    AppealNormalized: APPEALS.name,
    DispatchOrdered: DISPATCH_ORDERS.name,
    ReplySent: REPLIES_SENT.name,
    UnitActed: UNIT_ACTIONS.name,
}


def case_messages(case_id: str, i: int, at: datetime) -> list[CaseMessage]:
    """The seven messages of one case's common path, in the order they happen."""
    lead = "652701"

    def action(kind: UnitActionKind, **fields: Any) -> UnitActed:
        return UnitActed(
            occurred_at=at,
            producer="tracker-api",
            case_id=case_id,
            unit_id=lead,
            action=kind,
            **fields,
        )

    return [
        appeal_message(
            event_id=f"{case_id}-appeal",
            case_id=case_id,
            occurred_at=at,
            posted_at=at,
            post_event_id=f"{case_id}-post",
            author=Author(id=f"u{i}"),
            reply_to=ReplyTarget(
                platform="weibo", account="@新疆检察", user_id=f"u{i}", post_id=f"p{i}"
            ),
        ),
        dispatch_message(case_id=case_id, occurred_at=at, hop=1),
        final_hop_message(
            case_id=case_id, occurred_at=at, to_unit=lead, to_handle="@博乐市人民检察院"
        ),
        ReplySent(
            occurred_at=at,
            producer="notifier",
            case_id=case_id,
            request_event_id=f"{case_id}-ack",
            idempotency_key=f"{case_id}:acknowledgment:0",
            purpose=ReplyPurpose.ACKNOWLEDGMENT,
            status="sent",
            platform_message_id=f"m{i}",
        ),
        action(UnitActionKind.ACCEPT),
        action(UnitActionKind.PROGRESS, note="已联系用人单位，正在核实"),
        action(UnitActionKind.RESOLVE, outcome="已追回拖欠工资", amount_recovered=12000.0),
    ]


def spread(start: datetime, i: int) -> datetime:
    """The instant of the i-th case: 10 ms after the one before, as a burst of appeals arrives.
    Cases do not share instants (a cache keyed on one would flatter the figure), and their
    clocks' wake times fall into the few hourly buckets a burst uses; all after `start`, so no
    clock runs out while the bench runs. (Spread over a week instead, 2,000 cases made the store
    create a bucket table per hour during the run, a cost a running tracker pays once an hour.)"""
    return start + timedelta(milliseconds=10 * i)


def bench_lives(run: str, cases: int, start: datetime) -> list[list[CaseMessage]]:
    """The messages of `cases` cases of this run, each case at its own instant."""
    return [case_messages(f"bench-{run}-{i:06d}", i, spread(start, i)) for i in range(cases)]


def change_for(message: CaseMessage, rules: domain.Rules) -> Change:
    """What the tracker's subscriber of the message's topic applies to the case."""
    if isinstance(message, AppealNormalized):
        return lambda c: domain.open_case(c, message, rules=rules)
    if isinstance(message, DispatchOrdered):
        return lambda c: domain.record_dispatch(c, message, rules=rules)
    if isinstance(message, ReplySent):
        return lambda c: domain.record_reply(c, message, rules=rules)
    if isinstance(message, UnitActed):
        return lambda c: domain.act(c, message, rules=rules)
    raise TypeError(f"no tracker change for {type(message).__name__}")


class CountingOutbox:
    """The tracker's outbox (a `DirectProducer` of its topics, as the app has), counted."""

    def __init__(self, producer: DirectProducer) -> None:
        self.producer, self.count = producer, 0

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        messages = list(messages)
        await self.producer.send_all(messages)
        self.count += len(messages)


async def wrong_cases(repo: Any, lives: Sequence[Sequence[CaseMessage]]) -> int:
    """Cases not as their messages leave them: every change stored, every outbox and effect done."""
    wrong = 0
    for messages in lives:
        case = await repo.get(messages[0].case_id)
        wrong += (
            case is None
            or case.state is not domain.S.RESOLVED
            or bool(case.outbox or case.effects)
            or not {m.event_id for m in messages} <= case.processed
        )
    return wrong


async def create_collections(db: Any) -> None:
    """Create the tracker's collections (the timers' versions, the unit index's shards)."""
    names = {VERSIONS} | {c.name for c in ShardedCollection(db, "unit_cases").all()}
    existing = set(await db.list_collection_names())
    for name in sorted(names - existing):
        await db.create_collection(name)


# -- store: CaseStore.apply directly ------------------------------------------------------------


async def run_store(
    settings: StackSettings,
    cases: int,
    concurrency: int,
    *,
    batch: int = 1,
    in_memory: bool = False,
) -> dict[str, Any]:
    database = f"bench_tracker_{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)
    outbox = CountingOutbox(DirectProducer(settings.kafka_bootstrap, PUBLISHES, service="bench"))
    try:
        await ensure_topics(settings.kafka_bootstrap)
        await outbox.producer.start()
        repo: Any
        # As the service records done outboxes: a while after a burst (TrackerSettings).
        settle = TrackerSettings.model_fields["settle_seconds"].default or None
        if in_memory:  # the process's own ceiling: the domain, documents, Kafka; no store
            repo = InMemoryCaseRepository()
            store = CaseStore(
                repo, outbox, InMemoryIndexes(), InMemoryTimers(), settle_after=settle
            )
        else:
            repo = MongoCaseRepository(client, database)
            await repo.ensure_indexes()
            store = CaseStore(
                repo,
                outbox,
                MongoIndexes(client, database),
                MongoTimers(client, database),
                settle_after=settle,
            )
        rules = domain.Rules.default("tracker")
        run = uuid.uuid4().hex[:6]
        now = datetime.now(UTC)
        lives = bench_lives(run, cases, now)
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def live(messages: Sequence[CaseMessage]) -> None:
            async with gate:
                for message in messages:
                    started = time.perf_counter()
                    await store.apply(message.case_id, change_for(message, rules))
                    latencies.append(time.perf_counter() - started)

        async def in_batches(lives: Sequence[Sequence[CaseMessage]]) -> None:
            """Step by step (every case's appeal, then every first hop, ...), `batch` cases'
            messages per `apply_many`, as a batch subscriber hands over what one poll of a
            topic returned; `concurrency` cases in flight."""
            batches = [lives[i : i + batch] for i in range(0, len(lives), batch)]
            in_flight = asyncio.Semaphore(max(1, concurrency // batch))

            async def apply(step: int, messages: Sequence[CaseMessage]) -> None:
                async with in_flight:
                    started = time.perf_counter()
                    results = await store.apply_many(
                        [(m.case_id, change_for(m, rules)) for m in messages]
                    )
                    latencies.append(time.perf_counter() - started)
                failed = [r for r in results if isinstance(r, Exception)]
                if failed:
                    raise failed[0]

            for step in range(EVENTS_PER_CASE):
                await asyncio.gather(*[apply(step, [m[step] for m in b]) for b in batches])

        if not in_memory:
            # The tables a running tracker has: creating one is a one-time cost, not an event's.
            await create_collections(client[database])
        # Warm up (connections, pools, code paths) on cases that are not counted.
        await asyncio.gather(
            *[live(m) for m in [case_messages(f"warm-{run}-{i}", i, now) for i in range(8)]]
        )
        await store.settle(everything=True)
        latencies.clear()
        published_before = outbox.count
        started = time.perf_counter()
        settling = asyncio.create_task(store.run_settling())
        if batch > 1:
            await in_batches(lives)
        else:
            await asyncio.gather(*[live(m) for m in lives])
        settling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await settling
        await store.settle(everything=True)  # the last versions' records are part of the work
        await repo.flush()  # and the cases' views of them
        elapsed = time.perf_counter() - started
        published = outbox.count - published_before

        wrong = await wrong_cases(repo, lives)
        latencies.sort()
        events = cases * EVENTS_PER_CASE
        return {
            "mode": "store (in-memory fakes: no store)" if in_memory else "store",
            "events": events,
            "seconds": elapsed,
            "rate": events / elapsed,
            "published": published,
            "wrong_cases": wrong,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "detail": f"{cases} cases, {concurrency} in flight"
            + (f", {batch} per batch" if batch > 1 else ""),
            "store": "none (in-memory fakes)" if in_memory else await store_name(client[database]),
        }
    finally:
        await outbox.producer.stop()
        await client.drop_database(database)
        await client.close()


# -- service: the tracker app with its consumers -------------------------------------------------


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
    by its name in the registry's private index when it is there): collecting the whole
    registry every 50 ms took 2-3 % of the CPU of the tracker it measures."""
    collector = getattr(registry, "_names_to_collectors", {}).get(f"{name}_total", registry)
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


async def run_service(settings: StackSettings, cases: int, cpu: CpuMeter) -> dict[str, Any]:
    from fengqiao.services.tracker.app import build
    from fengqiao.services.tracker.settings import TrackerSettings

    run = uuid.uuid4().hex[:6]
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
    await start_groups_at_end(
        settings.kafka_bootstrap,
        tracker_settings.group_id,
        [
            APPEALS,
            DISPATCH_ORDERS,
            REPLIES_SENT,
            UNIT_ACTIONS,
            SUPERVISION_ORDERS,
            COORDINATION_REQUESTS,
        ],
    )
    now = datetime.now(UTC)
    lives = bench_lives(run, cases, now)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, tz_aware=True)

    def messages(steps: range) -> list[Sent]:
        """Those steps of every case, in order within a case."""
        return [(TOPIC_OF[type(life[step])], life[step]) for step in steps for life in lives]

    async def first_applied() -> float:
        """The instant the first message is applied (the CPU is measured from then on): watched
        from before the app starts, as its consumers may begin while it is still starting."""
        while True:  # polled: the counter has no event to wait on
            if counted(runtime.registry, "fengqiao_tracker_messages") > 0:
                break
            await asyncio.sleep(0.002)
        cpu.start()
        return time.perf_counter()

    async def handled(topics: Sequence[Topic]) -> None:
        """Wait until the tracker's groups have committed everything on `topics`: each poll is
        committed once it was applied. (Not the count of messages applied: a poll handed over
        again after its partition moved to another consumer is applied again, as a no-op.)"""
        async with connect(settings.kafka_bootstrap) as cluster:
            ends = await cluster.end_offsets(await cluster.partitions(t.name for t in topics))
            progress, last = None, time.perf_counter()
            while behind := await uncommitted(cluster, tracker_settings.group_id, ends):
                if behind != progress:
                    progress, last = behind, time.perf_counter()
                elif time.perf_counter() - last > 60:
                    dead = counted(runtime.registry, "fengqiao_dead_letters")
                    raise TimeoutError(
                        f"{behind} messages not handled, {dead:.0f} dead letters, "
                        "and no progress for 60 s"
                    )
                await asyncio.sleep(0.05)

    watching: asyncio.Task[float] | None = None
    try:
        # The appeal, its dispatch and its acknowledgment travel on three topics and may be
        # applied in any order; the units act once the case reached them (as the unit API
        # refuses actions on cases a unit cannot see yet).
        loading = time.perf_counter()
        await send_messages(settings.kafka_bootstrap, messages(range(4)))
        loaded = time.perf_counter() - loading
        # The units' actions come from another process, as they would (the unit API, a replica):
        # publishing them here would take this process's CPU from the tracker it measures.
        acting_process = ChildPublisher(
            settings.kafka_bootstrap, messages(range(4, EVENTS_PER_CASE))
        )
        started = time.perf_counter()
        watching = asyncio.create_task(first_applied())
        async with serving(app):
            up = time.perf_counter() - started
            first = await watching
            await handled(PRELOADED)
            first_phase = time.perf_counter() - first
            first_cpu = cpu.seconds()
            await asyncio.to_thread(acting_process.ready)
            acting = time.perf_counter()
            acting_process.go()
            await asyncio.to_thread(acting_process.join)  # all published (in a fraction)
            await handled([UNIT_ACTIONS])
            second_phase = time.perf_counter() - acting
            finished = time.perf_counter()
            cpu.stop()
            second_cpu = cpu.used[cpu.this] - first_cpu
        dead = counted(runtime.registry, "fengqiao_dead_letters")
        events = cases * EVENTS_PER_CASE
        wrong = await wrong_cases(MongoCaseRepository(client, tracker_settings.database), lives)
        stored = await stored_documents(client[tracker_settings.database])
        seconds = first_phase + second_phase
        return {
            "mode": "service",
            "events": events,
            "seconds": seconds,
            "rate": events / seconds,
            "published": None,
            "wrong_cases": wrong + int(dead),
            "detail": (
                f"{cases} cases; appeals, dispatches and acknowledgments pre-loaded "
                f"({loaded:.1f} s) and applied in {first_phase:.1f} s from the first, then the "
                f"units' actions published and applied in {second_phase:.1f} s; app up in "
                f"{up:.1f} s, {finished - started:.1f} s in all; {dead:.0f} dead letters; "
                f"{cpu.per_event(events)} (tracker: {first_cpu / (cases * 4) * 1e6:,.0f} µs "
                f"while applying the pre-loaded, {second_cpu / (cases * 3) * 1e6:,.0f} µs the "
                "actions); stored per event: "
                + ", ".join(f"{name} {count / events:.2f}" for name, count in stored.items())
            ),
            "store": await store_name(client[tracker_settings.database]),
        }
    finally:
        if watching is not None:
            watching.cancel()
        await client.drop_database(tracker_settings.database)
        await client.close()


async def stored_documents(db: Any) -> dict[str, int]:
    """The documents in the tracker's database, by collection (shards and buckets together)."""
    counts: dict[str, int] = {}
    for name in sorted(await db.list_collection_names()):
        kind = re.sub(r"_[0-9a-f]+$", "", name)
        counts[kind] = counts.get(kind, 0) + await db[name].count_documents({})
    return counts


def summary(result: dict[str, Any]) -> str:
    extra = ""
    if result.get("p50_ms") is not None:
        extra = f", latency p50 {result['p50_ms']:.0f} ms p99 {result['p99_ms']:.0f} ms"
    if result.get("published") is not None:
        extra += f", {result['published']} messages published"
    verdict = "meets" if result["rate"] >= 2000 else "BELOW"
    return (
        f"RESULT tracker {result['mode']}: {result['rate']:,.0f} case events/s "
        f"({result['events']:,} in {result['seconds']:.1f} s; {verdict} the 2,000/s target; "
        f"{result['detail']}{extra}; {result['wrong_cases']} cases wrong) | "
        f"machine: {machine()}; store: {result['store']}; Kafka acks=all"
    )


async def main_async(args: argparse.Namespace, cpu: CpuMeter) -> int:
    settings = StackSettings()
    failed = 0
    if args.mode in ("store", "both", "all"):
        result = await run_store(settings, args.cases, args.concurrency, batch=args.batch)
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    if args.mode in ("memory", "all"):
        result = await run_store(
            settings, args.cases, args.concurrency, batch=args.batch, in_memory=True
        )
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    if args.mode in ("service", "both", "all"):
        result = await run_service(settings, args.cases, cpu)
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=64, help="store mode: cases in flight")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="store mode: messages per CaseStore.apply_many (1: CaseStore.apply per message)",
    )
    parser.add_argument(
        "--mode",
        choices=("store", "service", "both", "memory", "all"),
        default="both",
        help="both: store and service; memory: CaseStore over the in-memory fakes (the process's "
        "ceiling without a store); all: the three",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = StackSettings()
    stack.up(settings)
    cpu = CpuMeter.for_stack(settings, this="tracker")
    gc.set_threshold(*GC_THRESHOLDS)  # as the services run (the service mode's app sets it too)
    # On uvloop, as the services run (uvicorn picks it when it is installed).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(asyncio.wait_for(main_async(args, cpu), timeout=1800))


if __name__ == "__main__":
    sys.exit(main())
