"""Outages and dead letters as an operator sees them, end to end. The tracker loses its store while
a case comes in: it waits the outage out (`ops metrics` shows it not ready, and why), nothing is
dead-lettered, and the case completes once the store is back, without any replay. A message that
can never succeed (off contract) is a dead letter: `fengqiao ops dlq list` finds it, `show` masks
its private data, `replay` publishes it once (a second replay is a no-op), and a purged letter
cannot be replayed. On the way, `ops lag` and `ops cases` see what happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from fengqiao import processes
from fengqiao.cli import main
from fengqiao.contracts import APPEALS, COORDINATION_REQUESTS, DISPATCH_ORDERS
from fengqiao.runtime.signing import generic_source_env
from fengqiao.testing import StackEndpoints
from fengqiao.testing.plugin import SOURCE, BackgroundWatcher, FengqiaoServices

PHONE = "13912345678"


class StoreLink:
    """A TCP relay to the store that the test can cut (refusing every connection) and mend."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _cut(self) -> None:
        self._open = False
        for writer in list(self._writers):
            writer.close()

    def cut(self) -> None:
        self._call(self._cut())

    def mend(self) -> None:
        self._open = True

    def close(self) -> None:
        self._call(self._cut())
        self._server.close()
        self._call(self._server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def ops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    """Run `fengqiao ops <args> --json`; its exit code and parsed output."""
    capsys.readouterr()
    code = main(["ops", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.fixture
def fleet(
    stack_endpoints: StackEndpoints, tmp_path: Path, pytestconfig: pytest.Config
) -> Iterator[tuple[FengqiaoServices, StoreLink]]:
    """The services as processes, the tracker reaching its store through a `StoreLink`."""
    mongo = urlsplit(stack_endpoints.mongo_uri)
    link = StoreLink(mongo.hostname or "127.0.0.1", mongo.port or 27017)
    secret = "ops-" + uuid.uuid4().hex
    ports = processes.free_ports()
    env = {
        **stack_endpoints.env(),
        **generic_source_env(SOURCE, secret),
        **processes.simulator_env(ports["simulator"]),
    }
    # A store that stops answering fails a handler within 3 s instead of pymongo's 30.
    tracker_env = {
        **env,
        "FENGQIAO_MONGO_URI": f"mongodb://127.0.0.1:{link.port}/?serverSelectionTimeoutMS=3000",
    }
    watcher = BackgroundWatcher(
        stack_endpoints.kafka_bootstrap,
        [APPEALS.name, DISPATCH_ORDERS.name, COORDINATION_REQUESTS.name],
    )
    logs = tmp_path / "logs"
    others = ("intake", "router", "notifier")
    try:
        with (
            processes.running(env, log_dir=logs, services=others, ports=ports) as rest,
            processes.running(
                tracker_env, log_dir=logs, services=("tracker",), simulator=False, ports=ports
            ) as tracker,
        ):
            urls = {n: m.url for f in (rest, tracker) for n, m in f.members.items()}
            yield (
                FengqiaoServices(stack_endpoints, urls, SOURCE, secret, logs, 90.0, watcher),
                link,
            )
    finally:
        watcher.close()
        link.close()


def test_a_store_outage_is_waited_out_and_a_poison_message_is_found_replayed_once(
    fleet: tuple[FengqiaoServices, StoreLink], capsys: pytest.CaptureFixture[str]
) -> None:
    services, link = fleet
    # Earlier tests may have left messages the tracker has not read yet: let it catch up first
    # (`ops lag` says when), so that only this case's messages meet the broken store.
    deadline = time.monotonic() + 90
    while True:
        code, lag = ops(capsys, "lag")
        behind = {g["group"]: g["total"] for g in lag["groups"] if g["service"] == "tracker"}
        if behind and not any(behind.values()):
            break
        assert time.monotonic() < deadline, f"the tracker does not catch up: {behind}"
        time.sleep(1)
    link.cut()  # the tracker's store is gone
    appeal = services.post_appeal(f"@新疆检察 博乐市工地拖欠工资三个月，求助，电话{PHONE}")
    case_id = services.case_id(appeal, timeout=60)

    def mine() -> list[dict[str, Any]]:
        code, listed = ops(capsys, "dlq", "list")
        assert code == 0
        return [e for e in listed if e["origin"]["key"] == case_id]

    def tracker_checks() -> dict[str, Any]:
        targets = (f"--target={n}={u}" for n, u in services.urls.items())
        _, metrics = ops(capsys, "metrics", *targets)
        return dict(next(s for s in metrics if s["service"] == "tracker"))

    # The router dispatched the case; the tracker waits the outage out, says so in /readyz, and
    # dead-letters nothing (it used to dead-letter every message it read about the case).
    deadline = time.monotonic() + 90
    while True:
        orders = services.watcher.of(DISPATCH_ORDERS.name, lambda o: o.case_id == case_id)
        # A wage arrears case also asks the labour bureau (横协调) once its order is final.
        asked = services.watcher.of(COORDINATION_REQUESTS.name, lambda r: r.case_id == case_id)
        tracker = tracker_checks()
        waiting = tracker["checks"].get("outages", "ok") != "ok"
        if orders and orders[-1].final and asked and waiting:
            break
        assert time.monotonic() < deadline, (
            f"orders seen: {[(o.hop, o.final) for o in orders]}; tracker: {tracker}; "
            f"logs in {services.log_dir}"
        )
        time.sleep(1)
    assert tracker["ready"] == "not ready" and "error" in tracker["checks"]["mongo"]
    assert f"127.0.0.1:{link.port}" in tracker["checks"]["outages"]  # names the store
    time.sleep(5)  # long enough for the tracker's store client to give up (3 s) once more
    assert mine() == []
    code, lag = ops(capsys, "lag", "--threshold", "1000000")
    assert code == 0
    groups = {g["group"]: g["total"] for g in lag["groups"]}
    assert {"tracker.appeals", "tracker.dispatch.orders", "router.appeals"} <= groups.keys()

    # The store comes back: the case completes by itself, nothing to replay.
    link.mend()
    case = services.wait_for_case(
        appeal, where=lambda c: c["acknowledged"] and any(h["final"] for h in c["hops"])
    )
    assert case["state"] == "dispatched" and case["chain"] == ["xj", "652700", "652701"]
    assert [r["kind"] for r in _replies(services, appeal.post_id)] == ["comment"]
    deadline = time.monotonic() + 60
    while tracker_checks()["ready"] != "ready":
        assert time.monotonic() < deadline, tracker_checks()
        time.sleep(1)
    assert mine() == []

    # A message that can never succeed is a dead letter: off contract, it fails the router and
    # the tracker alike.
    [sent] = services.watcher.of(APPEALS.name, lambda a: a.case_id == case_id)
    poison = sent.model_dump(mode="json") | {"is_appeal": "maybe", "text": f"电话{PHONE}"}
    asyncio.run(_publish(services, APPEALS.name, json.dumps(poison).encode(), case_id.encode()))
    deadline = time.monotonic() + 60
    while not (letters := mine()) or sorted(letters[0]["consumers"]) != ["router", "tracker"]:
        assert time.monotonic() < deadline, letters
        time.sleep(1)
    [letter] = letters
    assert letter["status"] == "new" and "is_appeal" in letter["error"]

    # What an operator reads: the origin, the error, the payload with the phone number masked.
    code, shown = ops(capsys, "dlq", "show", letter["id"])
    assert code == 0 and shown["id"] == letter["id"]
    assert PHONE not in shown["payload"] and "139****5678" in shown["payload"]
    assert json.loads(shown["payload"])["case_id"] == case_id

    # Replayed once (it fails again, as poison does: a dead letter of its own); a second replay
    # does nothing.
    code, [outcome] = ops(capsys, "dlq", "replay", letter["id"])
    assert code == 0 and outcome["outcome"] == "replayed", outcome
    assert outcome["topic"] == APPEALS.name
    code, [again] = ops(capsys, "dlq", "replay", letter["id"])
    assert code == 0 and again["outcome"] == "already replayed"
    deadline = time.monotonic() + 60
    while not any(e["origin"]["offset"] == outcome["offset"] for e in mine()):
        assert time.monotonic() < deadline, mine()
        time.sleep(1)

    # The replayed one leaves the default list and shows as replayed with --all; a purged
    # letter cannot be replayed.
    assert letter["id"] not in {e["id"] for e in mine()}
    code, everything = ops(capsys, "dlq", "list", "--all")
    assert {e["id"]: e["status"] for e in everything}[letter["id"]] == "replayed"
    [again_letter] = mine()
    code, purged = ops(capsys, "dlq", "purge", again_letter["id"])
    assert code == 0 and purged["outcome"] == "purged"
    assert main(["ops", "dlq", "replay", again_letter["id"], "--json"]) == 1
    assert "was purged" in capsys.readouterr().err

    code, timelines = ops(capsys, "cases", case_id, "--by", "id", "--days", "1")
    [timeline] = timelines
    topics = [row["topic"] for row in timeline["timeline"]]
    assert topics[0] == APPEALS.name and DISPATCH_ORDERS.name in topics
    assert "case.events" in topics and "replies.sent" in topics
    assert all(PHONE not in row["summary"] for row in timeline["timeline"])


async def _publish(services: FengqiaoServices, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=services.stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def _replies(services: FengqiaoServices, post_id: str) -> list[dict[str, Any]]:
    received = httpx.get(services.url("simulator") + "/_sim/received", timeout=5).json()
    return [r for r in received if r["target"].get("id") == post_id]
