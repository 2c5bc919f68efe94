"""An operator's decisions on held replies: approve (post it now, as it is or with a text of
their own) or reject, once per hold.

An approval may carry the text to post instead of the template's. It is checked by the rules of
every reply (`domain.prepare_edit`) before anything is recorded — refused, the reply stays held
— and the receipt code is the notifier's to append, so the reply keeps its key, its one outbox
claim and its receipt code: it is posted once, by the path of any approval. The decision keeps
who approved, the text that was held and the text approved; `edits` keeps the approved text, so
a later attempt of the same reply (a replay, an approval after an unknown outcome) posts it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fengqiao.contracts import ReplyRequested, ReplySent
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import Outbox
from fengqiao.services.notifier.domain import ContentRefused, edit_body, hold_kind, reply_marker
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import Origin, Outcomes

# The reply's messages: the template's (None) or an operator's text, checked (ContentRefused).
Prepare = Callable[[ReplyRequested, str | None], list[str]]


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
        prepare: Prepare,
        room: Callable[[ReplyRequested], int],
        take_token: Callable[[ReplyRequested], Awaitable[None]],
        deliver: Callable[
            [ReplyRequested, list[str], str, Origin | None], Awaitable[ReplySent | None]
        ],
    ) -> None:
        self.outbox, self.clock, self.metrics, self.outcomes = outbox, clock, metrics, outcomes
        self.tokens, self.prepare, self.room = tokens, prepare, room
        self.take_token, self.deliver = take_token, deliver

    async def held(self) -> list[dict[str, Any]]:
        """Replies waiting for an operator, with what they would say and what an operator may
        write instead (`body`: the text without the receipt code; at most `room` characters)."""
        found = []
        for hold in await self.outbox.held():
            record = await self.outbox.get(hold["_id"]) or {}
            request = record.get("request") or {}
            entry = {
                "key": hold["_id"],
                "reason": hold.get("reason"),
                "why": hold_kind(hold.get("reason")),
                "held_at": hold.get("held_at"),
                "case_id": record.get("case_id"),
                "purpose": record.get("purpose"),
                "account": record.get("account"),
                "text": record.get("text"),
                **{name: request.get(name) for name in ("channel", "category", "urgent")},
            }
            if request:
                reply = ReplyRequested.model_validate(request)
                marker = reply_marker(reply)
                body = edit_body(record.get("text") or "", marker)
                entry.update(marker=marker, body=body, room=self.room(reply))
            found.append(entry)
        return found

    async def decide(
        self, key: str, *, approve: bool, operator: str, note: str = "", text: str | None = None
    ) -> ReplySent | None:
        """Approve (post it now; with `text`, that text) or reject a held reply; each reply is
        decided once per hold. ContentRefused: `text` may not be posted (nothing recorded)."""
        record = await self.outbox.get(key)
        if record is None or record.get("state") != "held":
            raise Undecidable(f"reply {key} is not held")
        request = ReplyRequested.model_validate(record["request"])
        if text is not None and not approve:
            raise ContentRefused("only an approval carries a text")
        parts = None if text is None else self.prepare(request, text)  # refused: still held
        decision = {"approve": approve, "operator": operator, "note": note,
                    "at": self.clock.now(), "original": record.get("text")}  # fmt: skip
        if parts is not None:
            decision["text"] = "\n".join(parts)
        # One decision per hold (a reply approved, then held again for an unknown outcome, is
        # decided again).
        held_at = record.get("finished_at")
        earlier = await self.outbox.decide(
            f"{key}@{held_at.isoformat() if held_at else ''}", decision
        )
        if earlier is not None:
            verb = "approved" if earlier.get("approve") else "rejected"
            raise Undecidable(f"reply {key} was already {verb} by {earlier.get('operator')}")
        if text is not None:  # the decision's insert won: kept before anything is sent
            kept = {"text": edit_body(text, reply_marker(request)), "operator": operator,
                    "original": record.get("text"), "at": decision["at"]}  # fmt: skip
            await self.outbox.edit(key, kept)
        await self.outbox.release(key)
        self.metrics.outbox_depth.labels("held").dec()
        if not approve:
            why = f"rejected by {operator}" + (f": {note}" if note else "")
            return await self.outcomes.finish(request, "failed", text=record.get("text"), error=why)
        return await self.post(request, parts)

    async def post(self, request: ReplyRequested, parts: list[str] | None) -> ReplySent | None:
        """Post an approved reply: `parts`, else the text approved before, else the template's
        (the gate again, just before sending)."""
        if parts is None:
            edit = await self.outbox.edited(request.idempotency_key)
            try:
                parts = self.prepare(request, edit["text"] if edit else None)
            except ContentRefused as exc:
                return await self.outcomes.finish(
                    request, "failed", error=f"content refused: {exc}"
                )
        token = self.tokens(request.target.account)
        if token is None:  # failed, counted, dead-lettered: replayed once a token is given
            error = f"not sendable: no access token for {request.target.account}"
            return await self.outcomes.unsendable(request, None, "\n".join(parts), error)
        key = request.idempotency_key
        await self.outbox.finish(key, "sending", {"attempted_at": self.clock.now(), "parts": parts})
        await self.take_token(request)
        return await self.deliver(request, parts, token, None)
