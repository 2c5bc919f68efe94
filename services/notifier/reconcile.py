"""A reply whose earlier attempt may have reached the platform, and a reply an operator replays.

- Found `sending` (a crash, a timeout or a store outage after the platform may have taken it;
  the request delivered again, after a restart or by `fengqiao ops dlq replay`): once the HTTP
  timeout has passed, the reply is looked for where it would be, by the marker in its text
  (`domain.reply_marker`; on Weibo, among the post's own comments): found → `sent` with its id;
  absent → posted; cannot tell (a private message, a platform that cannot list) → `held` for an
  operator, never posted blindly.
- Replayed from the dead letters (`fengqiao-replay-of` header) after it `failed` for a reason
  that can pass: retries exhausted (it may have reached the platform: reconciled as above
  first) or not sendable as configured (a token, a platform client, a target id: nothing
  reached the platform) — tried again once per dead letter replayed. Any other delivery of a
  finished reply repeats its outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fengqiao.contracts import ReplyRequested, ReplySent
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import Outbox
from fengqiao.services.notifier.domain import ContentRefused
from fengqiao.services.notifier.outcomes import EXHAUSTED, UNSENDABLE, Origin, Outcomes
from fengqiao.services.notifier.posting import Poster, Sleep, Unknown

UNKNOWN = "outcome of an earlier attempt unknown; held for an operator"

Deliver = Callable[[ReplyRequested, list[str], str, Origin | None], Awaitable[ReplySent | None]]


class Reconciler:
    def __init__(
        self,
        *,
        outbox: Outbox,
        outcomes: Outcomes,
        poster: Poster,
        clock: Clock,
        tokens: Callable[[str], str | None],
        prepare: Callable[[ReplyRequested, str | None], list[str]],
        deliver: Deliver,
        active: set[str],
        sleep: Sleep,
        settle_seconds: float,
    ) -> None:
        self.outbox, self.outcomes, self.poster, self.clock = outbox, outcomes, poster, clock
        self.tokens, self.prepare, self.deliver = tokens, prepare, deliver
        self.active, self.sleep, self.settle = active, sleep, settle_seconds

    async def reconcile(
        self, request: ReplyRequested, record: dict[str, Any], origin: Origin | None
    ) -> ReplySent | None:
        """An earlier attempt may have posted the reply: look before posting again."""
        key = request.idempotency_key
        parts: list[str] = list(record.get("parts") or [])
        token = self.tokens(request.target.account)
        if len(parts) != 1 or token is None:
            return await self.outcomes.hold(request, "\n".join(parts) or None, UNKNOWN)
        self.active.add(key)
        try:
            attempted: datetime | None = record.get("attempted_at")
            if attempted is not None:
                waited = (self.clock.now() - attempted).total_seconds()
                if waited < self.settle:  # the earlier request may still be on its way
                    await self.sleep(self.settle - waited)
            try:
                found = await self.poster.find(
                    request,
                    parts[0],
                    token,
                    cause="an earlier attempt was interrupted",
                    since=attempted,
                )
            except Unknown:
                return await self.outcomes.hold(request, parts[0], UNKNOWN)
            if found is not None:
                return await self.outcomes.finish(request, "sent", text=parts[0], ids=[found])
            await self.outbox.finish(key, "sending", {"attempted_at": self.clock.now()})
        finally:
            self.active.discard(key)
        await self.poster.take_token(request)
        return await self.deliver(request, parts, token, origin)

    def retryable(self, record: dict[str, Any], origin: Origin | None) -> bool:
        """Whether this delivery of a finished reply is an operator's replay of a failure that
        can pass."""
        return (
            record.get("state") == "failed"
            and record.get("retry") in (EXHAUSTED, UNSENDABLE)
            and origin is not None
            and origin.replay_of is not None
        )

    async def claim_replay(self, request: ReplyRequested, origin: Origin) -> bool:
        """Whether this replay is the first of its dead letter (a failure again makes a new
        dead letter): the insert is the guard between deliveries and replicas."""
        guard = f"{request.idempotency_key}@replay@{origin.replay_of}"
        record = {"replay_of": origin.replay_of, "at": self.clock.now()}
        return await self.outbox.decide(guard, record) is None

    async def retry(
        self, request: ReplyRequested, record: dict[str, Any], origin: Origin
    ) -> ReplySent | None:
        """Try a replayed failure again (`claim_replay` first)."""
        key = request.idempotency_key
        now = self.clock.now()
        edit = await self.outbox.edited(key)  # the text an operator approved, if one did
        try:
            # The gate again, and a template fixed meanwhile.
            parts = self.prepare(request, edit["text"] if edit else None)
        except ContentRefused as exc:
            return await self.outcomes.finish(request, "failed", error=f"content refused: {exc}")
        text = "\n".join(parts)
        token = self.tokens(request.target.account)
        if token is None:
            error = f"not sendable: no access token for {request.target.account}"
            return await self.outcomes.unsendable(request, origin, text, error)
        if record.get("retry") == EXHAUSTED:  # it may have reached the platform: look first
            earlier = parts if edit else list(record.get("parts") or []) or parts
            return await self.reconcile(request, {**record, "parts": earlier}, origin)
        await self.outbox.finish(key, "sending", {"attempted_at": now, "parts": parts})
        await self.poster.take_token(request)
        return await self.deliver(request, parts, token, origin)
