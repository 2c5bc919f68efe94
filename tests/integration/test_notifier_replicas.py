"""Two notifier replicas hold one account's rate limit between them, not one each.

Replies are published to `replies.requested` as the tracker publishes them (keyed by the
message's `kafka_key()`). Two notifier processes share one consumer group; the account may post
3 comments at once, then one every 63 s. Twenty replies for the account, of twenty cases, come at
once: within the next seconds the platform simulator takes no more than 3 of them, and the rest
wait parked in the store, none lost.

Before replies were keyed by account, each replica read the cases of its partitions and spent a
budget of its own: the simulator took 6.

Then the replica that owns the account stops: the other is assigned its partitions and adopts
the parked replies (its gauge counts them), none posted twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from fengqiao import processes
from fengqiao.contracts import (
    REPLIES_REQUESTED,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
)
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import StackEndpoints
from fengqiao.testing.groups import start_group_at_end

ACCOUNT = "@新疆检察"
BURST = 3
REPLIES = 20


def reply_request(case_id: str, post_id: str) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=datetime.now(UTC),
        producer="test",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account=ACCOUNT, post_id=post_id),
        template_id="acknowledgment",
        variables={"account": ACCOUNT, "case_ref": case_id[-8:]},
    )


async def members(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's state and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return str(described.get("state")), len(described.get("members") or ())
    finally:
        await admin.close()


async def received(http: httpx.AsyncClient, sim: str, posts: set[str]) -> list[dict[str, Any]]:
    taken = (await http.get(f"{sim}/_sim/received")).json()
    return [p for p in taken if p["target"].get("id") in posts]


async def test_two_replicas_share_one_budget_per_account(
    stack: StackSettings, stack_endpoints: StackEndpoints, run_id: str, tmp_path: Path
) -> None:
    """`stack`: its topics exist."""
    group, database = f"itest-replicas-{run_id}", f"itest_replicas_{run_id}"
    consumer_group = f"{group}.{REPLIES_REQUESTED.name}"
    bootstrap = stack_endpoints.kafka_bootstrap
    await start_group_at_end(bootstrap, consumer_group, REPLIES_REQUESTED.name)
    ports = processes.free_ports(("notifier", "simulator", "second"))
    second_port = ports.pop("second")
    env = {
        **stack_endpoints.env(),
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{ports['simulator']}",
        "FENGQIAO_NOTIFIER_DEFAULT_ACCESS_TOKEN": "replica-token",
        "FENGQIAO_NOTIFIER_DATABASE": database,
        "FENGQIAO_NOTIFIER_GROUP_ID": group,
        "FENGQIAO_NOTIFIER_COMMENTS_PER_HOUR": "60",
        "FENGQIAO_NOTIFIER_BURST": str(BURST),
        "FENGQIAO_NOTIFIER_PARKED_SWEEP_SECONDS": "1",
    }
    posts = {str(uuid.uuid4().int % 10**16) for _ in range(REPLIES)}
    requests = [reply_request(f"c-{uuid.uuid4().hex[:16]}", post) for post in sorted(posts)]
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack_endpoints.mongo_uri)
    logs = tmp_path / "logs"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            with (
                processes.running(env, log_dir=logs, services=("notifier",), ports=ports) as one,
                processes.running(
                    env,
                    log_dir=logs / "second",
                    services=("notifier",),
                    simulator=False,
                    ports={"notifier": second_port},
                ) as two,
            ):
                deadline = time.monotonic() + 60
                while await members(bootstrap, consumer_group) != ("Stable", 2):
                    assert time.monotonic() < deadline, "the two replicas never shared the group"
                    await asyncio.sleep(0.5)
                sim = one.url("simulator")
                started = time.monotonic()
                async with KafkaBroker(bootstrap) as broker:
                    for request in requests:  # as the tracker publishes them
                        key = request.kafka_key().encode()
                        await broker.publish(request, REPLIES_REQUESTED.name, key=key)
                while len(await received(http, sim, posts)) < BURST:
                    assert time.monotonic() - started < 30, "the budget's burst never went out"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(8)  # time for a second replica's budget to be spent
                taken = await received(http, sim, posts)
                elapsed = time.monotonic() - started
                # One budget: the burst, plus a token each 63 s (3,600 s / 57) since.
                assert len(taken) <= BURST + int(elapsed / 63), (len(taken), elapsed)
                parked = await mongo[database]["queue"].count_documents({})
                assert parked + len(taken) == REPLIES  # the rest wait in the store
                # The replica that owns the account counts them (its sweep, once a second).
                gauge = f'fengqiao_notifier_parked{{bucket="{ACCOUNT}:comments"}} {parked:.1f}'
                pages = [
                    (await http.get(f"{fleet.url('notifier')}/metrics")).text
                    for fleet in (one, two)
                ]
                assert sum(gauge in page for page in pages) == 1, gauge

                # The owner stops: its partitions go to the other, which adopts what is parked.
                owner, survivor = (one, two) if gauge in pages[0] else (two, one)
                processes.stop(owner.members["notifier"])
                deadline = time.monotonic() + 60
                while True:
                    left = await mongo[database]["queue"].count_documents({})
                    page = (await http.get(f"{survivor.url('notifier')}/metrics")).text
                    if f'{{bucket="{ACCOUNT}:comments"}} {left:.1f}' in page:
                        break
                    assert time.monotonic() < deadline, "the other replica never adopted them"
                    await asyncio.sleep(0.5)
                taken = await received(http, sim, posts)
                assert len({p["target"]["id"] for p in taken}) == len(taken) == REPLIES - left
    finally:
        await mongo.drop_database(database)
        await mongo.close()
