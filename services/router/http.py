"""Operators' endpoints on the router: reassign a case by hand, and see returns per unit.

A reassignment is published to `unit.actions` like any unit's action, so it is replayable and
audited, and the router carries it out when it reads it back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.contracts import UNIT_ACTIONS, UnitActed, UnitActionKind
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.messaging import publish
from fengqiao.services.router.adapters.records import RecordStore
from fengqiao.services.router.directory import Directory


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by_unit: str = Field(min_length=1, max_length=64, description="The operator's unit.")
    to_unit: str = Field(min_length=1, max_length=64, description="Where the case goes.")
    note: str | None = Field(default=None, max_length=500, description="Why.")


def ops_router(
    broker: KafkaBroker, store: RecordStore, directory: Directory, *, producer: str
) -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["operators"])

    @router.post("/cases/{case_id}/reassign", status_code=202, summary="Reassign a case by hand")
    async def reassign(case_id: str, body: Reassignment) -> dict[str, Any]:
        for unit in (body.by_unit, body.to_unit):
            if unit not in directory:
                raise HTTPException(422, f"unknown unit {unit!r}")
        if await store.get(case_id) is None:
            raise HTTPException(404, f"no dispatch of case {case_id!r} to reassign")
        action = UnitActed(
            occurred_at=utcnow(),
            producer=producer,
            case_id=case_id,
            unit_id=body.by_unit,
            action=UnitActionKind.REASSIGN,
            target_unit=body.to_unit,
            note=body.note,
        )
        await publish(broker, UNIT_ACTIONS.name, action)
        return {"status": "accepted", "action_event_id": action.event_id}

    @router.get("/returns", summary="Returned orders (退单) per unit, over all cases")
    async def returns() -> dict[str, int]:
        return await store.returns_by_unit()

    return router
