"""The tracker's case store on the real MongoDB-compatible store and Kafka."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from fengqiao.contracts import (
    APPEALS,
    REPLIES_REQUESTED,
    AppealNormalized,
    Author,
    Outgoing,
    ReplyTarget,
)
from fengqiao.runtime.service import GC_THRESHOLDS
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers
from fengqiao.services.tracker.app import build
from fengqiao.services.tracker.domain import new_case
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import serving
from fengqiao.watch import TopicWatcher


async def test_conditional_write_refuses_a_stale_version(stack: StackSettings, run_id: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    try:
        repo = MongoCaseRepository(client, f"itest_{run_id}")
        first = replace(new_case(f"c-{run_id}"), version=1, opened=True)
        assert await repo.save(first, expected_version=0)
        assert not await repo.save(first, expected_version=0)  # inserted twice: refused
        second = replace(first, version=2, account="@博乐检察")
        assert await repo.save(second, expected_version=1)
        assert not await repo.save(replace(first, version=2), expected_version=1)  # stale
        stored = await repo.get(first.case_id)
        assert stored is not None and stored.account == "@博乐检察" and stored.version == 2
    finally:
        await client.drop_database(f"itest_{run_id}")
        await client.close()


async def test_an_appeal_delivered_twice_opens_one_case_and_one_acknowledgment(
    stack: StackSettings, run_id: str
) -> None:
    settings = TrackerSettings(stack=stack, database=f"itest_tracker_{run_id}")
    runtime, app = build(settings)
    case_id = f"c-{run_id}"
    message = AppealNormalized(
        occurred_at=datetime.now(UTC),
        producer="itest",
        case_id=case_id,
        post_event_id="p",
        platform="weibo",
        channel="webhook",
        account="@新疆检察",
        author=Author(id="u"),
        posted_at=datetime.now(UTC),
        original_text="求助",
        text="求助",
        masked_text="求助",
        lang="zh",
        is_appeal=True,
        reply_to=ReplyTarget(platform="weibo", account="@新疆检察", post_id=f"p-{run_id}"),
    )
    async with (
        TopicWatcher(stack.kafka_bootstrap, [REPLIES_REQUESTED.name]) as watcher,
        serving(app),
    ):
        assert gc.get_threshold() == GC_THRESHOLDS  # a running service collects less often
        await runtime.broker.publish(message, APPEALS.name, key=case_id.encode())
        await runtime.broker.publish(message, APPEALS.name, key=case_id.encode())
        await watcher.wait_for(
            lambda w: bool(w.of(REPLIES_REQUESTED.name, lambda r: r.case_id == case_id)),
            timeout=60,
            what="the acknowledgment request",
        )
        client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
        try:
            repo = MongoCaseRepository(client, settings.database)
            for _ in range(50):  # the flush after the write may still be in flight
                case = await repo.get(case_id)
                if case is not None and not case.outbox:
                    break
                await asyncio.sleep(0.1)
            assert case is not None
            assert case.opened is True
            assert case.outbox == ()
            assert [e.event for e in case.timeline] == ["case.opened"]
        finally:
            await client.drop_database(settings.database)
            await client.close()
    assert len(watcher.of(REPLIES_REQUESTED.name, lambda r: r.case_id == case_id)) == 1


async def test_four_replicas_writing_one_case_at_once_lose_nothing(
    stack: StackSettings, run_id: str
) -> None:
    """Four stores with their own clients (as four tracker replicas: no shared lock) apply 40
    messages to one case concurrently; the store's compare-and-set keeps every one.

    This caught two ways FerretDB loses updates: an in-place `$unset` racing an insert of the
    same `_id`, and a stale writer re-creating a pruned version id."""
    from fengqiao.contracts import ReplyPurpose, ReplySent
    from fengqiao.services.tracker import domain
    from fengqiao.services.tracker.unit_of_work import UnitOfWork

    class Discard:
        async def send_all(self, messages: Iterable[Outgoing]) -> None:
            list(messages)

    database = f"itest_race_{run_id}"
    clients: list[AsyncMongoClient] = [
        AsyncMongoClient(stack.mongo_uri, tz_aware=True, maxPoolSize=40) for _ in range(4)
    ]
    try:
        repos = [MongoCaseRepository(client, database) for client in clients]
        await repos[0].ensure_indexes()
        replicas = [
            UnitOfWork(repo, Discard(), InMemoryIndexes(), InMemoryTimers()) for repo in repos
        ]
        case_id = f"c-race-{run_id}"
        results = [
            ReplySent(
                occurred_at=datetime.now(UTC),
                producer="itest",
                case_id=case_id,
                request_event_id=f"r{i}",
                idempotency_key=f"{case_id}:progress:{i}",
                purpose=ReplyPurpose.PROGRESS,
                status="failed",
                error="x",
            )
            for i in range(40)
        ]
        await asyncio.gather(
            *[
                replicas[i % 4].apply(
                    case_id,
                    lambda c, m=m: domain.record_reply(c, m, rules=domain.Rules.default("t")),
                )
                for i, m in enumerate(results)
            ]
        )
        case = await repos[0].get(case_id)
        assert case is not None
        assert {m.event_id for m in results} <= case.processed
        assert len(case.replies) == 40
    finally:
        await clients[0].drop_database(database)
        for client in clients:
            await client.close()
