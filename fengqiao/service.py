"""The anatomy every service shares: a Kafka broker, an optional MongoDB client, an HTTP app
with health and metrics, and an AsyncAPI description of its topics.

A service's `app.py` builds a `Runtime`, registers its handlers on `runtime.broker`, and returns
`http_app(runtime, ...)`. Nothing here does I/O until the HTTP app's lifespan starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from fengqiao import __version__
from fengqiao.http import ops_router
from fengqiao.messaging import ensure_topics, make_broker
from fengqiao.settings import StackSettings

log = logging.getLogger("fengqiao.service")

Hook = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    """The clients a service's handlers and endpoints use; built once in the composition root."""

    name: str
    stack: StackSettings
    broker: KafkaBroker
    registry: CollectorRegistry
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    on_start: list[Hook] = field(default_factory=list)  # before the broker starts
    on_started: list[Hook] = field(default_factory=list)  # after (background work that publishes)
    on_stop: list[Hook] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, stack: StackSettings, *, with_mongo: bool) -> Runtime:
        registry = CollectorRegistry()
        mongo: AsyncMongoClient[dict[str, Any]] | None = None
        if with_mongo:
            # The client connects lazily: building it does no I/O.
            mongo = AsyncMongoClient(stack.mongo_uri, tz_aware=True, connect=False, appname=name)
        return cls(
            name=name,
            stack=stack,
            broker=make_broker(stack.kafka_bootstrap, service=name, registry=registry),
            registry=registry,
            mongo=mongo,
        )


def asyncapi_app(runtime: Runtime, description: str) -> FastStream:
    """A FastStream application whose `schema` documents the service's topics."""
    return FastStream(
        runtime.broker,
        specification=AsyncAPI(
            runtime.broker,
            title=f"fengqiao {runtime.name}",
            version=__version__,
            description=description,
        ),
    )


def http_app(
    runtime: Runtime,
    *,
    description: str,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The service's HTTP app; its lifespan creates topics, starts the broker and hooks."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        created = await ensure_topics(
            runtime.stack.kafka_bootstrap, replication=runtime.stack.topic_replication
        )
        if created:
            log.info("%s created topics: %s", runtime.name, ", ".join(created))
        if runtime.mongo is not None:
            await runtime.mongo.admin.command("ping")
        for hook in runtime.on_start:
            await hook()
        await runtime.broker.start()
        for hook in runtime.on_started:
            await hook()
        log.info("%s started", runtime.name)
        try:
            yield
        finally:
            await runtime.broker.stop()
            for hook in runtime.on_stop:
                await hook()
            if runtime.mongo is not None:
                await runtime.mongo.close()
            log.info("%s stopped", runtime.name)

    app = FastAPI(
        title=f"fengqiao {runtime.name}",
        version=__version__,
        description=description,
        lifespan=lifespan,
    )
    checks: dict[str, Callable[[], Awaitable[object]]] = {
        "kafka": lambda: runtime.broker.ping(timeout=2.0)
    }
    if runtime.mongo is not None:
        mongo = runtime.mongo
        checks["mongo"] = lambda: mongo.admin.command("ping")
    app.include_router(ops_router(service=runtime.name, registry=runtime.registry, checks=checks))
    for router in routers:
        app.include_router(router)
    fs = asyncapi_app(runtime, description)

    @app.get("/asyncapi.json", tags=["ops"], summary="AsyncAPI description of the topics")
    async def asyncapi_json() -> dict[str, Any]:
        return fs.schema.to_specification().to_jsonable()  # type: ignore[no-any-return]

    return app
