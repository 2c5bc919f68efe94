"""Intake's composition root. `create_app()` builds everything and does no I/O until started."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.clock import Clock, SystemClock
from fengqiao.service import Runtime, asyncapi_app, http_app
from services.intake import handlers, read_model
from services.intake.adapters.requests import MongoRequestsStore, RequestsStore
from services.intake.adapters.sink import KafkaPostSink, PostSink
from services.intake.http import webhook_router
from services.intake.open311 import open311_router
from services.intake.settings import IntakeSettings

NAME = "intake"
DESCRIPTION = "Takes the public's posts from platform webhooks and normalizes them into appeals."


def build(
    settings: IntakeSettings | None = None,
    *,
    sink: PostSink | None = None,
    clock: Clock | None = None,
    requests_store: RequestsStore | None = None,
) -> tuple[Runtime, FastAPI]:
    """The runtime and the HTTP app; tests pass fakes for `sink`, `clock` and `requests_store`."""
    settings = settings or IntakeSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    raw_posts = handlers.register(runtime.broker, producer=NAME, group_id=settings.group_id)
    sink = sink or KafkaPostSink(raw_posts)
    clock = clock or SystemClock()
    store = requests_store or _mongo_requests(runtime, settings)
    read_model.register(runtime.broker, store, group_id=settings.open311_group_id)
    router = webhook_router(settings, sink, clock, runtime.registry, NAME)
    open311 = open311_router(settings, sink, store, clock, runtime.registry, NAME)
    return runtime, http_app(runtime, description=DESCRIPTION, routers=[router, open311])


def _mongo_requests(runtime: Runtime, settings: IntakeSettings) -> RequestsStore:
    assert runtime.mongo is not None
    store = MongoRequestsStore(runtime.mongo, settings.database)
    runtime.on_start.append(store.ensure_indexes)
    return store


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    """For `faststream docs gen --factory services.intake.app:create_asyncapi`."""
    return asyncapi_app(build()[0], DESCRIPTION)
