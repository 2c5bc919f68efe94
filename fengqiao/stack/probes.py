"""Is Kafka / MongoDB answering? Asynchronous probes, and a bridge to call them synchronously."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiokafka.admin import AIOKafkaAdminClient
from faststream.security import BaseSecurity
from pymongo import AsyncMongoClient

from fengqiao.runtime.kafka_security import kafka_options
from fengqiao.stack.addresses import format_hostport

T = TypeVar("T")

# An error message can be a page long (pymongo lists every server); a status line cannot.
_MAX_REASON = 160


def describe(exc: BaseException) -> str:
    """One short line about `exc`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def _mongo_hosts(uri: str) -> list[tuple[str, int]]:
    # Only plain mongodb:// names its hosts; mongodb+srv:// asks DNS, so no pre-check there.
    if not uri.startswith("mongodb://"):
        return []
    netloc = uri.removeprefix("mongodb://").split("/", 1)[0].rsplit("@", 1)[-1]
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        with contextlib.suppress(ValueError):
            parts = urlsplit("//" + item)
            if parts.hostname:
                hosts.append((parts.hostname, parts.port or 27017))
    return hosts


def _bootstrap_hosts(bootstrap: str) -> list[tuple[str, int]]:
    hosts: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        with contextlib.suppress(ValueError):
            parts = urlsplit("//" + item.strip().removeprefix("PLAINTEXT://"))
            if parts.hostname and parts.port:
                hosts.append((parts.hostname, parts.port))
    return hosts


async def _tcp_open(hosts: list[tuple[str, int]], limit: float) -> str | None:
    """None when one of `hosts` accepts a TCP connection within `limit` seconds, else why not."""
    reason = "no host:port to connect to"
    for host, port in hosts:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
        except TimeoutError:
            reason = f"{format_hostport(host, port)}: no answer within {limit:.0f} s"
            continue
        except OSError as exc:
            reason = describe(exc)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None
    return reason


async def kafka_probe(
    bootstrap: str, limit: float, security: BaseSecurity | None = None
) -> str | None:
    """None when the Kafka at `bootstrap` lists its topics within `limit` seconds, else why not."""
    try:
        async with asyncio.timeout(limit):
            # A plain connect first: while the broker is down, aiokafka would log an ERROR for
            # every attempt, and a starting stack makes many attempts.
            refused = await _tcp_open(_bootstrap_hosts(bootstrap), limit)
            if refused is not None:
                return refused
            admin = AIOKafkaAdminClient(
                **kafka_options(bootstrap, security),
                request_timeout_ms=max(1000, int(limit * 1000)),
            )
            try:
                await admin.start()
                await admin.list_topics()
            finally:
                await admin.close()
    except TimeoutError:
        return f"no answer within {limit:.0f} s"
    except Exception as exc:  # any failure means "not ready yet"; the reason is reported
        return describe(exc)
    return None


async def mongo_probe(uri: str, limit: float) -> str | None:
    """None when the MongoDB at `uri` answers `ping` within `limit` seconds, else why not."""
    ms = max(500, int(limit * 1000))
    hosts = _mongo_hosts(uri)
    # Against a closed port pymongo keeps retrying until its timeout; a refused connect is
    # answer enough, and keeps `status` of a stopped stack instant.
    refused = await _tcp_open(hosts, limit) if hosts else None
    if refused is not None:
        return refused
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
        )
    except Exception as exc:  # a malformed URI
        return describe(exc)
    try:
        await client.admin.command("ping")
    except Exception as exc:  # any failure means "not ready yet"; the reason is reported
        return describe(exc)
    finally:
        await client.close()
    return None


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine that `factory` makes to completion and return its result.

    From synchronous code this is asyncio.run. Called inside a running event loop (an async
    test fixture, say), it runs on a private loop in a worker thread instead, because loops do
    not nest; the caller's loop is blocked meanwhile, which setup code can afford.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fengqiao-stack") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
