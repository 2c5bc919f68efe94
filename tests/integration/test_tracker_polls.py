"""The tracker lets a poll fill (messaging's POLL_WAIT_MS): appeals that come a few milliseconds
apart are handed over as one poll, and the unit of work writes their cases with one insert per
collection, counted by the store listener on the tracker's registry (runtime/store/metrics.py)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from fengqiao.contracts import APPEALS, Author
from fengqiao.runtime.messaging.subscribers import POLL_WAIT_MS
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.app import build
from fengqiao.services.tracker.settings import TrackerSettings
from fengqiao.testing import serving
from fengqiao.testing.factories import appeal_message
from fengqiao.testing.groups import start_group_at_end
from tests.integration.test_tracker_replay import TOPIC_NAMES

APPEALS_SENT = 60
SPACING = 0.01  # seconds between two appeals: 600 ms in all, about 6 polls' wait


async def test_appeals_a_few_ms_apart_are_one_poll_and_one_insert_per_collection(
    stack: StackSettings, run_id: str
) -> None:
    settings = TrackerSettings(
        stack=stack, database=f"itest_polls_{run_id}", group_id=f"tracker-{run_id}"
    )
    runtime, app = build(settings)
    cases = [f"c-poll-{run_id}-{n}" for n in range(APPEALS_SENT)]
    appeals = [
        appeal_message(
            f"博乐市拖欠工资 第{n}件",
            event_id=f"{case}-appeal",
            case_id=case,
            author=Author(id=f"u-{run_id}-{n}"),
        )
        for n, case in enumerate(cases)
    ]
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    repo = MongoCaseRepository(client, settings.database)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)

    def commands(collection: str, command: str) -> float:
        labels = {"service": "tracker", "collection": collection, "command": command}
        found = runtime.registry.get_sample_value("fengqiao_store_commands_total", labels)
        return found or 0.0

    # A new group would read every earlier test's messages first: start them at the end.
    for topic in TOPIC_NAMES:
        await start_group_at_end(stack.kafka_bootstrap, f"{settings.group_id}.{topic}", topic)
    await producer.start()
    try:
        async with serving(app):
            await asyncio.sleep(1.0)  # the consumer's first fetch is waiting at the broker
            before = commands("case_versions", "insert")
            started = time.monotonic()
            for n, appeal in enumerate(appeals):  # each stored before the next is sent
                await asyncio.sleep(max(0.0, started + n * SPACING - time.monotonic()))
                await producer.send_and_wait(APPEALS.name, appeal.model_dump_json().encode())
            sending = time.monotonic() - started
            for _ in range(300):
                stored = [await repo.get(c) for c in cases]
                if all(case is not None and not case.outbox for case in stored):
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the tracker never opened every case")
            polls = commands("awaiting_callback", "find")  # one lookup per poll of appeals
            inserts = commands("case_versions", "insert") - before
    finally:
        await producer.stop()
        await client.drop_database(settings.database)
        await client.close()
    # Without the wait most appeals came in a poll of their own (29 polls of 60 appeals, measured).
    most = sending * 1000 / POLL_WAIT_MS + 3
    assert polls <= most, f"{polls:.0f} polls for {APPEALS_SENT} appeals"
    # One insert per poll for the new versions, one for the versions recording done outboxes.
    assert inserts <= 2 * polls, f"{inserts:.0f} inserts of case versions in {polls:.0f} polls"
