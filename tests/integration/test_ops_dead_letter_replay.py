"""The operator's dead-letter loop, end to end: the tracker loses its store while a case comes
in, so its messages are dead-lettered; `fengqiao ops dlq list` finds them, the store comes back,
`fengqiao ops dlq replay` publishes each once (a second replay is a no-op), and the case
completes. On the way, `ops lag`, `ops cases` and `ops metrics` see what happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fengqiao import processes
from fengqiao.cli import main
from fengqiao.contracts import APPEALS, COORDINATION_REQUESTS, DISPATCH_ORDERS
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
        "FENGQIAO_INTAKE_GENERIC_SECRETS": json.dumps({SOURCE: secret}),
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


def test_dead_letters_are_found_replayed_once_and_the_case_completes(
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

    # The router dispatched the case; every message the tracker read about it is a dead letter.
    def mine() -> list[dict[str, Any]]:
        code, listed = ops(capsys, "dlq", "list")
        assert code == 0
        return [e for e in listed if e["origin"]["key"] == case_id]

    deadline = time.monotonic() + 90
    while True:
        orders = services.watcher.of(DISPATCH_ORDERS.name, lambda o: o.case_id == case_id)
        # A wage arrears case also asks the labour bureau (横协调) once its order is final.
        asked = services.watcher.of(COORDINATION_REQUESTS.name, lambda r: r.case_id == case_id)
        letters = mine()
        failed = Counter(e["origin"]["topic"] for e in letters)
        if (
            failed[APPEALS.name]
            and orders
            and orders[-1].final
            and failed[DISPATCH_ORDERS.name] == len(orders)
            and asked
            and failed[COORDINATION_REQUESTS.name] == len(asked)
        ):
            break
        assert time.monotonic() < deadline, (
            f"orders seen: {[(o.hop, o.final) for o in orders]}; dead letters so far: "
            f"{[(e['id'], e['error_type']) for e in letters]}; logs in {services.log_dir}"
        )
        time.sleep(1)
    assert all(e["consumers"] == ["tracker"] and e["status"] == "new" for e in letters)
    # pymongo's errors (AutoReconnect, ServerSelectionTimeoutError) name the unreachable store.
    assert all(f"127.0.0.1:{link.port}" in e["error"] for e in letters), letters

    # What an operator reads: the origin, the error, the payload with the phone number masked.
    [appeal_letter] = [e for e in letters if e["origin"]["topic"] == APPEALS.name]
    code, shown = ops(capsys, "dlq", "show", appeal_letter["id"])
    assert code == 0 and shown["id"] == appeal_letter["id"]
    assert PHONE not in shown["payload"] and "139****5678" in shown["payload"]
    assert json.loads(shown["payload"])["case_id"] == case_id

    code, lag = ops(capsys, "lag", "--threshold", "1000000")
    assert code == 0
    groups = {g["group"] for g in lag["groups"]}
    assert {"tracker.appeals", "tracker.dispatch.orders", "router.appeals"} <= groups

    code, metrics = ops(capsys, "metrics", *(f"--target={n}={u}" for n, u in services.urls.items()))
    tracker = next(s for s in metrics if s["service"] == "tracker")
    assert tracker["topics"][APPEALS.name]["dead_letters"] >= 1
    assert tracker["ready"] == "not ready" and "error" in tracker["checks"]["mongo"]

    # The cause is fixed; each dead letter is replayed once, a second replay does nothing.
    link.mend()
    for letter in letters:
        code, [outcome] = ops(capsys, "dlq", "replay", letter["id"])
        assert code == 0 and outcome["outcome"] == "replayed", outcome
        assert outcome["topic"] == letter["origin"]["topic"]
    code, [again] = ops(capsys, "dlq", "replay", letters[0]["id"])
    assert code == 0 and again["outcome"] == "already replayed"

    case = services.wait_for_case(
        appeal, where=lambda c: c["acknowledged"] and any(h["final"] for h in c["hops"])
    )
    assert case["state"] == "dispatched" and case["chain"] == ["xj", "652700", "652701"]
    assert [r["kind"] for r in _replies(services, appeal.post_id)] == ["comment"]

    # Replayed ones leave the default list and show as replayed with --all; purge is refused
    # for nothing, and a purged letter cannot be replayed.
    assert mine() == []
    code, everything = ops(capsys, "dlq", "list", "--all")
    statuses = {e["id"]: e["status"] for e in everything}
    assert all(statuses[e["id"]] == "replayed" for e in letters)
    code, purged = ops(capsys, "dlq", "purge", letters[0]["id"])
    assert code == 0 and purged["outcome"] == "purged"
    assert main(["ops", "dlq", "replay", letters[0]["id"], "--json"]) == 1
    assert "was purged" in capsys.readouterr().err

    code, timelines = ops(capsys, "cases", case_id, "--by", "id", "--days", "1")
    [timeline] = timelines
    topics = [row["topic"] for row in timeline["timeline"]]
    assert topics[0] == APPEALS.name and DISPATCH_ORDERS.name in topics
    assert "case.events" in topics and "replies.sent" in topics
    assert all(PHONE not in row["summary"] for row in timeline["timeline"])


def _replies(services: FengqiaoServices, post_id: str) -> list[dict[str, Any]]:
    received = httpx.get(services.url("simulator") + "/_sim/received", timeout=5).json()
    return [r for r in received if r["target"].get("id") == post_id]
