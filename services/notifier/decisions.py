"""An operator's decisions on held replies: approve (post it now) or reject, once per hold."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fengqiao.contracts import ReplyRequested, ReplySent
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import Outbox
from fengqiao.services.notifier.domain import ContentRefused
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import Origin, Outcomes


class Undecidable(Exception):
    """An operator decision that cannot be taken (not held, or decided already)."""


class Decisions:
    def __init__(
        self,
        *,
        outbox: Outbox,
        clock: Clock,
        metrics: NotifierMetrics,
        outcomes: Outcomes,
        tokens: Callable[[str], str | None],
        prepare: Callable[[ReplyRequested], list[str]],
        take_token: Callable[[ReplyRequested], Awaitable[None]],
        deliver: Callable[
            [ReplyRequested, list[str], str, Origin | None], Awaitable[ReplySent | None]
        ],
    ) -> None:
        self.outbox, self.clock, self.metrics, self.outcomes = outbox, clock, metrics, outcomes
        self.tokens, self.prepare, self.take_token, self.deliver = (
            tokens,
            prepare,
            take_token,
            deliver,
        )

    async def held(self) -> list[dict[str, Any]]:
        """Replies waiting for an operator, with what they would say."""
        found = []
        for hold in await self.outbox.held():
            record = await self.outbox.get(hold["_id"]) or {}
            found.append(
                {
                    "key": hold["_id"],
                    "reason": hold.get("reason"),
                    "held_at": hold.get("held_at"),
                    "case_id": record.get("case_id"),
                    "purpose": record.get("purpose"),
                    "account": record.get("account"),
                    "text": record.get("text"),
                }
            )
        return found

    async def decide(
        self, key: str, *, approve: bool, operator: str, note: str = ""
    ) -> ReplySent | None:
        """Approve (post it now) or reject a held reply; each reply is decided once."""
        record = await self.outbox.get(key)
        if record is None or record.get("state") != "held":
            raise Undecidable(f"reply {key} is not held")
        decision = {"approve": approve, "operator": operator, "note": note, "at": self.clock.now()}
        # One decision per hold (a reply approved, then held again for an unknown outcome, is
        # decided again).
        held_at = record.get("finished_at")
        earlier = await self.outbox.decide(
            f"{key}@{held_at.isoformat() if held_at else ''}", decision
        )
        if earlier is not None:
            verb = "approved" if earlier.get("approve") else "rejected"
            raise Undecidable(f"reply {key} was already {verb} by {earlier.get('operator')}")
        await self.outbox.release(key)
        self.metrics.outbox_depth.labels("held").dec()
        request = ReplyRequested.model_validate(record["request"])
        if not approve:
            why = f"rejected by {operator}" + (f": {note}" if note else "")
            return await self.outcomes.finish(request, "failed", text=record.get("text"), error=why)
        try:
            parts = self.prepare(request)  # the gate again, just before sending
        except ContentRefused as exc:
            return await self.outcomes.finish(request, "failed", error=f"content refused: {exc}")
        token = self.tokens(request.target.account)
        if token is None:  # failed, counted, dead-lettered: replayed once a token is given
            error = f"not sendable: no access token for {request.target.account}"
            return await self.outcomes.unsendable(request, None, "\n".join(parts), error)
        await self.outbox.finish(key, "sending", {"attempted_at": self.clock.now(), "parts": parts})
        await self.take_token(request)
        return await self.deliver(request, parts, token, None)
