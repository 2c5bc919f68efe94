"""Tracker's composition root."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException
from faststream import FastStream

from fengqiao.service import Runtime, asyncapi_app, http_app
from services.tracker import handlers
from services.tracker.adapters.cases import MongoCaseRepository
from services.tracker.settings import TrackerSettings

NAME = "tracker"
DESCRIPTION = "Owns each case: its state, timeline and clocks."


def build(settings: TrackerSettings | None = None) -> tuple[Runtime, FastAPI]:
    settings = settings or TrackerSettings()
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    assert runtime.mongo is not None
    repo = MongoCaseRepository(runtime.mongo, settings.database)
    runtime.on_start.append(repo.ensure_indexes)
    handlers.register(
        runtime.broker, repo, producer=NAME, group_id=settings.group_id, registry=runtime.registry
    )
    return runtime, http_app(runtime, description=DESCRIPTION, routers=[_case_router(repo)])


def _case_router(repo: MongoCaseRepository) -> APIRouter:
    # Operators' read-only view of one case. The per-unit API with tokens is the unit API.
    router = APIRouter(tags=["cases"])

    @router.get("/ops/cases/{case_id}", summary="A case with its timeline (operators)")
    async def get_case(case_id: str) -> dict[str, object]:
        doc = await repo.find(case_id)
        if doc is None:
            raise HTTPException(404, f"no case {case_id!r}")
        return doc

    return router


def create_app(settings: TrackerSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
