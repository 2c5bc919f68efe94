"""The triage queue over HTTP, for dispatchers (and the workbench to come).

Every call carries the dispatcher's own credentials (`fengqiao.auth`: an API token or the
workbench's session); who ruled is that person, never a field of the body. A dispatcher sees
the items whose suggested or opening unit lies in their unit's subtree; any other item is
answered 404, as if it did not exist. The first ruling on an item wins: a second one is
answered 409 with the first.
"""

# No `from __future__ import annotations`: FastAPI must see the endpoints' `caller` dependency
# (a local of each registering function) as an object, not as a string it cannot resolve.

from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.encoders import jsonable_encoder
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity
from fengqiao.contracts import CATEGORIES, UNIT_ACTIONS, AppealNormalized
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.errors import refusals, unprocessable
from fengqiao.runtime.messaging import publish
from fengqiao.runtime.pii import mask_pii
from fengqiao.services.router.adapters.triage_queue import TriageQueue
from fengqiao.services.router.domain import Decision, Router
from fengqiao.services.router.triage import Correction, Item, Ruling, effects

__all__ = ["triage_router"]

Dispatch = Callable[[AppealNormalized, Decision], Awaitable[list[str]]]


class RuledAlready(BaseModel):
    """409: the first ruling on the item wins; it is this one."""

    class Detail(BaseModel):
        error: Literal["ruled already"]
        ruling: dict[str, Any] | None = Field(description="The first ruling, as GET shows it.")

    detail: Detail


# Not the caller's to see (404; or 403 for a unit outside their subtree), or ruled already.
RULING_REFUSALS: dict[int | str, dict[str, Any]] = {
    **refusals(404),
    409: {"model": RuledAlready, "description": "Ruled already: the first ruling wins"},
}


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500, description="Why, if anything.")


class CorrectIn(ConfirmIn):
    is_appeal: bool | None = Field(default=None, description="Appeal or not.")
    urgent: bool | None = Field(default=None, description="Risk to life or safety.")
    category: Literal[CATEGORIES] | None = Field(  # type: ignore[valid-type]
        default=None, description="The right category code."
    )
    unit: str | None = Field(
        default=None, max_length=64, description="The unit that must act (a unit id)."
    )
    link: Literal["confirm", "reject"] | None = Field(
        default=None, description="The suggested earlier case: the same matter, or not."
    )


