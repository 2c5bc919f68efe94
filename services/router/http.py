"""Operators' endpoints on the router: reassign a case by hand, and see returns per unit.

A reassignment is published to `unit.actions` like any unit's action, in the caller's name
(their unit and person, never the body's), so it is replayable and audited, and the router
carries it out when it reads it back. A dispatcher of a unit above the case's current holder
reassigns it, only to a unit inside its own subtree; a unit lead whose unit holds the case after a
return (the 终审 kept it there) sends it on to a unit below their own (`fengqiao/auth/policy.py`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity, Role, policy
from fengqiao.contracts import UNIT_ACTIONS, UnitActed, UnitActionKind
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.errors import refusals, unprocessable
from fengqiao.runtime.messaging import publish
from fengqiao.services.router.adapters.records import RecordStore
from fengqiao.services.router.directory import Directory


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_unit: str = Field(min_length=1, max_length=64, description="Where the case goes.")
    note: str | None = Field(default=None, max_length=500, description="Why.")


def ops_router(
    broker: KafkaBroker,
    store: RecordStore,
    directory: Directory,
    *,
    producer: str,
    caller: Any,
) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person."""
    router = APIRouter(prefix="/ops", tags=["operators"])

    @router.post(
        "/cases/{case_id}/reassign",
        status_code=202,
        responses=refusals(404),
        summary="Reassign a case by hand",
    )
    async def reassign(case_id: str, body: Reassignment, who: Identity = caller) -> dict[str, Any]:
        if body.to_unit not in directory:
            raise unprocessable(f"unknown unit {body.to_unit!r}", "body", "to_unit")
        record = await store.get(case_id)
        holder_chain = _chain(directory, record.holder) if record is not None else ()
        if record is None or not policy.sees(who, holder_chain):
            raise HTTPException(404, f"no dispatch of case {case_id!r} to reassign")
        target_chain = _chain(directory, body.to_unit)
        returned_by = _chain(directory, record.returns[-1][0]) if record.returns else ()
        dispatcher = who.has(Role.DISPATCHER) and policy.may_reassign(
            who, holder_chain, target_chain
        )
        if not dispatcher and not policy.may_send_on(who, record.holder, returned_by, target_chain):
            raise HTTPException(
                403,
                f"{who.unit_id} may not move case {case_id} from {record.holder} to "
                f"{body.to_unit}: only a dispatcher of a unit above the holder, or a unit lead "
                "of the holder after a return, within its own subtree",
            )
        action = UnitActed(
            occurred_at=utcnow(),
            producer=producer,
            case_id=case_id,
            unit_id=who.unit_id,
            person=who.person,
            action=UnitActionKind.REASSIGN,
            target_unit=body.to_unit,
            note=body.note,
        )
        await publish(broker, UNIT_ACTIONS.name, action)
        return {"status": "accepted", "action_event_id": action.event_id}

    @router.get("/returns", summary="Returned orders (退单) per unit of the caller's subtree")
    async def returns(who: Identity = caller) -> dict[str, int]:
        counts = await store.returns_by_unit()
        return {u: n for u, n in counts.items() if who.unit_id in _chain(directory, u)}

    return router


def _chain(directory: Directory, unit_id: str) -> tuple[str, ...]:
    """The units from the top of the tree down to `unit_id` (empty for an unknown unit)."""
    if unit_id not in directory:
        return ()
    return tuple(u.id for u in directory.chain(unit_id))
