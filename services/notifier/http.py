"""Operators' endpoints on the notifier: the replies held for approval (or of unknown outcome),
and approving (as it is, or with a text of the reviewer's within the platform's rules) or
rejecting each one, once, by a reviewer (`fengqiao/auth/policy.py`), who is recorded as the
decision's operator (the caller, never a field of the body)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity
from fengqiao.runtime.errors import refusals, unprocessable
from fengqiao.services.notifier.domain import ContentRefused
from fengqiao.services.notifier.sender import Sender, Undecidable


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500, description="Why (kept with the decision).")


class Approval(Decision):
    text: str | None = Field(
        default=None,
        max_length=2000,
        description="The reply to post instead of the template's, without its receipt code "
        "(the notifier appends it): one message of the reply's channel, checked by the rules "
        "of every reply; refused (422) otherwise, and the reply stays held.",
    )


def ops_router(sender: Sender, caller: Any) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person."""
    router = APIRouter(prefix="/ops/replies", tags=["operators"])

    @router.get("/held", summary="Replies waiting for an operator, with what they would say")
    async def held() -> list[dict[str, Any]]:
        return await sender.held()

    async def decide(
        key: str, body: Decision, approve: bool, who: Identity, text: str | None = None
    ) -> dict[str, Any]:
        try:
            result = await sender.decide(
                key, approve=approve, operator=who.person, note=body.note, text=text
            )
        except Undecidable as exc:
            raise HTTPException(409, str(exc)) from exc
        except ContentRefused as exc:
            raise unprocessable(str(exc), "body", "text") from exc
        return {} if result is None else result.model_dump(mode="json")

    @router.post(
        "/{key}/approve",
        summary="Post a held reply now, or a text in its place (the gate runs)",
        responses=refusals(409),
    )
    async def approve(
        key: str, body: Approval | None = None, who: Identity = caller
    ) -> dict[str, Any]:
        body = body or Approval()
        return await decide(key, body, True, who, body.text)

    @router.post(
        "/{key}/reject",
        summary="Never post a held reply; it is reported failed",
        responses=refusals(409),
    )
    async def reject(
        key: str, body: Decision | None = None, who: Identity = caller
    ) -> dict[str, Any]:
        return await decide(key, body or Decision(), False, who)

    return router
