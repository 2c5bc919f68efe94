"""A reply's outcome: recorded in the outbox, counted, logged when it is no success, and
reported on replies.sent."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fengqiao.contracts import REPLIES_REQUESTED, ReplyRequested, ReplySent, derived_event_id
from fengqiao.runtime import tracing
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import Outbox, State
from fengqiao.services.notifier.metrics import NotifierMetrics

log = logging.getLogger("fengqiao.notifier")

# Why a failed reply may be tried again when an operator replays its dead letter (the outbox's
# `retry` field): retries exhausted, or not sendable as configured.
EXHAUSTED, UNSENDABLE = "exhausted", "unsendable"


@dataclass(frozen=True)
class Origin:
    """Where a request was read from, for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: str | None = None
    replay_of: str | None = None  # the dead letter an operator replayed it from

    @property
    def owned_partition(self) -> int | None:
        """The partition of replies.requested whose owner this request belongs to; None for
        one read from the urgent lane (everyone's, like one read outside Kafka): the lane's
        consumer is assigned its partitions apart from the topic's, so they say nothing of which
        replica owns an account, and a rebalance of the topic must not drop it from memory."""
        return self.partition if self.topic == REPLIES_REQUESTED.name else None


class Results(Protocol):
    async def sent(self, result: ReplySent) -> None:
        """Publish a reply's outcome on replies.sent."""

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        """Publish outcomes on replies.sent, in order, without waiting for each one's
        acknowledgement before the next; return once all are acknowledged."""

    async def dead_letter(
        self,
        request: ReplyRequested,
        origin: Origin | None,
        error: str,
        error_type: str = "RetriesExhausted",
    ) -> None:
        """Write a request that failed after its last try, or that cannot be sent as
        configured (`NotSendable`), to replies.requested.dlq."""


class Outcomes:
    """Records, reports and counts what became of each reply."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        results: Results,
        clock: Clock,
        metrics: NotifierMetrics,
        producer: str,
    ) -> None:
        self.outbox, self.results, self.clock = outbox, results, clock
        self.metrics, self.producer = metrics, producer

    async def hold(self, request: ReplyRequested, text: str | None, reason: str) -> ReplySent:
        """Hold the reply for an operator, and report it held."""
        now = self.clock.now()
        await self.outbox.hold(request.idempotency_key, {"reason": reason, "held_at": now})
        self.metrics.outbox_depth.labels("held").inc()
        return await self.finish(request, "held", text=text, error=reason)

    async def unsendable(
        self, request: ReplyRequested, origin: Origin | None, text: str | None, error: str
    ) -> ReplySent:
        """A reply that cannot be sent as configured: recorded failed (tried again when its dead
        letter is replayed), counted, logged, dead-lettered."""
        result = await self.finish(request, "failed", text=text, error=error, retry=UNSENDABLE)
        await self.dead_letter(request, origin, error, unsendable=True)
        return result

    async def dead_letter(
        self, request: ReplyRequested, origin: Origin | None, error: str, *, unsendable: bool
    ) -> None:
        """Count and write the dead letter of a reply that failed for a reason that can pass."""
        self.metrics.dead_letters.inc()
        if unsendable:
            self.metrics.unsendable.labels(request.target.account).inc()
            log.error(
                "reply %s cannot be sent as configured (%s); once that is fixed, send it: "
                "fengqiao ops replies retry %s",
                request.idempotency_key,
                error,
                request.idempotency_key,
                extra={"case_id": request.case_id, "event_id": request.event_id},
            )
        await self.results.dead_letter(
            request, origin, error, "NotSendable" if unsendable else "RetriesExhausted"
        )

    async def finish(
        self, request: ReplyRequested, state: State, *, ids: list[str] | None = None, **fields: Any
    ) -> ReplySent:
        """Record the reply's outcome, and report it."""
        now = self.clock.now()
        # Every outcome field is written: a reply held, then sent, keeps no stale error.
        fields = {"error": None, **fields, "platform_message_id": ",".join(ids) if ids else None}
        await self.outbox.finish(request.idempotency_key, state, {**fields, "finished_at": now})
        return await self.emit(request, state, at=now, **fields)

    async def emit(
        self, request: ReplyRequested, state: Any, *, at: datetime, **fields: Any
    ) -> ReplySent:
        """Report an outcome already recorded."""
        result = self.report(request, state, at=at, **fields)
        await self.results.sent(result)
        return result

    def report(
        self, request: ReplyRequested, state: Any, *, at: datetime, **fields: Any
    ) -> ReplySent:
        """A reply's result, logged when it is no success and counted (not yet published)."""
        if state != "sent":
            log.warning(
                "reply %s %s: %s",
                *(request.idempotency_key, state, fields.get("error")),
                extra={"case_id": request.case_id, "event_id": request.event_id},
            )
        self.metrics.reply(request.purpose.value, request.target.account, state)
        return self.result(request, state, at=at, **fields)

    def result(
        self, request: ReplyRequested, state: Any, *, at: datetime | None, **fields: Any
    ) -> ReplySent:
        """The result message (its event id derived from the reply and its state), published in
        the request's trace (`tracing.follow`)."""
        result = ReplySent(
            event_id=derived_event_id("reply.sent", request.idempotency_key, str(state)),
            occurred_at=at or self.clock.now(),
            producer=self.producer,
            case_id=request.case_id,
            request_event_id=request.event_id,
            idempotency_key=request.idempotency_key,
            purpose=request.purpose,
            status=state,
            platform_message_id=fields.get("platform_message_id"),
            text=fields.get("text"),
            error=fields.get("error"),
        )
        tracing.follow(result, request)
        return result
