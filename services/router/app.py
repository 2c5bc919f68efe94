"""Router's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.auth.guard import Guard, service_guard
from fengqiao.ops.dlq import MongoActionStore
from fengqiao.ops.http import broker_publisher, dead_letter_router, kafka_source
from fengqiao.runtime.periodic import while_serving
from fengqiao.runtime.service import Runtime, asyncapi_app, http_app
from fengqiao.services.router import handlers
from fengqiao.services.router.adapters.records import MongoRecordStore
from fengqiao.services.router.adapters.triage_queue import MongoTriageQueue
from fengqiao.services.router.directory import load_directory
from fengqiao.services.router.directory_api import directory_router
from fengqiao.services.router.domain import Router
from fengqiao.services.router.geo import load_seats
from fengqiao.services.router.http import ops_router
from fengqiao.services.router.places import PlaceIndex
from fengqiao.services.router.placewords import PLACES_FILE, load_place_rules
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.router.triage_api import triage_router
from fengqiao.services.router.triage_depth import TriageDepth

NAME = "router"
DESCRIPTION = "Finds the office that must act on an appeal and dispatches it down the tiers."


def build_router(settings: RouterSettings) -> Router:
    """The routing domain, with its data loaded and validated."""
    directory = load_directory(settings.directory_file)
    return Router(
        directory=directory,
        places=PlaceIndex(directory, load_place_rules(settings.places_file or PLACES_FILE)),
        policy=settings.policy,
        review_below=settings.review_below,
        mode=settings.mode,
        seats=load_seats(),
    )


def build(
    settings: RouterSettings | None = None, *, guard: Guard | None = None
) -> tuple[Runtime, FastAPI]:
    settings = settings or RouterSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    assert runtime.mongo is not None
    store = MongoRecordStore(runtime.mongo, settings.database)
    queue = MongoTriageQueue(runtime.mongo, settings.database)
    runtime.on_start.append(store.ensure_indexes)
    runtime.on_start.append(queue.ensure_indexes)
    router = build_router(settings)
    # Orders skip FastStream's per-message publish path (the declared publishers stay, for
    # AsyncAPI and in-memory test brokers).
    outbox = runtime.direct_producer(handlers.PUBLISHES)
    runtime.on_start.append(outbox.start)
    runtime.on_stop.append(outbox.stop)
    dispatch = handlers.register(
        runtime.broker,
        router,
        producer=NAME,
        group_id=settings.group_id,
        registry=runtime.registry,
        store=store,
        queue=queue,
        outbox=outbox,
    )
    depth = TriageDepth(queue, runtime.registry)  # the queue's gauge, counted in the background
    while_serving(runtime, lambda: depth.run(settings.triage_depth_seconds))
    guard = guard or service_guard(runtime)
    ops = ops_router(runtime.broker, store, router.directory, producer=NAME, caller=guard.caller)
    triage = triage_router(runtime.broker, queue, router, guard.caller, dispatch, producer=NAME)
    dead_letters = dead_letter_router(
        kafka_source(settings.stack.kafka_bootstrap, security=settings.stack.kafka_security()),
        MongoActionStore(runtime.mongo),
        broker_publisher(runtime.broker),
        caller=guard.caller,
    )
    units = directory_router(router.directory, guard.caller)
    routers = [ops, triage, dead_letters, units]
    return runtime, http_app(runtime, description=DESCRIPTION, routers=routers, guard=guard)


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