def triage_router(
    broker: KafkaBroker,
    queue: TriageQueue,
    router: Router,
    caller: Any,
    dispatch: Dispatch,
    *,
    producer: str,
) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person."""
    api = APIRouter(prefix="/triage", tags=["triage"])
    caller = Depends(_person_of(caller))
    desk = _Desk(broker, queue, router, dispatch, producer)
    _add_me(api, caller)
    _add_units(api, router, caller)
    _add_pending(api, desk, caller)
    _add_one(api, desk, caller)
    _add_confirm(api, desk, caller)
    _add_correct(api, desk, caller)
    return api


def _person_of(caller: Any) -> Callable[..., tuple[str, str]]:
    """The dependency that names the caller as (person, their unit)."""

    def person_of(who: Identity = caller) -> tuple[str, str]:
        return who.person, who.unit_id

    return person_of


class _Desk:
    """The queue as one dispatcher may see and rule it."""

    def __init__(
        self,
        broker: KafkaBroker,
        queue: TriageQueue,
        router: Router,
        dispatch: Dispatch,
        producer: str,
    ) -> None:
        self.broker, self.queue, self.router = broker, queue, router
        self.dispatch, self.producer = dispatch, producer

    def sees(self, unit: str, item: Item) -> bool:
        units = [item.suggested_unit, *([item.opened_at_unit] if item.opened_at_unit else [])]
        return any(u in self.router.directory and unit in self.router.chain_of(u) for u in units)

    async def visible(self, item_id: str, unit: str) -> Item:
        item = await self.queue.get(item_id)
        if item is None or not self.sees(unit, item):
            raise HTTPException(404, f"no triage item {item_id!r} for unit {unit}")
        return item

    async def rule(
        self, item: Item, correction: Correction, person: tuple[str, str]
    ) -> dict[str, Any]:
        router = self.router
        if correction.unit is not None:
            if correction.unit not in router.directory:
                raise unprocessable(f"unknown unit {correction.unit!r}", "body", "unit")
            if person[1] not in router.chain_of(correction.unit):
                raise HTTPException(403, f"{correction.unit} is outside {person[1]}'s subtree")
        if correction.link is not None and item.suggested_case is None:
            raise unprocessable("this item suggests no earlier case to link", "body", "link")
        if correction.note:
            correction = replace(correction, note=mask_pii(correction.note)[0])
        ruling = Ruling.of(item, correction, person=person[0], unit=person[1], at=utcnow())
        if not await self.queue.rule(ruling):
            first = await self.queue.ruling(item.id)
            earlier = jsonable_encoder(asdict(first)) if first else None
            raise HTTPException(409, {"error": "ruled already", "ruling": earlier})
        published = []
        for action in effects(item, ruling, producer=self.producer):
            await publish(self.broker, UNIT_ACTIONS.name, action)
            published.append(action.event_id)
        dispatched: list[str] = []
        if ruling.is_appeal and not item.dispatched:
            dispatched = await self.dispatch(*_as_decided(item, ruling, router))
        return {"status": "ruled", "ruling": asdict(ruling), "published": published,
                "dispatched": dispatched}  # fmt: skip


# Each endpoint is registered by its own function; `caller` is the `Depends` of `_person_of`.


def _add_me(api: APIRouter, caller: Any) -> None:
    @api.get("/me", summary="Who is calling: person and unit")
    async def me(person: Annotated[tuple[str, str], caller]) -> dict[str, str]:
        return {"person": person[0], "unit_id": person[1]}


def _add_units(api: APIRouter, router: Router, caller: Any) -> None:
    @api.get("/units", summary="The units the caller may route to: their unit's subtree")
    async def units(person: Annotated[tuple[str, str], caller]) -> list[dict[str, str]]:
        return [
            {"id": u.id, "name": u.name, "tier": str(u.tier), "parent": u.parent or ""}
            for u in router.directory
            if person[1] in router.chain_of(u.id)
        ]


def _add_pending(api: APIRouter, desk: _Desk, caller: Any) -> None:
    @api.get("/queue", summary="Items waiting for a person: urgent first, then the oldest")
    async def pending(
        person: Annotated[tuple[str, str], caller],
        review: Annotated[str | None, Query(max_length=32, description="Only this reason")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        skipped = 0
        # Items outside the person's subtree are skipped, so pages are read until one is full.
        while len(found) < limit:
            page = await desk.queue.pending(limit=limit, offset=offset + skipped, review=review)
            if not page:
                break
            skipped += len(page)
            found += [i.public() for i in page if desk.sees(person[1], i)]
        return {"items": found[:limit], "next_offset": offset + skipped}


def _add_one(api: APIRouter, desk: _Desk, caller: Any) -> None:
    @api.get(
        "/queue/{item_id}",
        summary="One item, with its ruling if it has one",
        responses=refusals(404),
    )
    async def one(item_id: str, person: Annotated[tuple[str, str], caller]) -> dict[str, Any]:
        item = await desk.visible(item_id, person[1])
        ruling = await desk.queue.ruling(item_id)
        return {**item.public(), "ruling": asdict(ruling) if ruling else None}


def _add_confirm(api: APIRouter, desk: _Desk, caller: Any) -> None:
    @api.post(
        "/queue/{item_id}/confirm",
        summary="Triage was right (a confirmed example)",
        responses=RULING_REFUSALS,
    )
    async def confirm(
        item_id: str, body: ConfirmIn, person: Annotated[tuple[str, str], caller]
    ) -> dict[str, Any]:
        item = await desk.visible(item_id, person[1])
        return await desk.rule(item, Correction(note=body.note), person)


def _add_correct(api: APIRouter, desk: _Desk, caller: Any) -> None:
    @api.post(
        "/queue/{item_id}/correct",
        summary="What is right instead (a corrected example)",
        responses=RULING_REFUSALS,
    )
    async def correct(
        item_id: str, body: CorrectIn, person: Annotated[tuple[str, str], caller]
    ) -> dict[str, Any]:
        item = await desk.visible(item_id, person[1])
        fields = body.model_dump(exclude={"note"})
        return await desk.rule(item, Correction(**fields, note=body.note), person)


def _as_decided(item: Item, ruling: Ruling, router: Router) -> tuple[AppealNormalized, Decision]:
    """The appeal of an item that opened no case, with the labels a dispatcher ruled, and the
    router's decision for it dispatched to the ruled unit."""
    appeal = AppealNormalized.model_validate(item.appeal)
    triage = appeal.triage
    if triage is not None:
        triage = triage.model_copy(
            update={"category": ruling.category, "urgent": ruling.urgent, "review": []}
        )
    appeal = appeal.model_copy(update={"is_appeal": True, "triage": triage})
    decision = router.decide(appeal)
    chain = tuple(router.chain_of(ruling.to_unit))
    return appeal, replace(decision, chain=chain, opens_at=ruling.to_unit, is_appeal=True)
