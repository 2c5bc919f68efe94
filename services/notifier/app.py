"""Notifier's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.clock import Clock, SystemClock
from fengqiao.service import Runtime, asyncapi_app, http_app
from services.notifier import handlers
from services.notifier.adapters.outbox import MongoOutbox, Outbox
from services.notifier.adapters.platform import PlatformClient, WeiboClient
from services.notifier.domain import Renderer
from services.notifier.sender import Sender
from services.notifier.settings import NotifierSettings

NAME = "notifier"
DESCRIPTION = "Posts public replies and private messages, once, within the platform's rules."


def build(
    settings: NotifierSettings | None = None,
    *,
    platform: PlatformClient | None = None,
    outbox: Outbox | None = None,
    clock: Clock | None = None,
) -> tuple[Runtime, FastAPI]:
    settings = settings or NotifierSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=outbox is None)
    if outbox is None:
        assert runtime.mongo is not None
        mongo_outbox = MongoOutbox(runtime.mongo, settings.database)
        runtime.on_start.append(mongo_outbox.ensure_indexes)
        outbox = mongo_outbox
    client = platform or WeiboClient(settings.weibo_api_base, timeout=settings.http_timeout_seconds)
    runtime.on_stop.append(client.aclose)
    sender = Sender(
        outbox=outbox,
        platform=client,
        renderer=Renderer(),
        tokens=settings.token_for,
        clock=clock or SystemClock(),
        producer=NAME,
        max_attempts=settings.max_attempts,
    )
    handlers.register(runtime.broker, sender, group_id=settings.group_id, registry=runtime.registry)
    return runtime, http_app(runtime, description=DESCRIPTION)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
