"""Intake's composition root. `create_app()` builds everything and does no I/O until started."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.auth.guard import Guard
from fengqiao.contracts import POSTS_RAW
from fengqiao.runtime.clock import Clock, SystemClock
from fengqiao.runtime.messaging import DirectPublisher
from fengqiao.runtime.service import Runtime, asyncapi_app, http_app
from fengqiao.services.intake import handlers, read_model
from fengqiao.services.intake.adapters.cursors import CursorStore, MongoCursorStore
from fengqiao.services.intake.adapters.nonces import MongoPushNonces, NoncePruner, PushNonces
from fengqiao.services.intake.adapters.recent import Pruner, RecentAppeals
from fengqiao.services.intake.adapters.recent_mongo import MongoRecentAppeals
from fengqiao.services.intake.adapters.requests import MongoRequestsStore, RequestsStore
from fengqiao.services.intake.adapters.sink import KafkaPostSink, PostSink
from fengqiao.services.intake.http import generic_webhook_route, serve_first
from fengqiao.services.intake.lanes import danger_hint
from fengqiao.services.intake.linking import Policy
from fengqiao.services.intake.open311 import open311_router
from fengqiao.services.intake.pollers import build_poller
from fengqiao.services.intake.settings import IntakeSettings
from fengqiao.services.intake.triage import load_triager
from fengqiao.services.intake.triage.model import MODEL_DIR
from fengqiao.services.intake.weibo import weibo_webhooks

NAME = "intake"
DESCRIPTION = "Takes the public's posts from platform webhooks and normalizes them into appeals."


def build(
    settings: IntakeSettings | None = None,
    *,
    sink: PostSink | None = None,
    clock: Clock | None = None,
    requests_store: RequestsStore | None = None,
    cursors: CursorStore | None = None,
    recent: RecentAppeals | None = None,
    nonces: PushNonces | None = None,
) -> tuple[Runtime, FastAPI]:
    """The runtime and the HTTP app; tests pass fakes for `sink`, `clock`, `requests_store`
    `cursors`, `recent` and `nonces`."""
    settings = settings or IntakeSettings()
    clock = clock or SystemClock()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    store = requests_store or _mongo_requests(runtime, settings)
    triager = load_triager(settings.triage_model_dir or MODEL_DIR)
    handlers.register(
        runtime.broker,
        producer=NAME,
        group_id=settings.group_id,
        recent=recent or _mongo_recent(runtime, settings, clock),
        policy=_policy(settings),
        triager=triager,
        registry=runtime.registry,
        consume=settings.consumers,
        on_open311=store.map_case,
    )
    publisher = None
    if sink is None:
        publisher = _raw_posts_publisher(runtime)
        sink = KafkaPostSink(publisher, urgent=danger_hint(triager.danger))
    if settings.consumers:
        read_model.register(runtime.broker, store, group_id=settings.open311_group_id)
    generic = generic_webhook_route(settings, sink, clock, runtime.registry, NAME)
    open311 = open311_router(settings, sink, store, clock, runtime.registry, NAME)
    nonces = nonces or _mongo_nonces(runtime, settings, clock)
    weibo_check, weibo_push = weibo_webhooks(settings, sink, nonces, clock, runtime.registry, NAME)
    if settings.pollers_enabled:
        _start_pollers(runtime, settings, sink, clock, cursors)
    if publisher is not None:  # first to start, last to stop: everything else stores through it
        runtime.on_start.insert(0, publisher.start)
        runtime.on_stop.append(publisher.stop)
    # Posts may be long (a platform's post with its quoted post and media): their own limit.
    posts = dict.fromkeys(("/webhooks/", "/open311/"), settings.max_body_bytes)
    # Every route of intake is public (signed webhooks, Open311 with its api keys, health):
    # the guard refuses a route the policy does not name (fengqiao/auth/policy.py).
    routes = [open311, weibo_check]
    guard = Guard(NAME)
    app = http_app(runtime, description=DESCRIPTION, routers=routes, body_limits=posts, guard=guard)
    serve_first(app, [generic, weibo_push])  # the webhooks that take posts: plain routes
    guard.audit(app)
    return runtime, app


def _start_pollers(
    runtime: Runtime,
    settings: IntakeSettings,
    sink: PostSink,
    clock: Clock,
    cursors: CursorStore | None,
) -> None:
    """Poll Weibo in the background while the app runs (lifespan hooks)."""
    assert runtime.mongo is not None
    cursors = cursors or MongoCursorStore(runtime.mongo, settings.database)
    poller = build_poller(settings, sink, clock, cursors, producer=NAME, registry=runtime.registry)
    runtime.on_start.append(poller.start)
    runtime.on_stop.append(poller.stop)


def _raw_posts_publisher(runtime: Runtime) -> DirectPublisher:
    """Where the webhooks, Open311 and the pollers store posts (`handlers.register` declares
    the same topic's publisher on the broker, for AsyncAPI)."""
    return runtime.direct_publisher(POSTS_RAW)


def _policy(settings: IntakeSettings) -> Policy:
    return Policy(
        duplicate_threshold=settings.duplicate_threshold,
        duplicate_window=timedelta(days=settings.duplicate_window_days),
        follow_up_window=timedelta(days=settings.follow_up_window_days),
    )


def _mongo_recent(runtime: Runtime, settings: IntakeSettings, clock: Clock) -> RecentAppeals:
    assert runtime.mongo is not None
    keep = 2 * _policy(settings).lookback()
    store = MongoRecentAppeals(runtime.mongo, settings.database, keep=keep)
    if settings.consumers:  # the normalizer reads and writes it; webhook-only replicas do not
        runtime.on_start.append(store.ensure_indexes)
        pruner = Pruner(
            store,
            clock,
            keep=keep,
            interval_seconds=settings.recent_prune_interval_seconds,
            registry=runtime.registry,
        )
        runtime.on_start.append(pruner.start)
        runtime.on_stop.append(pruner.stop)
    return store


def _mongo_nonces(runtime: Runtime, settings: IntakeSettings, clock: Clock) -> PushNonces:
    """The Weibo push nonces; kept and pruned only where some account takes pushes."""
    assert runtime.mongo is not None
    store = MongoPushNonces(runtime.mongo, settings.database)
    if any(a.app_secret is not None for a in settings.weibo_accounts.values()):
        pruner = NoncePruner(
            store,
            clock,
            interval_seconds=settings.replay_window_seconds,
            registry=runtime.registry,
        )
        runtime.on_start += [store.ensure_indexes, pruner.start]
        runtime.on_stop.append(pruner.stop)
    return store


def _mongo_requests(runtime: Runtime, settings: IntakeSettings) -> RequestsStore:
    assert runtime.mongo is not None
    store = MongoRequestsStore(runtime.mongo, settings.database)
    runtime.on_start.append(store.ensure_indexes)
    return store


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    """For `faststream docs gen --factory fengqiao.services.intake.app:create_asyncapi`."""
    return asyncapi_app(build()[0], DESCRIPTION)
