"""Tracker's composition root."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from faststream import FastStream

from fengqiao.service import Runtime, asyncapi_app, http_app
from services.tracker import handlers, stats
from services.tracker.adapters.cases import MongoCaseRepository
from services.tracker.adapters.indexes import MongoIndexes
from services.tracker.adapters.timers import MongoTimers
from services.tracker.api import unit_router
from services.tracker.settings import TrackerSettings

NAME = "tracker"
DESCRIPTION = "Owns each case: its state, timeline and clocks."


def build(settings: TrackerSettings | None = None) -> tuple[Runtime, FastAPI]:
    settings = settings or TrackerSettings()
    rules = settings.rules(NAME)  # the time limits and calendar are checked at start
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    assert runtime.mongo is not None
    repo = MongoCaseRepository(runtime.mongo, settings.database)
    indexes = MongoIndexes(runtime.mongo, settings.database)
    timers = MongoTimers(runtime.mongo, settings.database)
    runtime.on_start.append(repo.ensure_indexes)
    tracker = handlers.register(
        runtime.broker,
        repo,
        indexes=indexes,
        timers=timers,
        rules=rules,
        group_id=settings.group_id,
        registry=runtime.registry,
        settle_after=settings.settle_seconds or None,
    )
    sweeping: list[asyncio.Task[None]] = []

    async def start_sweeps() -> None:
        sweeping.append(asyncio.create_task(tracker.run_sweeps(settings.sweep_interval_seconds)))
        sweeping.append(asyncio.create_task(tracker.store.run_settling()))

    async def stop_sweeps() -> None:
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await tracker.store.settle(everything=True)

    runtime.on_started.append(start_sweeps)
    runtime.on_stop.insert(0, stop_sweeps)
    routers = [
        _ops_router(repo),
        unit_router(runtime.broker, repo, indexes, settings.unit_tokens, producer=NAME),
    ]
    return runtime, http_app(runtime, description=DESCRIPTION, routers=routers)


def _ops_router(repo: MongoCaseRepository) -> APIRouter:
    # Operators' read-only views. Units use the unit API (`/units/me/...`) with their tokens.
    router = APIRouter(prefix="/ops", tags=["operators"])

    @router.get("/cases/{case_id}", summary="A case with its timeline (operators)")
    async def get_case(case_id: str) -> dict[str, object]:
        doc = await repo.find(case_id)
        if doc is None:
            raise HTTPException(404, f"no case {case_id!r}")
        return doc

    @router.get("/stats", summary="Statistics per unit and tier for a period")
    async def get_stats(
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        unit: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        return await _stats(repo, since, until, unit)

    return router


async def _stats(
    repo: MongoCaseRepository,
    since: dt.datetime | None,
    until: dt.datetime | None,
    unit: str | None,
) -> dict[str, Any]:
    try:
        since, until = stats.period(since, until, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return stats.compute(await repo.all(), since, until, unit=unit).as_dict()


def create_app(settings: TrackerSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
