"""The anatomy every service shares: a Kafka broker, an optional MongoDB client, an HTTP app
with health and metrics, and an AsyncAPI description of its topics.

A service's `app.py` builds a `Runtime`, registers its handlers on `runtime.broker`, and returns
`http_app(runtime, ...)`. Nothing here does I/O until the HTTP app's lifespan starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from faststream.specification.asyncapi.site import get_asyncapi_html
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from fengqiao import __version__
from fengqiao.contracts import Topic
from fengqiao.runtime import tracing
from fengqiao.runtime.body_limit import BodyLimit, BodyTooLarge, body_too_large
from fengqiao.runtime.errors import declare_refusals
from fengqiao.runtime.http import ops_router
from fengqiao.runtime.logs import RequestContext
from fengqiao.runtime.messaging import (
    DirectProducer,
    DirectPublisher,
    Outages,
    SubscriberMetrics,
    Unavailable,
    consumers_assigned,
    drain,
    ensure_topics,
    is_transient,
    make_broker,
)
from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.store.metrics import store_client

log = logging.getLogger("fengqiao.runtime.service")

# Python's cyclic garbage collector, tuned for a service that handles a stream of messages and
# keeps caches of recent cases: most of what a change allocates is freed by its count before a
# young collection comes, and full collections (which walk every cached case) come rarely. The
# price: garbage in cycles waits for up to that many objects (some tens of MB), and a collection
# pauses the service about 0.1 s. Measurements: docs/performance.md.
GC_THRESHOLDS = (200_000, 20, 20)

Hook = Callable[[], Awaitable[None]]
T = TypeVar("T")

# What a service meets at start while Kafka or the store is not up yet (or not reachable): it
# waits for them rather than exiting, since nothing would start it again without a supervisor.
UNREACHABLE = (KafkaError, ConnectionFailure, OSError, asyncio.TimeoutError)
FIRST_WAIT, LONGEST_WAIT = 0.5, 15.0


@dataclass
class Runtime:
    """The clients a service's handlers and endpoints use; built once in the composition root."""

    name: str
    stack: StackSettings
    broker: KafkaBroker
    registry: CollectorRegistry
    metrics: SubscriberMetrics
    # The store or Kafka outage the service's retry loops are waiting out (`/readyz` says so).
    outages: Outages
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    on_start: list[Hook] = field(default_factory=list)  # before the broker starts
    on_started: list[Hook] = field(default_factory=list)  # after (background work that publishes)
    on_stop: list[Hook] = field(default_factory=list)
    # A service's own readiness checks, after the shared ones (`fengqiao.runtime.http`).
    checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, stack: StackSettings, *, with_mongo: bool) -> Runtime:
        registry = CollectorRegistry()
        mongo: AsyncMongoClient[dict[str, Any]] | None = None
        if with_mongo:
            # The client connects lazily; its commands are counted (`store.metrics`).
            counted = registry if stack.store_metrics else None
            mongo = store_client(stack.mongo_uri, service=name, registry=counted)
        metrics = SubscriberMetrics(name, registry)
        outages = Outages(name, registry)
        return cls(
            name=name,
            stack=stack,
            broker=make_broker(
                stack.kafka_bootstrap,
                service=name,
                registry=registry,
                metrics=metrics,
                outages=outages,
                security=stack.kafka_security(),
            ),
            registry=registry,
            metrics=metrics,
            outages=outages,
            mongo=mongo,
        )

    def direct_producer(self, topics: Sequence[Topic]) -> DirectProducer:
        """A `DirectProducer` of `topics` on this service's Kafka (with its security), measured
        on its registry."""
        return DirectProducer(
            self.stack.kafka_bootstrap,
            topics,
            service=self.name,
            registry=self.registry,
            security=self.stack.kafka_security(),
        )

    def direct_publisher(self, topic: Topic) -> DirectPublisher:
        """A `DirectPublisher` of `topic`, as `direct_producer`."""
        return DirectPublisher(
            self.stack.kafka_bootstrap,
            topic,
            service=self.name,
            registry=self.registry,
            security=self.stack.kafka_security(),
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


class RouteGuard(Protocol):
    """Who may call which route (`fengqiao.auth.guard.Guard`): a dependency every route gets,
    and a check that the policy names every route of the app."""

    dependency: Any

    def audit(self, app: FastAPI) -> None: ...

    def refusals(self, method: str, path: str) -> Iterable[int]:
        """What the guard may answer on a route before its endpoint runs (401, 403)."""
        ...


def http_app(
    runtime: Runtime,
    *,
    description: str,
    routers: Sequence[APIRouter] = (),
    body_limits: Mapping[str, int] = {},
    guard: RouteGuard | None = None,
) -> FastAPI:
    """The service's HTTP app; its lifespan creates topics, starts the broker and hooks.

    Every request body is limited (`BodyLimit`: 64 KiB, or `body_limits`' bytes for the paths
    under each prefix) before any route reads or authenticates it. With a `guard`, every route
    is checked by it first, and an app with a route its policy does not name is refused. Its
    OpenAPI declares the refusals every route shares (`fengqiao.runtime.errors`)."""
    app = FastAPI(
        title=f"fengqiao {runtime.name}",
        version=__version__,
        description=description,
        lifespan=_lifespan(runtime),
    )
    app.add_middleware(BodyLimit, limits=body_limits)
    app.add_middleware(RequestContext)  # outermost: lines logged carry method, path, request id
    app.add_exception_handler(BodyTooLarge, body_too_large)
    tracing.instrument_app(app)  # with tracing on: a server span per request (outermost)
    guarded: dict[str, Any] = {}
    if guard is not None:
        guarded = {"dependencies": [guard.dependency]}
    app.include_router(
        ops_router(
            service=runtime.name,
            registry=runtime.registry,
            checks=_checks(runtime),
            before_scrape=[lambda: runtime.metrics.refresh_lag(runtime.broker)],
        ),
        dependencies=guarded.get("dependencies"),
    )
    for router in routers:
        app.include_router(router, **guarded)
    app.include_router(_asyncapi_router(runtime, description), **guarded)
    if guard is not None:
        guard.audit(app)
    declare_refusals(app, guard.refusals if guard is not None else lambda method, path: ())
    # Not `Exception`: Starlette hands that one to its outermost middleware, which raises on.
    for kind in (PyMongoError, KafkaError, OSError, Unavailable):
        app.add_exception_handler(kind, _unavailable)
    return app


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """An endpoint that met a store or Kafka outage answers 503 with Retry-After (anything
    else is raised on: a 500)."""
    if not is_transient(exc):
        raise exc
    log.warning(
        "%s %s: answering 503: %s: %s", request.method, request.url.path, type(exc).__name__, exc
    )
    return JSONResponse(
        {"detail": "the store or Kafka cannot be reached now; retry"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _lifespan(runtime: Runtime) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        gc.set_threshold(*GC_THRESHOLDS)
        stack = runtime.stack
        created = await when_up(
            runtime.name,
            "Kafka",
            lambda: ensure_topics(
                stack.kafka_bootstrap,
                replication=stack.topic_replication,
                min_insync=stack.topic_min_insync_replicas,
                security=stack.kafka_security(),
            ),
        )
        if created:
            log.info("%s created topics: %s", runtime.name, ", ".join(created))
        if runtime.mongo is not None:
            mongo = runtime.mongo
            await when_up(runtime.name, "the store", lambda: mongo.admin.command("ping"))
        for hook in runtime.on_start:
            await hook()
        await when_up(runtime.name, "Kafka", runtime.broker.start)
        for hook in runtime.on_started:
            await hook()
        log.info("%s started", runtime.name)
        try:
            yield
        finally:
            await drain(runtime.broker)  # what the batch subscribers are finishing is committed
            await runtime.broker.stop()
            for hook in runtime.on_stop:
                await hook()
            if runtime.mongo is not None:
                await runtime.mongo.close()
            log.info("%s stopped", runtime.name)

    return lifespan


class StoppedWaiting(Exception):
    """Asked to stop (SIGTERM, SIGINT) while waiting at start for Kafka or the store."""


async def when_up(service: str, what: str, step: Callable[[], Awaitable[T]]) -> T:
    """`step()`, tried again while `what` is unreachable: waits doubling from FIRST_WAIT to
    LONGEST_WAIT, each logged, for as long as the outage lasts, or until the process is asked
    to stop."""
    wait = FIRST_WAIT
    with _stop_requested() as stop:
        while True:
            try:
                return await step()
            except UNREACHABLE as exc:
                log.warning(
                    "%s: %s is not reachable (%s: %s); trying again in %.1f s",
                    *(service, what, type(exc).__name__, exc, wait),
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
                raise StoppedWaiting(f"{service}: asked to stop while waiting for {what}")
            wait = min(wait * 2, LONGEST_WAIT)


@contextlib.contextmanager
def _stop_requested() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT, which still reach the handlers installed before (the
    HTTP server's, which then shuts down): a service waiting at start stops when told to."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, chained in previous.items():
            signal.signal(sig, chained)


def _checks(runtime: Runtime) -> dict[str, Callable[[], Awaitable[object]]]:
    """What readiness checks: Kafka, the store (if the service has one), the consumers, and
    that no retry loop is waiting out an outage."""
    checks: dict[str, Callable[[], Awaitable[object]]] = {
        "kafka": lambda: runtime.broker.ping(timeout=2.0)
    }
    if runtime.mongo is not None:
        mongo = runtime.mongo
        checks["mongo"] = lambda: mongo.admin.command("ping")
    checks["consumers"] = lambda: _consumers_ready(runtime.broker)
    outages = runtime.outages

    async def waiting_out() -> str:
        return outages.readiness()

    checks["outages"] = waiting_out
    return {**checks, **runtime.checks}


def _asyncapi_router(runtime: Runtime, description: str) -> APIRouter:
    router = APIRouter()
    fs = asyncapi_app(runtime, description)

    @router.get("/asyncapi.json", tags=["ops"], summary="AsyncAPI description of the topics")
    async def asyncapi_json() -> dict[str, Any]:
        return fs.schema.to_specification().to_jsonable()  # type: ignore[no-any-return]

    @router.get(
        "/asyncapi",
        tags=["ops"],
        summary="The AsyncAPI description as a page",
        response_class=HTMLResponse,
    )
    async def asyncapi_page() -> HTMLResponse:
        # FastStream's page loads the AsyncAPI React component from a CDN and renders the
        # document inline; a browser without internet access sees /asyncapi.json instead.
        page = get_asyncapi_html(fs.schema.to_specification(), try_it_out_path=None)
        return HTMLResponse(page)

    return router


async def _consumers_ready(broker: KafkaBroker) -> str:
    """ "ok" once every subscriber's consumer has joined its group, else which have not."""
    waiting = [
        f"{group}: {state}"
        for group, state in consumers_assigned(broker).items()
        if state != "joined" and not state.startswith("assigned")
    ]
    return "ok" if not waiting else "; ".join(sorted(waiting))
