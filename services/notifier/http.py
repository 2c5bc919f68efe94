"""Operators' endpoints on the notifier: the replies held for approval (or of unknown outcome),
and approving or rejecting each one, once, by a reviewer (`fengqiao/auth/policy.py`), who is
recorded as the decision's operator (the caller, never a field of the body)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity
from fengqiao.services.notifier.sender import Sender, Undecidable


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500, description="Why (kept with the decision).")


def ops_router(sender: Sender, caller: Any) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person."""
    router = APIRouter(prefix="/ops/replies", tags=["operators"])

    @router.get("/held", summary="Replies waiting for an operator, with what they would say")
    async def held() -> list[dict[str, Any]]:
        return await sender.held()

    async def decide(key: str, body: Decision, approve: bool, who: Identity) -> dict[str, Any]:
        try:
            result = await sender.decide(key, approve=approve, operator=who.person, note=body.note)
        except Undecidable as exc:
            raise HTTPException(409, str(exc)) from exc
        return {} if result is None else result.model_dump(mode="json")

    @router.post("/{key}/approve", summary="Post a held reply now (the gate runs again)")
    async def approve(
        key: str, body: Decision | None = None, who: Identity = caller
    ) -> dict[str, Any]:
        return await decide(key, body or Decision(), True, who)

    @router.post("/{key}/reject", summary="Never post a held reply; it is reported failed")
    async def reject(
        key: str, body: Decision | None = None, who: Identity = caller
    ) -> dict[str, Any]:
        return await decide(key, body or Decision(), False, who)

    return router
