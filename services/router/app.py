"""Router's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from faststream import FastStream

from fengqiao.service import Runtime, asyncapi_app, http_app
from services.router import handlers
from services.router.adapters.records import MongoRecordStore
from services.router.classify import RULES_FILE, load_rules
from services.router.directory import load_directory
from services.router.domain import Router
from services.router.geo import load_seats
from services.router.http import ops_router
from services.router.places import PlaceIndex
from services.router.settings import RouterSettings

NAME = "router"
DESCRIPTION = "Finds the office that must act on an appeal and dispatches it down the tiers."


def build_router(settings: RouterSettings) -> Router:
    """The routing domain, with its data loaded and validated."""
    directory = load_directory(settings.directory_file)
    rules = load_rules(settings.rules_file or RULES_FILE)
    return Router(
        directory=directory,
        places=PlaceIndex(directory, rules.places),
        rules=rules,
        policy=settings.policy,
        mode=settings.mode,
        seats=load_seats(),
    )


def build(settings: RouterSettings | None = None) -> tuple[Runtime, FastAPI]:
    settings = settings or RouterSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    assert runtime.mongo is not None
    store = MongoRecordStore(runtime.mongo, settings.database)
    runtime.on_start.append(store.ensure_indexes)
    router = build_router(settings)
    handlers.register(
        runtime.broker,
        router,
        producer=NAME,
        group_id=settings.group_id,
        registry=runtime.registry,
        store=store,
    )
    ops = ops_router(runtime.broker, store, router.directory, producer=NAME)
    return runtime, http_app(runtime, description=DESCRIPTION, routers=[ops])


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
