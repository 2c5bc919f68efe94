"""Operators' endpoints on the notifier: the replies held for approval (or of unknown outcome),
and approving or rejecting each one, once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.services.notifier.sender import Sender, Undecidable


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator: str = Field(min_length=1, max_length=64, description="Who decides.")
    note: str = Field(default="", max_length=500, description="Why (kept with the decision).")


def ops_router(sender: Sender) -> APIRouter:
    router = APIRouter(prefix="/ops/replies", tags=["operators"])

    @router.get("/held", summary="Replies waiting for an operator, with what they would say")
    async def held() -> list[dict[str, Any]]:
        return await sender.held()

    async def decide(key: str, body: Decision, approve: bool) -> dict[str, Any]:
        try:
            result = await sender.decide(
                key, approve=approve, operator=body.operator, note=body.note
            )
        except Undecidable as exc:
            raise HTTPException(409, str(exc)) from exc
        return {} if result is None else result.model_dump(mode="json")

    @router.post("/{key}/approve", summary="Post a held reply now (the gate runs again)")
    async def approve(key: str, body: Decision) -> dict[str, Any]:
        return await decide(key, body, True)

    @router.post("/{key}/reject", summary="Never post a held reply; it is reported failed")
    async def reject(key: str, body: Decision) -> dict[str, Any]:
        return await decide(key, body, False)

    return router
