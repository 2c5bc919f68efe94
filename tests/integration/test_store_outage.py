"""The store stopped while appeals flow through the tracker: the tracker waits the outage out and
retries, and nothing goes to dead letters. Every appeal opens its case and asks for its
acknowledgment, the readable view of every case catches up, and `/readyz` answers 503 while the
store is away and 200 again after. (Before, messages whose writes failed with
`ServerSelectionTimeoutError` or `AutoReconnect` were dead-lettered: cases never opened.)

It stops the native stack's FerretDB (`fengqiao.stack.down(..., only=["ferretdb"])`), so it runs
only on the native stack. The tracker's store client gives up on a server after 2 s instead of
pymongo's 30 (`serverSelectionTimeoutMS`): a 12 s outage then fails writes, as a longer one does
with the default."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from pymongo import AsyncMongoClient

from fengqiao import stack as local_stack
from fengqiao.contracts import APPEALS, REPLIES_REQUESTED, DeadLetter, ReplyPurpose
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.app import build
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import StackEndpoints, serving
from fengqiao.testing.factories import appeal_message
from fengqiao.testing.groups import start_group_at_end
from fengqiao.watch import TopicWatcher

APPEALS_PER_SECOND = 5
FLOW_SECONDS = 24  # appeals keep coming before, during and after the outage
DOWN_AFTER, DOWN_FOR = 4.0, 12.0


@pytest.fixture
def native(stack_endpoints: StackEndpoints, stack: StackSettings) -> StackSettings:
    if stack_endpoints.source != "native":
        pytest.skip("stops the native stack's FerretDB")
    return stack.model_copy(update={"external": False})


async def test_a_store_outage_is_waited_out_and_nothing_is_dead_lettered(
    native: StackSettings, stack: StackSettings, run_id: str
) -> None:
    quick = stack.model_copy(
        update={"mongo_uri": f"{stack.mongo_uri}?serverSelectionTimeoutMS=2000"}
    )
    settings = TrackerSettings(
        stack=quick, database=f"itest_outage_{run_id}", group_id=f"tracker-outage-{run_id}"
    )
    runtime, app = build(settings)
    await start_group_at_end(
        stack.kafka_bootstrap, f"{settings.group_id}.{APPEALS.name}", APPEALS.name
    )
    cases = [f"c-outage-{run_id}-{n}" for n in range(APPEALS_PER_SECOND * FLOW_SECONDS)]
    readiness: list[tuple[float, int]] = []  # (seconds since the store came back, status)
    store_back: list[float] = []

    async def watch_readiness(client: httpx.AsyncClient) -> None:
        while True:
            answer = await client.get("/readyz")
            since = time.monotonic() - store_back[0] if store_back else -1.0
            readiness.append((since, answer.status_code))
            await asyncio.sleep(0.5)

    async def publish_appeals() -> None:
        for n, case_id in enumerate(cases):
            appeal = appeal_message(
                f"博乐市拖欠工资 第{n}件",
                event_id=f"{case_id}-appeal",
                case_id=case_id,
                occurred_at=datetime.now(UTC),
            )
            await runtime.broker.publish(appeal, APPEALS.name, key=case_id.encode())
            await asyncio.sleep(1 / APPEALS_PER_SECOND)

    async def outage() -> None:
        await asyncio.sleep(DOWN_AFTER)
        try:
            await asyncio.to_thread(local_stack.down, native, lambda _: None, only=["ferretdb"])
            await asyncio.sleep(DOWN_FOR)
        finally:
            await asyncio.to_thread(local_stack.up, native, lambda _: None, only=["ferretdb"])
            store_back.append(time.monotonic())

    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    repo = MongoCaseRepository(client, settings.database)
    topics = [APPEALS.dlq, REPLIES_REQUESTED.name]

    def ours(letter: DeadLetter) -> bool:
        return letter.origin_key in set(cases)

    try:
        async with (
            TopicWatcher(stack.kafka_bootstrap, topics) as watcher,
            serving(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            watching = asyncio.create_task(watch_readiness(http))
            try:
                await asyncio.gather(publish_appeals(), outage())

                def acknowledged() -> set[str]:
                    return {
                        r.case_id
                        for r in watcher.of(REPLIES_REQUESTED.name)
                        if r.purpose is ReplyPurpose.ACKNOWLEDGMENT
                    }

                await watcher.wait_for(
                    lambda w: set(cases) <= acknowledged() or bool(w.of(APPEALS.dlq, ours)),
                    timeout=120,
                    what="every appeal's acknowledgment asked for (or a dead letter)",
                )
                for _ in range(120):  # ready again once the store answers
                    if readiness[-1][1] == 200:
                        break
                    await asyncio.sleep(0.5)
            finally:
                watching.cancel()
        # The app has stopped: it wrote the views it held.
        letters = watcher.of(APPEALS.dlq, ours)
        assert letters == [], [f"{d.error_type}: {d.error}" for d in letters[:5]]
        assert set(cases) <= acknowledged()
        opened = [await repo.get(c) for c in cases]
        assert all(c is not None and f"{c.case_id}-appeal" in c.processed for c in opened)
        views = [await repo.find(c) for c in cases]
        assert all(v is not None for v in views), sum(v is None for v in views)
        during = [status for since, status in readiness if since < 0]
        after = [status for since, status in readiness if since >= 0]
        assert 503 in during, readiness
        assert after and after[-1] == 200, readiness
    finally:
        if not all(c.state == "running" for c in local_stack.status(native)):
            local_stack.up(native, lambda _: None, only=["ferretdb"])
        await client.drop_database(settings.database)
        await client.close()
