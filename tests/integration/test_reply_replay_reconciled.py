"""At most one public reply per purpose, replays included (issue 18, deliver 2).

The notifier posts an acknowledgment; the platform takes it, but the notifier cannot record that
it did (its store stops answering while the platform's answer is on its way), so the claim stays
`sending`. The account then posts 1,000 other replies (through the platform's API with the same
token, as another replica or an editor would), far more than the 200 newest comments of the
account a check could read. The notifier is killed, the store comes back, an operator replays the
request's dead letter with `fengqiao ops dlq replay` (as the notifier wrote it before issue 18),
and the notifier starts again: Kafka gives it the request again and the replay. Both reach the
claim still `sending`, and both must find the reply where it is, among the post's own comments
(Weibo's comments/show, paged), by the marker the notifier put in its text: exactly one reply on
the platform, recorded `sent` with the platform's id.

The notifier and the simulator are processes; everything between them is HTTP; the notifier
reaches its store through a relay the test cuts (tests/integration/test_ops_dead_letter_replay).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from fengqiao import processes
from fengqiao.cli import main
from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    DeadLetter,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
)
from fengqiao.testing import StackEndpoints
from fengqiao.testing.groups import start_group_at_end
from fengqiao.watch import TopicWatcher
from tests.integration.test_ops_dead_letter_replay import StoreLink

OTHER_REPLIES = 1_000


def acknowledgment(case_id: str, post_id: str) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=datetime.now(UTC),
        producer="tracker",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account="@新疆检察", user_id="1", post_id=post_id),
        template_id="acknowledgment",
        variables={"account": "@新疆检察", "case_ref": case_id[-8:]},
    )


async def on_post(http: httpx.AsyncClient, sim: str, post_id: str) -> list[dict[str, Any]]:
    """What the account posted under `post_id`, as the simulator received it."""
    posts = (await http.get(f"{sim}/_sim/received")).json()
    return [p for p in posts if p["target"].get("id") == post_id]


async def other_replies(http: httpx.AsyncClient, sim: str, token: str, count: int) -> None:
    """`count` comments by the same account on other posts."""
    semaphore = asyncio.Semaphore(16)

    async def one(n: int) -> None:
        async with semaphore:
            response = await http.post(
                f"{sim}/2/comments/create.json",
                data={"access_token": token, "id": str(9_000_000 + n), "comment": f"回复{n}"},
            )
            response.raise_for_status()

    await asyncio.gather(*(one(n) for n in range(count)))


async def test_a_reply_whose_outcome_was_not_recorded_is_posted_once_after_replay(
    stack_endpoints: StackEndpoints, run_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group, database = f"itest-replay-{run_id}", f"itest_replay_{run_id}"
    await start_group_at_end(
        stack_endpoints.kafka_bootstrap, f"{group}.{REPLIES_REQUESTED.name}", REPLIES_REQUESTED.name
    )
    mongo_at = urlsplit(stack_endpoints.mongo_uri)
    link = StoreLink(mongo_at.hostname or "127.0.0.1", mongo_at.port or 27017)
    token = f"replay-{run_id}"
    ports = processes.free_ports(("notifier", "simulator"))
    env = {
        **stack_endpoints.env(),
        "FENGQIAO_MONGO_URI": f"mongodb://127.0.0.1:{link.port}/?serverSelectionTimeoutMS=2000",
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{ports['simulator']}",
        "FENGQIAO_NOTIFIER_DEFAULT_ACCESS_TOKEN": token,
        "FENGQIAO_NOTIFIER_RATE_LIMITS": "false",
        "FENGQIAO_NOTIFIER_DATABASE": database,
        "FENGQIAO_NOTIFIER_GROUP_ID": group,
        "FENGQIAO_NOTIFIER_HTTP_TIMEOUT_SECONDS": "8",
    }
    case_id = f"c-{uuid.uuid4().hex[:16]}"
    post_id = str(uuid.uuid4().int % 10**16)
    request = acknowledgment(case_id, post_id)
    key = request.idempotency_key
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack_endpoints.mongo_uri)
    logs = tmp_path / "logs"
    producer = AIOKafkaProducer(bootstrap_servers=stack_endpoints.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with (
            TopicWatcher(stack_endpoints.kafka_bootstrap, [REPLIES_SENT.name]) as watcher,
            httpx.AsyncClient(timeout=10) as http,
        ):
            with processes.running(env, log_dir=logs, services=("notifier",), ports=ports) as fleet:
                sim = fleet.url("simulator")
                # The platform takes the comment and answers 4 s later: time to cut the store.
                await http.post(f"{sim}/_sim/faults", json={"delay_next": 1, "delay_seconds": 4})
                sent = await producer.send_and_wait(
                    REPLIES_REQUESTED.name,
                    request.model_dump_json().encode(),
                    key=case_id.encode(),
                )
                for _ in range(600):
                    if await on_post(http, sim, post_id):
                        break
                    await asyncio.sleep(0.05)
                link.cut()
                [posted] = await on_post(http, sim, post_id)
                await other_replies(http, sim, token, OTHER_REPLIES)
                # The answer came (4 s), recording it failed (2 s to find no store): kill it.
                await asyncio.sleep(10)
                notifier = fleet.members["notifier"].process
                os.killpg(notifier.pid, signal.SIGKILL)
                notifier.wait()
                link.mend()
                claim = await mongo[database]["outbox"].find_one({"_id": key})
                assert claim is not None and claim["state"] == "sending"
                assert await mongo[database]["results"].find_one({"_id": key}) is None

                # The request's dead letter, as the notifier wrote it before issue 18; replayed.
                letter = DeadLetter(
                    occurred_at=datetime.now(UTC),
                    producer="notifier",
                    origin_topic=REPLIES_REQUESTED.name,
                    origin_partition=sent.partition,
                    origin_offset=sent.offset,
                    origin_key=case_id,
                    consumer="notifier",
                    error_type="AutoReconnect",
                    error="the outbox could not record the reply",
                    payload=request.model_dump_json(),
                )
                await producer.send_and_wait(
                    f"{REPLIES_REQUESTED.name}.dlq", letter.model_dump_json().encode()
                )
                letter_id = f"{REPLIES_REQUESTED.name}:{sent.partition}:{sent.offset}"
                capsys.readouterr()
                code = await asyncio.to_thread(main, ["ops", "dlq", "replay", letter_id, "--json"])
                [replayed] = json.loads(capsys.readouterr().out)
                assert code == 0 and replayed["outcome"] == "replayed", replayed

                with processes.running(
                    env, log_dir=logs, services=("notifier",), simulator=False, ports=ports
                ) as again:
                    await watcher.wait_for(
                        lambda w: bool(w.of(REPLIES_SENT.name, lambda r: r.case_id == case_id)),
                        timeout=90,
                        what=f"the result of {key}",
                    )
                    await asyncio.sleep(3)  # the second delivery (request or replay) too
                    results = watcher.of(REPLIES_SENT.name, lambda r: r.case_id == case_id)
                    assert {(r.status, r.platform_message_id) for r in results} == {
                        ("sent", posted["id"])
                    }, [(r.status, r.platform_message_id, r.error) for r in results]
                    # Exactly one reply for the purpose on the platform.
                    assert [p["id"] for p in await on_post(http, sim, post_id)] == [posted["id"]]
                    metrics = (await http.get(f"{again.url('notifier')}/metrics")).text
                    assert 'fengqiao_notifier_reconciled_total{outcome="found"}' in metrics
            outcome = await mongo[database]["results"].find_one({"_id": key})
            assert outcome is not None and outcome["state"] == "sent"
    finally:
        await producer.stop()
        link.close()
        await mongo.drop_database(database)
        await mongo.close()
