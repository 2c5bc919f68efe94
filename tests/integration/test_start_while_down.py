"""A service started while Kafka cannot be reached waits for it, logging each wait, and starts
once it can; asked to stop meanwhile, it stops. (It used to exit at once, code 3, and stay down
without a supervisor.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fengqiao import processes
from fengqiao.testing import StackEndpoints


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def kafka_behind(port: int, bootstrap: str) -> AsyncIterator[None]:
    """From now on, port `port` leads to Kafka's bootstrap address (clients then connect to
    the brokers it advertises)."""
    host, kafka_port = bootstrap.rsplit(":", 1)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(kafka_port))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


def start_intake(
    stack: StackEndpoints, kafka_port: int, http_port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **stack.env(),
        "FENGQIAO_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "FENGQIAO_INTAKE_CONSUMERS": "false",  # a webhook replica: no consumer group to disturb
        "FENGQIAO_INTAKE_HTTP_PORT": str(http_port),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fengqiao.cli", "run", "intake"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.25)
    return False


async def says_it_waits(log: Path) -> bool:
    return "Kafka is not reachable" in await asyncio.to_thread(log.read_text, errors="replace")


@dataclass
class Waiting:
    intake: subprocess.Popen[bytes]
    kafka_port: int
    http_port: int
    log: Path


@pytest.fixture
async def waiting(stack_endpoints: StackEndpoints, tmp_path: Path) -> AsyncIterator[Waiting]:
    """Intake started while its Kafka port leads nowhere, once it says it waits."""
    ports = processes.free_ports(("kafka", "http"))
    log = tmp_path / "intake.log"
    intake = start_intake(stack_endpoints, ports["kafka"], ports["http"], log)
    try:
        assert await wait_for(lambda: says_it_waits(log), 30), log.read_text()[-2000:]
        yield Waiting(intake, ports["kafka"], ports["http"], log)
    finally:
        if intake.poll() is None:
            intake.kill()
            intake.wait()


async def test_a_service_started_while_kafka_is_down_waits_and_then_starts(
    waiting: Waiting, stack_endpoints: StackEndpoints
) -> None:
    intake, log = waiting.intake, waiting.log
    await asyncio.sleep(1)
    assert intake.poll() is None, log.read_text()[-2000:]  # still there, waiting

    async with kafka_behind(waiting.kafka_port, stack_endpoints.kafka_bootstrap):

        async def ready() -> bool:
            async with httpx.AsyncClient() as client:
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"http://127.0.0.1:{waiting.http_port}/readyz")
                    return answer.status_code == 200
            return False

        assert await wait_for(ready, 60), log.read_text()[-3000:]
        intake.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully
        assert intake.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()[-2000:]
        assert "intake stopped" in log.read_text()


async def test_a_service_waiting_for_kafka_stops_when_told(waiting: Waiting) -> None:
    asked = time.monotonic()
    waiting.intake.send_signal(signal.SIGTERM)
    waiting.intake.wait(timeout=10)
    assert time.monotonic() - asked < 10
