"""A notifier killed between the platform taking a reply and the outbox recording it posts it
no second time: the restarted process finds the claim still `sending`, reads what the account
posted, and records the reply as sent with the platform's id.

The notifier and the platform simulator run as processes. The simulator is told to store the
next comment and answer only 8 s later; as soon as the comment is stored, the notifier gets
SIGKILL (its HTTP timeout is 3 s: it is killed mid-request, before it can record anything).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from fengqiao import processes
from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
)
from fengqiao.testing import StackEndpoints
from fengqiao.testing.groups import start_group_at_end
from fengqiao.watch import TopicWatcher


def reply_request(case_id: str, post_id: str) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=datetime.now(UTC),
        producer="test",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account="@新疆检察", post_id=post_id),
        template_id="acknowledgment",
        variables={"account": "@新疆检察", "case_ref": case_id[-8:]},
    )


async def received(http: httpx.AsyncClient, sim: str, post_id: str) -> list[dict[str, Any]]:
    posts = (await http.get(f"{sim}/_sim/received")).json()
    return [p for p in posts if p["target"].get("id") == post_id]


async def test_a_notifier_killed_between_send_and_record_posts_no_second_time(
    stack_endpoints: StackEndpoints, run_id: str, tmp_path: Path
) -> None:
    group, database = f"itest-notifier-{run_id}", f"itest_notifier_{run_id}"
    await start_group_at_end(
        stack_endpoints.kafka_bootstrap, f"{group}.{REPLIES_REQUESTED.name}", REPLIES_REQUESTED.name
    )
    ports = processes.free_ports(("notifier", "simulator"))
    env = {
        **stack_endpoints.env(),
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{ports['simulator']}",
        "FENGQIAO_NOTIFIER_DEFAULT_ACCESS_TOKEN": "crash-token",
        "FENGQIAO_NOTIFIER_DATABASE": database,
        "FENGQIAO_NOTIFIER_GROUP_ID": group,
        "FENGQIAO_NOTIFIER_HTTP_TIMEOUT_SECONDS": "3",
    }
    case_id = f"c-{uuid.uuid4().hex[:16]}"
    post_id = str(uuid.uuid4().int % 10**16)
    request = reply_request(case_id, post_id)
    key = request.idempotency_key
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack_endpoints.mongo_uri)
    logs = tmp_path / "logs"
    try:
        async with (
            TopicWatcher(stack_endpoints.kafka_bootstrap, [REPLIES_SENT.name]) as watcher,
            httpx.AsyncClient(timeout=5) as http,
        ):
            with processes.running(env, log_dir=logs, services=("notifier",), ports=ports) as fleet:
                sim = fleet.url("simulator")
                await http.post(f"{sim}/_sim/faults", json={"delay_next": 1, "delay_seconds": 8})
                async with KafkaBroker(stack_endpoints.kafka_bootstrap) as broker:
                    await broker.publish(request, REPLIES_REQUESTED.name, key=case_id.encode())
                for _ in range(200):
                    if await received(http, sim, post_id):
                        break
                    await asyncio.sleep(0.05)
                notifier = fleet.members["notifier"].process
                os.killpg(notifier.pid, signal.SIGKILL)  # mid-request: nothing recorded
                notifier.wait()
                [posted] = await received(http, sim, post_id)
                record = await mongo[database]["outbox"].find_one({"_id": key})
                assert record is not None and record["state"] == "sending"
                assert watcher.of(REPLIES_SENT.name, lambda r: r.case_id == case_id) == []

                # The same notifier again: Kafka delivers the request again.
                with processes.running(
                    env, log_dir=logs, services=("notifier",), simulator=False, ports=ports
                ):
                    await watcher.wait_for(
                        lambda w: bool(w.of(REPLIES_SENT.name, lambda r: r.case_id == case_id)),
                        timeout=60,
                        what=f"the result of {key}",
                    )
                    [result] = watcher.of(REPLIES_SENT.name, lambda r: r.case_id == case_id)
                    assert (result.status, result.platform_message_id) == ("sent", posted["id"])
                    assert result.text == posted["text"]
                    # Exactly one comment on the citizen's post, whatever happened.
                    assert len(await received(http, sim, post_id)) == 1
                    by_me = await http.get(
                        f"{sim}/2/comments/by_me.json", params={"access_token": "crash-token"}
                    )
                    assert [c["idstr"] for c in by_me.json()["comments"]] == [posted["id"]]
                    metrics = (await http.get(f"{fleet.url('notifier')}/metrics")).text
                    assert 'fengqiao_notifier_reconciled_total{outcome="found"} 1.0' in metrics
            outcome = await mongo[database]["results"].find_one({"_id": key})
            assert outcome is not None and outcome["state"] == "sent"
    finally:
        await mongo.drop_database(database)
        await mongo.close()
