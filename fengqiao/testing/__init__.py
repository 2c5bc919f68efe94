"""Test support: where the real Kafka and MongoDB for integration and end-to-end tests come from.

In order: the settings' external cluster (`FENGQIAO_EXTERNAL=1` with `FENGQIAO_KAFKA_BOOTSTRAP`
and `FENGQIAO_MONGO_URI`); testcontainers, if a Docker daemon answers; the native local stack
(`fengqiao stack up`), left running if it was running before.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from fengqiao import stack
from fengqiao.runtime.settings import StackSettings

log = logging.getLogger("fengqiao.testing")


@dataclass(frozen=True)
class StackEndpoints:
    kafka_bootstrap: str
    mongo_uri: str
    source: str  # external | testcontainers | native

    def settings(self) -> StackSettings:
        return StackSettings(
            kafka_bootstrap=self.kafka_bootstrap, mongo_uri=self.mongo_uri, external=True
        )

    def env(self) -> dict[str, str]:
        """Environment that points a service process at this stack."""
        return {
            "FENGQIAO_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "FENGQIAO_MONGO_URI": self.mongo_uri,
            "FENGQIAO_EXTERNAL": "1",
        }


def docker_available() -> bool:
    """True when a Docker daemon answers `/_ping` (testcontainers can run).

    Asked over a plain socket rather than through the docker package, whose failed ping leaves a
    socket to the garbage collector (a ResourceWarning, an error under `-W error`).
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    address: Any
    if host.startswith("unix://"):
        family, address = socket.AF_UNIX, host.removeprefix("unix://")
    elif host.startswith("tcp://"):
        name, _, port = host.removeprefix("tcp://").partition(":")
        family, address = socket.AF_INET, (name, int(port or 2375))
    else:
        return False
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status_line.startswith(b"HTTP/1.") and b" 200" in status_line


@contextmanager
def _containers() -> Iterator[StackEndpoints]:
    from testcontainers.community.mongodb import MongoDbContainer

    from fengqiao.testing.containers import ApacheKafkaContainer

    with (
        ApacheKafkaContainer() as kafka,
        MongoDbContainer("mongo:7") as mongo,
    ):
        yield StackEndpoints(
            kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers"
        )


@contextmanager
def real_stack(settings: StackSettings | None = None) -> Iterator[StackEndpoints]:
    """A real Kafka and MongoDB for the duration of the block."""
    settings = settings or StackSettings()
    if settings.external:
        yield StackEndpoints(settings.kafka_bootstrap, settings.mongo_uri, "external")
        return
    if docker_available():
        with _containers() as endpoints:
            yield endpoints
        return
    was_running = all(c.state == "running" for c in stack.status(settings))
    stack.up(settings, progress=log.info)
    try:
        yield StackEndpoints(settings.kafka_bootstrap, settings.mongo_uri, "native")
    finally:
        if not was_running:
            stack.down(settings, progress=log.info)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run a service app's lifespan (topics, store, broker and consumers) around the block,
    in this process."""
    async with app.router.lifespan_context(app):
        yield app
