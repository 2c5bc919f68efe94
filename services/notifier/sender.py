"""Sending one reply: claim it in the outbox, render, gate, post with retries, record."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from contracts import ReplyRequested, ReplySent, derived_event_id
from fengqiao.clock import Clock
from services.notifier.adapters.outbox import Outbox, State, claim_record
from services.notifier.adapters.platform import PermanentError, PlatformClient, RetryableError
from services.notifier.domain import ContentRefused, Renderer, gate

log = logging.getLogger("fengqiao.notifier")

Sleep = Callable[[float], Awaitable[None]]


class Sender:
    def __init__(
        self,
        *,
        outbox: Outbox,
        platform: PlatformClient,
        renderer: Renderer,
        tokens: Callable[[str], str | None],
        clock: Clock,
        producer: str,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._outbox, self._platform, self._renderer = outbox, platform, renderer
        self._tokens, self._clock, self._producer = tokens, clock, producer
        self._max_attempts, self._base_delay, self._sleep = max_attempts, base_delay, sleep

    async def handle(self, request: ReplyRequested) -> ReplySent:
        """Post `request` at most once and return the result to publish."""
        key = request.idempotency_key
        existing = await self._outbox.claim(
            key,
            claim_record(
                request.event_id, request.case_id, request.purpose.value, self._clock.now()
            ),
        )
        if existing is not None:
            return await self._repeat(request, existing)
        try:
            text = gate(self._renderer.render(request), request.channel)
        except ContentRefused as exc:
            return await self._finish(request, "failed", error=f"content refused: {exc}")
        token = self._tokens(request.target.account)
        if token is None:
            return await self._finish(
                request, "failed", text=text, error=f"no access token for {request.target.account}"
            )
        try:
            message_id = await self._post(request, text, token)
        except PermanentError as exc:
            return await self._finish(request, "failed", text=text, error=str(exc))
        except RetryableError as exc:
            # The platform may or may not have taken it: an operator decides, we do not repeat.
            return await self._finish(request, "held", text=text, error=f"gave up: {exc}")
        return await self._finish(request, "sent", text=text, platform_message_id=message_id)

    async def _post(self, request: ReplyRequested, text: str, token: str) -> str:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._platform.send(request.channel, request.target, text, token=token)
            except RetryableError as exc:
                if attempt == self._max_attempts:
                    raise
                delay = exc.retry_after or self._base_delay * 2 ** (attempt - 1)
                delay *= 1 + random.random() / 2
                log.warning(
                    "reply %s: %s; retry %d in %.1f s", request.idempotency_key, exc, attempt, delay
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _repeat(self, request: ReplyRequested, existing: dict[str, Any]) -> ReplySent:
        state = existing.get("state")
        if state == "sending":
            # An earlier attempt was interrupted after the claim: its outcome is unknown.
            return await self._finish(
                request, "held", error="outcome of an earlier attempt unknown; held for an operator"
            )
        # The same outcome as the first time, down to its time: same event id, same message.
        return self._result(
            request,
            state,
            at=existing.get("finished_at"),
            text=existing.get("text"),
            platform_message_id=existing.get("platform_message_id"),
            error=existing.get("error"),
        )

    async def _finish(self, request: ReplyRequested, state: State, **fields: Any) -> ReplySent:
        now = self._clock.now()
        await self._outbox.finish(request.idempotency_key, state, {**fields, "finished_at": now})
        if state != "sent":
            log.warning("reply %s %s: %s", request.idempotency_key, state, fields.get("error"))
        return self._result(request, state, at=now, **fields)

    def _result(
        self, request: ReplyRequested, state: Any, *, at: datetime | None, **fields: Any
    ) -> ReplySent:
        return ReplySent(
            event_id=derived_event_id("reply.sent", request.idempotency_key, str(state)),
            occurred_at=at or self._clock.now(),
            producer=self._producer,
            case_id=request.case_id,
            request_event_id=request.event_id,
            idempotency_key=request.idempotency_key,
            purpose=request.purpose,
            status=state,
            platform_message_id=fields.get("platform_message_id"),
            text=fields.get("text"),
            error=fields.get("error"),
        )
