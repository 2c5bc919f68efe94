"""The unit API: each office lists and reads its cases and acts on them.

Every call carries a person's credentials (`Authorization: Bearer <token>` or the workbench's
session; `fengqiao.auth`): the person acts for their unit, with the roles the policy
(`fengqiao/auth/policy.py`) asks of each route. A unit reaches the cases it leads or co-handles
and those of the units below it, never a sibling's or a parent's: a case it may not see is
answered 404, exactly like a case that does not exist. The acting unit and person are the
caller's, never fields of the body.

Actions are checked against the case as it is now (409 naming the case, its state and the
action when the state does not allow it; 403 when the unit may see but not do it), then
published to `unit.actions`, so they are replayable and audited; the tracker applies them when
it reads them back. The call waits a little for that (202 with `status: applied` and the new
state; `status: accepted` if it takes longer). Free text is masked before it is published.
"""

# No `from __future__ import annotations`: FastAPI must see the annotations (`Annotated[...,
# Query(...)]`) of the routes, local to `unit_router`, as objects, not as strings.

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from faststream.kafka import KafkaBroker
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fengqiao.auth import Identity, policy
from fengqiao.contracts import UNIT_ACTIONS, UnitActed, UnitActionKind
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.errors import refusals
from fengqiao.runtime.messaging import publish
from fengqiao.runtime.pii import mask_pii
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import CaseRepository, to_document
from fengqiao.services.tracker.adapters.indexes import Indexes
from fengqiao.services.tracker.supervision import with_working_time
from fengqiao.services.tracker.workcalendar import WorkCalendar

A = UnitActionKind
# A case the caller's unit may not see (404), or whose state does not allow the action (409).
ACTION_REFUSALS = refusals(404, 409)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000, description="Free text.")


class Progress(_Body):
    note: str = Field(min_length=1, max_length=2000, description="What was done.")


class Resolution(_Body):
    outcome: str = Field(min_length=1, max_length=2000, description="The result (办结).")
    amount_recovered: float | None = Field(default=None, ge=0, description="Yuan recovered.")


class Return(_Body):
    reason_code: str = Field(
        min_length=1,
        max_length=64,
        description="Why: a reason code of the router's returns.yaml (not_our_jurisdiction…).",
    )


class ExtensionRequest(_Body):
    requested_deadline: AwareDatetime = Field(description="The new deadline asked for.")


class ExtensionRuling(_Body):
    requested_deadline: AwareDatetime | None = Field(
        default=None, description="approve: a different deadline than the one asked for."
    )


class Note(_Body):
    note: str = Field(min_length=1, max_length=2000)


class Accepted(BaseModel):
    status: Literal["applied", "accepted"] = Field(
        default="accepted",
        description="applied: the case changed (see state); accepted: published, not yet applied.",
    )
    action_event_id: str
    case_id: str
    action: str
    state: str | None = Field(default=None, description="The case's state once applied.")


def _view(case: domain.Case) -> dict[str, Any]:
    doc = to_document(case)
    for bookkeeping in ("_id", "processed", "repeat_ids", "outbox", "effects"):
        doc.pop(bookkeeping, None)
    return doc


def refuse_unless_valid(case: domain.Case, action: UnitActed) -> None:
    """403 when the unit may not do it, 409 when the case's state does not allow it (now)."""
    try:
        domain.validate_action(case, action)
    except domain.NotAllowed as exc:
        raise HTTPException(403, str(exc)) from exc
    except domain.InvalidTransition as exc:
        raise HTTPException(409, str(exc)) from exc


_SUMMARY = (
    *("case_id", "state", "assigned_unit", "category", "urgency", "deadline", "overdue"),
    *("received_at", "masked_text"),
)


def listed(
    views: list[dict[str, Any]], unit: str, state: str | None, overdue: bool | None
) -> Iterator[dict[str, Any]]:
    """The summaries of the views `unit` may see that match the filters."""
    for doc in views:
        if unit not in doc.get("chain", ()) and unit not in doc.get("co_units", ()):
            continue  # re-dispatched elsewhere since it was indexed
        if state is not None and doc["state"] != state:
            continue
        if overdue is not None and doc["overdue"] != overdue:
            continue
        yield {k: doc.get(k) for k in _SUMMARY}


def unit_router(
    broker: KafkaBroker,
    repo: CaseRepository,
    indexes: Indexes,
    caller: Any,
    *,
    producer: str,
    apply_wait_seconds: float = 5.0,
    calendar: WorkCalendar | None = None,
) -> APIRouter:
    """The unit API; `caller` is the guard's dependency that names the calling person. With
    `calendar`, cases carry their clocks' working time left (`supervision.with_working_time`)."""

    router = APIRouter(prefix="/units/me", tags=["units"])

    async def visible(case_id: str, who: Identity) -> domain.Case:
        return await visible_case(repo, case_id, who)

    _read_routes(router, repo, indexes, caller, calendar)

    async def act(
        case_id: str, who: Identity, kind: UnitActionKind, body: _Body, **fields: Any
    ) -> Accepted:
        case = await visible(case_id, who)
        note = mask_pii(body.note)[0] if body.note else None
        action = UnitActed(
            occurred_at=utcnow(),
            producer=producer,
            case_id=case_id,
            unit_id=who.unit_id,
            person=who.person,
            action=kind,
            note=note,
            **fields,
        )
        refuse_unless_valid(case, action)
        await publish(broker, UNIT_ACTIONS.name, action)
        return await _applied(repo, action, apply_wait_seconds)

    _action_routes(router, caller, act)
    _extension_routes(router, caller, act)
    return router


