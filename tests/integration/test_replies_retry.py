"""A reply that failed for a reason since fixed is sent again by an operator, once (issue 20,
deliver 3).

The notifier runs as a process with a token for another account only (it is ready: it knows of
no account without one). A reply for @新疆检察 fails as not sendable; its /readyz then says not
ready, naming the account. The notifier is stopped and started again with the token set; the
operator lists the failed replies (`fengqiao ops replies list`) and retries it (`fengqiao ops
replies retry <reply>`): posted exactly once on the platform; a second retry is refused, and
nothing more is posted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from fengqiao import processes
from fengqiao.cli import main
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

ACCOUNT = "@新疆检察"


def acknowledgment(case_id: str, post_id: str) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=datetime.now(UTC),
        producer="tracker",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account=ACCOUNT, user_id="1", post_id=post_id),
        template_id="acknowledgment",
        variables={"account": ACCOUNT, "case_ref": case_id[-8:]},
    )


async def on_post(http: httpx.AsyncClient, sim: str, post_id: str) -> list[dict[str, Any]]:
    posts = (await http.get(f"{sim}/_sim/received")).json()
    return [p for p in posts if p["target"].get("id") == post_id]


def ops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """`fengqiao ops replies …  --json`: its exit code and answer (None when refused)."""
    capsys.readouterr()
    code = main(["ops", "replies", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


async def test_a_reply_without_a_token_is_sent_once_when_retried_after_the_token_is_set(
    stack_endpoints: StackEndpoints, run_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group, database = f"itest-retry-{run_id}", f"itest_retry_{run_id}"
    await start_group_at_end(
        stack_endpoints.kafka_bootstrap, f"{group}.{REPLIES_REQUESTED.name}", REPLIES_REQUESTED.name
    )
    ports = processes.free_ports(("notifier", "simulator"))
    env = {
        **stack_endpoints.env(),
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{ports['simulator']}",
        "FENGQIAO_NOTIFIER_ACCESS_TOKENS": json.dumps({"@其他账号": "other-token"}),
        "FENGQIAO_NOTIFIER_RATE_LIMITS": "false",
        "FENGQIAO_NOTIFIER_DATABASE": database,
        "FENGQIAO_NOTIFIER_GROUP_ID": group,
    }
    fixed = {**env, "FENGQIAO_NOTIFIER_ACCESS_TOKENS": json.dumps({ACCOUNT: f"t-{run_id}"})}
    case_id = f"c-{uuid.uuid4().hex[:16]}"
    post_id = str(uuid.uuid4().int % 10**16)
    request = acknowledgment(case_id, post_id)
    key = request.idempotency_key
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack_endpoints.mongo_uri)
    logs = tmp_path / "logs"
    producer = AIOKafkaProducer(bootstrap_servers=stack_endpoints.kafka_bootstrap, acks="all")
    await producer.start()

    def results() -> list[tuple[str, str | None]]:
        found = watcher.of(REPLIES_SENT.name, lambda r: r.case_id == case_id)
        return [(r.status, r.error) for r in found]

    try:
        async with (
            TopicWatcher(stack_endpoints.kafka_bootstrap, [REPLIES_SENT.name]) as watcher,
            httpx.AsyncClient(timeout=10) as http,
        ):
            with processes.running(env, log_dir=logs, services=("notifier",), ports=ports) as fleet:
                sim, notifier = fleet.url("simulator"), fleet.url("notifier")
                await producer.send_and_wait(
                    REPLIES_REQUESTED.name, request.model_dump_json().encode(), key=ACCOUNT.encode()
                )
                await watcher.wait_for(
                    lambda w: bool(results()), timeout=60, what=f"the result of {key}"
                )
                assert results() == [("failed", f"not sendable: no access token for {ACCOUNT}")]
                ready = await http.get(f"{notifier}/readyz")
                assert ready.status_code == 503
                assert ACCOUNT in ready.json()["checks"]["access_tokens"]
                code, listed = await asyncio.to_thread(
                    ops, capsys, "list", "--reason", "unsendable"
                )
                [failed] = [r for r in listed if r["reply"] == key]
                assert (failed["reason"], failed["status"]) == ("unsendable", "new")

                processes.stop(fleet.members["notifier"])
                with processes.running(
                    fixed, log_dir=logs, services=("notifier",), simulator=False, ports=ports
                ):
                    code, [retried] = await asyncio.to_thread(ops, capsys, "retry", key)
                    assert code == 0 and retried["outcome"] == "replayed", retried
                    await watcher.wait_for(
                        lambda w: ("sent", None) in results(), timeout=60, what=f"{key} sent"
                    )
                    code, answer = await asyncio.to_thread(ops, capsys, "retry", key)
                    assert (code, answer) == (1, None)  # refused: sent at most once
                    await asyncio.sleep(3)
                    assert len(await on_post(http, sim, post_id)) == 1
                    assert results() == [
                        ("failed", f"not sendable: no access token for {ACCOUNT}"),
                        ("sent", None),
                    ]
            outcome = await mongo[database]["results"].find_one({"_id": key})
            assert outcome is not None and outcome["state"] == "sent"
    finally:
        await producer.stop()
        await mongo.drop_database(database)
        await mongo.close()
