"""Intake's composition root. `create_app()` builds everything and does no I/O until started."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.clock import Clock, SystemClock
from fengqiao.service import Runtime, asyncapi_app, http_app
from services.intake import handlers
from services.intake.adapters.sink import KafkaPostSink, PostSink
from services.intake.http import webhook_router
from services.intake.settings import IntakeSettings

NAME = "intake"
DESCRIPTION = "Takes the public's posts from platform webhooks and normalizes them into appeals."


def build(
    settings: IntakeSettings | None = None,
    *,
    sink: PostSink | None = None,
    clock: Clock | None = None,
) -> tuple[Runtime, FastAPI]:
    """The runtime and the HTTP app; tests pass fakes for `sink` and `clock`."""
    settings = settings or IntakeSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    raw_posts = handlers.register(runtime.broker, producer=NAME, group_id=settings.group_id)
    router = webhook_router(
        settings,
        sink or KafkaPostSink(raw_posts),
        clock or SystemClock(),
        runtime.registry,
        NAME,
    )
    return runtime, http_app(runtime, description=DESCRIPTION, routers=[router])


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    """For `faststream docs gen --factory services.intake.app:create_asyncapi`."""
    return asyncapi_app(build()[0], DESCRIPTION)