def _read_routes(
    router: APIRouter,
    repo: CaseRepository,
    indexes: Indexes,
    caller: Any,
    calendar: WorkCalendar | None,
) -> None:
    """Who am I, my cases, one case; with `calendar`, each with its clocks' working time left."""

    def timed(doc: dict[str, Any]) -> dict[str, Any]:
        return doc if calendar is None else with_working_time(doc, utcnow(), calendar)

    @router.get("", summary="Who is calling: person, unit, roles")
    async def me(who: Identity = caller) -> dict[str, Any]:
        return {"unit_id": who.unit_id, "person": who.person, "name": who.name,
                "roles": sorted(who.roles), "via": who.via}  # fmt: skip

    @router.get("/cases", summary="My cases and those of the units below me, newest first")
    async def cases(
        state: Annotated[str | None, Query(max_length=32)] = None,
        overdue: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        who: Identity = caller,
    ) -> list[dict[str, Any]]:
        # The cases' views (one lookup by `_id` each, together), not their versions.
        unit = who.unit_id
        views = await repo.views(await indexes.unit_cases(unit, limit * 2))
        return [timed(doc) for doc in list(listed(views, unit, state, overdue))[:limit]]

    @router.get("/cases/{case_id}", summary="One case with its timeline", responses=refusals(404))
    async def case(case_id: str, who: Identity = caller) -> dict[str, Any]:
        return timed(_view(await visible_case(repo, case_id, who)))


async def visible_case(repo: CaseRepository, case_id: str, who: Identity) -> domain.Case:
    """The case, if the person's unit may see it; else 404, as if it did not exist."""
    case = await repo.get(case_id)
    if case is None or not policy.sees(who, case.chain, case.co_units):
        raise HTTPException(404, f"no case {case_id!r} for unit {who.unit_id}")
    return case


async def _applied(repo: CaseRepository, action: UnitActed, wait_seconds: float) -> Accepted:
    """Read your own writes: an office that signs and then reports progress must find the case
    signed. Wait (briefly) until the tracker has applied the action (on the versions)."""
    kind, case_id = action.action, action.case_id
    deadline = time.monotonic() + wait_seconds
    while True:
        current = await repo.get(case_id)
        if current is not None and current.has_processed(action.event_id):
            return Accepted(
                status="applied",
                action_event_id=action.event_id,
                case_id=case_id,
                action=kind.value,
                state=current.state.value,
            )
        if time.monotonic() >= deadline:
            return Accepted(action_event_id=action.event_id, case_id=case_id, action=kind.value)
        await asyncio.sleep(0.05)


def _action_routes(router: APIRouter, caller: Any, act: Callable[..., Awaitable[Accepted]]) -> None:
    """The actions of a unit on one case, each published as `unit.actions`."""

    @router.post(
        "/cases/{case_id}/accept",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Sign for the order (签收)",
    )
    async def accept(case_id: str, body: _Body | None = None, who: Identity = caller) -> Accepted:
        return await act(case_id, who, A.ACCEPT, body or _Body())

    @router.post(
        "/cases/{case_id}/progress",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Report progress",
    )
    async def progress(case_id: str, body: Progress, who: Identity = caller) -> Accepted:
        return await act(case_id, who, A.PROGRESS, body)

    @router.post(
        "/cases/{case_id}/resolve",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Resolve (办结)",
    )
    async def resolve(case_id: str, body: Resolution, who: Identity = caller) -> Accepted:
        outcome = mask_pii(body.outcome)[0]
        return await act(
            case_id, who, A.RESOLVE, body, outcome=outcome, amount_recovered=body.amount_recovered
        )

    @router.post(
        "/cases/{case_id}/return",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Return the order (退单)",
    )
    async def return_(case_id: str, body: Return, who: Identity = caller) -> Accepted:
        return await act(case_id, who, A.RETURN, body, reason_code=body.reason_code)


def _extension_routes(
    router: APIRouter, caller: Any, act: Callable[..., Awaitable[Accepted]]
) -> None:
    """Extensions (延期) asked for and ruled on; questions to the citizen; notes."""

    @router.post(
        "/cases/{case_id}/extension",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Ask for an extension (延期)",
    )
    async def extension(case_id: str, body: ExtensionRequest, who: Identity = caller) -> Accepted:
        return await act(
            case_id, who, A.REQUEST_EXTENSION, body, requested_deadline=body.requested_deadline
        )

    @router.post(
        "/cases/{case_id}/extension/approve",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Approve the pending extension (a unit above the lead unit)",
    )
    async def approve(
        case_id: str, body: ExtensionRuling | None = None, who: Identity = caller
    ) -> Accepted:
        body = body or ExtensionRuling()
        return await act(
            case_id, who, A.APPROVE_EXTENSION, body, requested_deadline=body.requested_deadline
        )

    @router.post(
        "/cases/{case_id}/extension/refuse",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Refuse the pending extension (a unit above the lead unit)",
    )
    async def refuse(
        case_id: str, body: ExtensionRuling | None = None, who: Identity = caller
    ) -> Accepted:
        return await act(case_id, who, A.REFUSE_EXTENSION, body or ExtensionRuling())

    @router.post(
        "/cases/{case_id}/ask-citizen",
        status_code=202,
        responses=ACTION_REFUSALS,
        summary="Ask the citizen something; the clock pauses until they answer",
    )
    async def ask_citizen(case_id: str, body: Note, who: Identity = caller) -> Accepted:
        return await act(case_id, who, A.AWAIT_CITIZEN, body)

    @router.post(
        "/cases/{case_id}/notes", status_code=202, responses=ACTION_REFUSALS, summary="Add a note"
    )
    async def note(case_id: str, body: Note, who: Identity = caller) -> Accepted:
        return await act(case_id, who, A.NOTE, body)
