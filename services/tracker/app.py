"""Tracker's composition root."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query
from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity, policy
from fengqiao.auth.guard import Guard, service_guard
from fengqiao.contracts import UNIT_ACTIONS, CaseState, UnitActed, UnitActionKind
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.errors import refusals, unprocessable
from fengqiao.runtime.messaging import publish
from fengqiao.runtime.service import Runtime, asyncapi_app, http_app
from fengqiao.services.tracker import handlers, stats
from fengqiao.services.tracker.adapters.cases import CaseRepository, MongoCaseRepository
from fengqiao.services.tracker.adapters.indexes import MongoIndexes
from fengqiao.services.tracker.adapters.timers import MongoTimers
from fengqiao.services.tracker.api import refuse_unless_valid, unit_router, visible_case
from fengqiao.services.tracker.figures_api import figures_router
from fengqiao.services.tracker.figures_metrics import AssessmentFigures
from fengqiao.services.tracker.public_api import public_router
from fengqiao.services.tracker.settings import TrackerSettings

NAME = "tracker"
DESCRIPTION = "Owns each case: its state, timeline and clocks."


def build(
    settings: TrackerSettings | None = None, *, guard: Guard | None = None
) -> tuple[Runtime, FastAPI]:
    settings = settings or TrackerSettings()
    rules = settings.rules(NAME)  # the time limits and calendar are checked at start
    runtime = Runtime.create(NAME, settings.stack, with_mongo=True)
    assert runtime.mongo is not None
    repo = MongoCaseRepository(runtime.mongo, settings.database, runtime.outages)
    indexes = MongoIndexes(runtime.mongo, settings.database)
    timers = MongoTimers(runtime.mongo, settings.database)
    runtime.on_start.append(repo.ensure_indexes)
    # Cases' outboxes skip FastStream's per-message publish path (the declared publishers stay,
    # for AsyncAPI); stopped last, after the sweeps that may still publish.
    outbox = runtime.direct_producer(handlers.PUBLISHES)
    runtime.on_start.append(outbox.start)
    tracker = handlers.register(
        runtime.broker,
        repo,
        indexes=indexes,
        timers=timers,
        rules=rules,
        group_id=settings.group_id,
        registry=runtime.registry,
        settle_after=settings.settle_seconds or None,
        outbox=outbox,
        outages=runtime.outages,
    )
    sweeping: list[asyncio.Task[None]] = []
    window = dt.timedelta(days=settings.figures_days)
    figures = AssessmentFigures(repo, rules.calendar, runtime.registry, window=window)

    async def start_sweeps() -> None:
        sweeping.append(asyncio.create_task(tracker.run_sweeps(settings.sweep_interval_seconds)))
        sweeping.append(asyncio.create_task(figures.run(settings.figures_interval_seconds)))
        sweeping.append(asyncio.create_task(tracker.work.run_settling()))

    async def stop_sweeps() -> None:
        for task in sweeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await tracker.work.settle(everything=True)
        await repo.flush()  # the cases' views of the last versions

    runtime.on_started.append(start_sweeps)
    runtime.on_stop.insert(0, stop_sweeps)
    runtime.on_stop.append(outbox.stop)
    guard = guard or service_guard(runtime)
    routers = [
        ops_router(repo, runtime.broker, guard.caller),
        unit_router(
            runtime.broker, repo, indexes, guard.caller, producer=NAME, calendar=rules.calendar
        ),
        public_router(repo.received, rules.calendar.timezone),
        figures_router(repo, rules.calendar, guard.caller),
    ]
    return runtime, http_app(runtime, description=DESCRIPTION, routers=routers, guard=guard)


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: str = Field(min_length=1, max_length=128, description="The case this one duplicates.")
    note: str | None = Field(default=None, max_length=500, description="Why.")


def ops_router(repo: CaseRepository, broker: KafkaBroker, caller: Any) -> APIRouter:
    # Operators' views and merges, for the people the policy names; scoped to their subtree.
    router = APIRouter(prefix="/ops", tags=["operators"])

    @router.post(
        "/cases/{case_id}/merge",
        status_code=202,
        responses=refusals(404, 409),
        summary="Merge a duplicate case",
    )
    async def merge(case_id: str, body: Merge, who: Identity = caller) -> dict[str, str]:
        """The case ends as merged into `into` (both timelines say so); published to
        `unit.actions` in the caller's name, so it is replayable and audited. Only a person
        who sees both cases merges them (else 404, as if the one unseen did not exist)."""
        case = await visible_case(repo, case_id, who)
        into = await visible_case(repo, body.into, who)
        if into.state is CaseState.MERGED:
            raise HTTPException(409, f"case {body.into} is itself merged; merge into its case")
        if not into.chain:
            raise HTTPException(
                409, f"case {body.into} is not dispatched yet: merge into a case an office has"
            )
        by = {"producer": NAME, "unit_id": who.unit_id, "person": who.person}
        actions = [
            UnitActed(occurred_at=utcnow(), case_id=case_id, action=UnitActionKind.MERGE,
                      into_case_id=body.into, note=body.note, **by),
            UnitActed(occurred_at=utcnow(), case_id=body.into, action=UnitActionKind.NOTE,
                      note=f"case {case_id} merged into this one: {body.note or ''}".strip(": "),
                      **by),
        ]  # fmt: skip
        for target, action in zip((case, into), actions, strict=True):
            refuse_unless_valid(target, action)
        for action in actions:
            await publish(broker, UNIT_ACTIONS.name, action)
        return {"status": "accepted", "action_event_id": actions[0].event_id}

    @router.get(
        "/cases/{case_id}", summary="A case with its timeline (operators)", responses=refusals(404)
    )
    async def get_case(case_id: str, who: Identity = caller) -> dict[str, object]:
        doc = await repo.find(case_id)
        if doc is None or not policy.sees(who, doc.get("chain", ()), doc.get("co_units", ())):
            raise HTTPException(404, f"no case {case_id!r} for unit {who.unit_id}")
        return doc

    @router.get("/stats", summary="Statistics per unit and tier for a period")
    async def get_stats(
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        unit: Annotated[str | None, Query(max_length=64)] = None,
        who: Identity = caller,
    ) -> dict[str, Any]:
        return await _stats(repo, since, until, unit, who)

    return router


async def _stats(
    repo: CaseRepository,
    since: dt.datetime | None,
    until: dt.datetime | None,
    unit: str | None,
    who: Identity,
) -> dict[str, Any]:
    """The figures of the cases the caller's unit sees (its subtree), or of `unit`'s in it."""
    try:
        since, until = stats.period(since, until, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise unprocessable(str(exc), "query") from exc
    seen = [c for c in await repo.received(since, until) if policy.sees(who, c.chain, c.co_units)]
    return stats.compute(seen, since, until, unit=unit).as_dict()


def create_app(settings: TrackerSettings | None = None) -> FastAPI:
    return build(settings)[1]


def create_asyncapi() -> FastStream:
    return asyncapi_app(build()[0], DESCRIPTION)
