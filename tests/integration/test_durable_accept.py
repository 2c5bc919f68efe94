"""No accepted post is lost, none is stored twice, when Kafka dies under load and comes back.

Intake runs in-process against a Kafka of this test's own (own ports and cache dir, the jars and
FerretDB binary of the main cache shared by symlinks), so killing it disturbs no one. Signed
posts go in one after another; the broker is SIGKILLed mid-stream (a crash, not a clean stop);
posts are then answered 503 with Retry-After within the sink's 3 s; the broker is restarted while
posting continues. At the end posts.raw is read whole:

- every post answered 2xx is there exactly once (by source_id);
- every post answered 503 is there once or not at all (a publish that timed out may still have
  been delivered by the producer's retry), never twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fengqiao.contracts import POSTS_RAW
from fengqiao.runtime.messaging import ensure_topics
from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.signing import signed_headers
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings
from fengqiao.stack import down, up
from fengqiao.stack.lifecycle import components
from fengqiao.testing import serving
from tests.integration.stack_cache import share_main_cache

KAFKA_PORT = 19592
MONGO_PORT = 27617
SECRET = "durable-secret-0123456"
POSTS = 200
KILL_AT = 60
POSTS_WHILE_DOWN = 1  # 503s (3 s each) before the restart begins


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[StackSettings]:
    """A Kafka (and FerretDB) that only this test uses; stopped afterwards, whatever happened."""
    cache = tmp_path / "stack"
    cache.mkdir()
    share_main_cache(cache)
    settings = StackSettings(
        kafka_bootstrap=f"127.0.0.1:{KAFKA_PORT}",
        mongo_uri=f"mongodb://127.0.0.1:{MONGO_PORT}/",
        cache_dir=cache,
        external=False,
    )
    up(settings, progress=lambda _: None)
    try:
        yield settings
    finally:
        down(settings, progress=lambda _: None)


def _kill_kafka(settings: StackSettings) -> None:
    kafka = components(settings)[0]
    os.kill(int(kafka.pid_file.read_text().strip()), signal.SIGKILL)


def _body(post_id: str) -> bytes:
    post = {"id": post_id, "account": "@新疆检察", "author": {"id": "u"}, "text": f"求助 {post_id}"}
    return json.dumps(post, ensure_ascii=False).encode()


async def _stored_source_ids(bootstrap: str) -> Counter[str]:
    """Every source_id in posts.raw, counted, read from the start to the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(POSTS_RAW.name, p) for p in range(POSTS_RAW.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: Counter[str] = Counter()
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(*parts, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    seen[json.loads(record.value)["source_id"]] += 1
        return seen
    finally:
        await consumer.stop()


async def test_no_acknowledged_post_is_lost_or_doubled_across_a_broker_crash(
    own_stack: StackSettings,
) -> None:
    started = time.monotonic()
    await ensure_topics(own_stack.kafka_bootstrap)
    _, app = build(
        IntakeSettings(
            stack=own_stack,
            generic_secrets={"durable": SECRET},
            generic_sources={
                "durable": GenericSource(platforms=["generic"], accounts=["@新疆检察"])
            },
        )
    )
    answers: dict[str, int] = {}
    retry_after: set[str] = set()
    restart: asyncio.Task[None] | None = None
    async with serving(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            for i in range(POSTS):
                if i == KILL_AT:
                    _kill_kafka(own_stack)
                down_answers = sum(1 for s in answers.values() if s == 503)
                if restart is None and down_answers >= POSTS_WHILE_DOWN:
                    restart = asyncio.create_task(asyncio.to_thread(up, own_stack, lambda _: None))
                body = _body(f"d{i}")
                response = await client.post(
                    "/webhooks/generic/durable", content=body, headers=signed_headers(SECRET, body)
                )
                answers[f"durable:d{i}"] = response.status_code
                if response.status_code == 503:
                    retry_after.add(response.headers.get("Retry-After", ""))
        assert restart is not None
        await restart
    stored = await _stored_source_ids(own_stack.kafka_bootstrap)

    accepted = {s for s, code in answers.items() if 200 <= code < 300}
    refused = {s for s, code in answers.items() if code == 503}
    print(
        f"\ndurable accept: {POSTS} posts, {len(accepted)} 2xx, {len(refused)} 503, "
        f"{sum(1 for s in accepted if stored[s])} of the 2xx stored, "
        f"{sum(1 for s in refused if stored[s])} of the 503 stored anyway, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert set(answers.values()) <= {202, 503}
    assert len(refused) >= POSTS_WHILE_DOWN
    assert retry_after == {"5"}
    assert len(accepted) >= POSTS - 20  # after the restart, posts are accepted again
    assert all(stored[s] == 1 for s in accepted), {s: stored[s] for s in accepted if stored[s] != 1}
    assert all(stored[s] <= 1 for s in refused)
    assert set(stored) <= set(answers)
