"""Notifier's composition root."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.auth.guard import Guard, service_guard
from fengqiao.contracts import ReplyRequested
from fengqiao.runtime.clock import Clock, SystemClock
from fengqiao.runtime.service import Runtime, asyncapi_app, http_app
from fengqiao.services.notifier import handlers
from fengqiao.services.notifier.adapters.outbox import MongoOutbox, Outbox
from fengqiao.services.notifier.adapters.platform import (
    PlatformClient,
    Platforms,
    WebhookClient,
    WeiboClient,
)
from fengqiao.services.notifier.domain import Renderer
from fengqiao.services.notifier.http import ops_router
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.readiness import Tokens
from fengqiao.services.notifier.sender import Sender
from fengqiao.services.notifier.settings import NotifierSettings

log = logging.getLogger("fengqiao.notifier")

NAME = "notifier"
DESCRIPTION = "Posts public replies and private messages, once, within the platform's rules."


def platforms(settings: NotifierSettings) -> Platforms:
    timeout = settings.http_timeout_seconds
    clients: dict[str, PlatformClient] = {
        name: WebhookClient(hook.url, hook.secret.get_secret_value(), timeout=timeout)
        for name, hook in settings.webhooks.items()
    }
    clients["weibo"] = WeiboClient(
        settings.weibo_api_base,
        timeout=timeout,
        lanes=settings.http_lanes,
        connections_per_lane=settings.http_connections_per_lane,
    )
    return Platforms(clients)


def case_link(settings: NotifierSettings, request: ReplyRequested) -> str:
    """The link to the case's public page a reply carries (none unless configured)."""
    case_ref = request.variables.get("case_ref", request.case_id[-8:])
    return settings.case_link.format(case_ref=case_ref) if settings.case_link else ""


def build(
    settings: NotifierSettings | None = None,
    *,
    platform: PlatformClient | None = None,
    outbox: Outbox | None = None,
    clock: Clock | None = None,
    guard: Guard | None = None,
) -> tuple[Runtime, FastAPI, Sender]:
    settings = settings or NotifierSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=outbox is None)
    if outbox is None:
        assert runtime.mongo is not None
        outbox = MongoOutbox(runtime.mongo, settings.database)
    client = platform or platforms(settings)
    clock = clock or SystemClock()

    runtime.checks["access_tokens"] = (tokens := Tokens(settings)).readiness
    results = handlers.KafkaResults(
        runtime.broker, producer=NAME, clock=clock, outages=runtime.outages
    )
    sender = Sender(
        outbox=outbox,
        platform=client,
        renderer=Renderer(),
        tokens=tokens,
        clock=clock,
        results=results,
        producer=NAME,
        policy=settings.policy(),
        limiter=settings.limiter(),
        metrics=NotifierMetrics(runtime.registry),
        link=lambda request: case_link(settings, request),
        max_attempts=settings.max_attempts,
        base_delay=settings.retry_base_seconds,
        max_delay=settings.retry_max_seconds,
        # An interrupted request is answered or dropped by the platform within the timeout.
        settle_seconds=settings.http_timeout_seconds + 2,
        concurrency=settings.concurrency,
        queueing=settings.queueing(),
    )

    async def start() -> None:
        if (readiness := await tokens.readiness()) != "ok":
            log.error("not ready: %s; replies will fail until then", readiness)
        sender.start_when(lambda: runtime.broker.ping(timeout=1.0))

    runtime.on_start.append(start)
    runtime.on_stop.extend([sender.stop, client.aclose])
    handlers.register(
        runtime.broker,
        sender,
        group_id=settings.group_id,
        batch_size=settings.batch_size,
    )
    guard = guard or service_guard(runtime)
    routers = [ops_router(sender, guard.caller)]
    app = http_app(runtime, description=DESCRIPTION, routers=routers, guard=guard)
    return runtime, app, sender


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
