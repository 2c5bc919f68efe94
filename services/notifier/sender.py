"""Sending one reply: gate, claim it in the outbox, wait for its rate limit, post with retries,
reconcile an unknown outcome, record, report.

Paths of a reply (its key is (case, purpose, hop)):

- refused by the gate, or without a token → claimed `failed` at once;
- in a held category, or urgent → claimed `held` until an operator approves or rejects it;
- a token free now → claimed `sending` and posted; no token → claimed `queued`, parked (a
  document per key) and posted by the bucket's worker when a token frees, urgent replies first,
  then acknowledgments (`queue`: bounded; what does not fit waits parked, and the sweep of
  `parking` queues it when there is room, or again after a failed send);
- found `sending` (a crash, timeout or store outage after the platform may have taken it) →
  reconciled (`reconcile`): looked for by its marker where it would be; found → `sent` with its
  id; absent → posted; cannot tell → `held` for an operator.

Retryable errors are tried again (`posting`); after the last try the reply is `failed` and
dead-lettered. A reply that cannot be sent as configured (no token, no client, a missing target
id) is `failed` and dead-lettered too; either is tried again when its dead letter is replayed
(`reconcile`). What became of a reply is recorded and reported by `outcomes`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from fengqiao.contracts import ReplyRequested, ReplySent
from fengqiao.runtime import tracing
from fengqiao.runtime.clock import Clock
from fengqiao.runtime.logs import bind
from fengqiao.services.notifier.adapters.outbox import FINAL, Outbox
from fengqiao.services.notifier.adapters.platform import PlatformClient
from fengqiao.services.notifier.decisions import Decisions, Undecidable
from fengqiao.services.notifier.domain import (
    ContentPolicy,
    ContentRefused,
    Renderer,
    approval_reason,
    edit_room,
    mentions_of,
    prepare,
    prepare_edit,
    reply_marker,
)
from fengqiao.services.notifier.limits import RateLimiter
from fengqiao.services.notifier.metrics import NotifierMetrics
from fengqiao.services.notifier.outcomes import UNSENDABLE, Origin, Outcomes, Results
from fengqiao.services.notifier.parking import Parking
from fengqiao.services.notifier.posting import Outcome, Plan, Poster, Sleep
from fengqiao.services.notifier.queue import Queueing, ReplyQueue, by_priority
from fengqiao.services.notifier.reconcile import UNKNOWN, Reconciler

__all__ = ["UNKNOWN", "Origin", "Results", "Sender", "Undecidable"]


class Sender:
    def __init__(
        self,
        *,
        outbox: Outbox,
        platform: PlatformClient,
        renderer: Renderer,
        tokens: Callable[[str], str | None],
        clock: Clock,
        results: Results,
        producer: str,
        policy: ContentPolicy | None = None,
        limiter: RateLimiter | None = None,
        metrics: NotifierMetrics | None = None,
        link: Callable[[ReplyRequested], str] = lambda _: "",
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        settle_seconds: float = 12.0,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        concurrency: int = 64,
        queueing: Queueing | None = None,
    ) -> None:
        self._outbox, self._renderer, self._tokens, self._clock = outbox, renderer, tokens, clock
        self._results, self._link = results, link
        self._policy = policy or ContentPolicy()
        self._limiter = limiter or RateLimiter({}, enabled=False)
        self.metrics = metrics or NotifierMetrics()
        self._settle, self._sleep, self._monotonic = settle_seconds, sleep, monotonic
        self._active: set[str] = set()  # keys being sent or queued in this process
        self._outcomes = Outcomes(
            outbox=outbox, results=results, clock=clock, metrics=self.metrics, producer=producer
        )
        self._poster = Poster(
            platform=platform,
            tokens=tokens,
            limiter=self._limiter,
            metrics=self.metrics,
            sleep=sleep,
            monotonic=monotonic,
            now=clock.now,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
            concurrency=concurrency,
        )
        self._queue = ReplyQueue(
            limiter=self._limiter,
            metrics=self.metrics,
            take_token=self._poster.take_token,
            send=self._send_queued,
            active=self._active,
            queueing=queueing or Queueing(),
            monotonic=monotonic,
        )
        self._parking = Parking(
            outbox=outbox, queue=self._queue, metrics=self.metrics, clock=clock, sleep=sleep
        )
        self._decisions = self._operators_decisions()
        self._reconciler = self._replays_reconciler()

    def _operators_decisions(self) -> Decisions:
        return Decisions(
            outbox=self._outbox,
            clock=self._clock,
            metrics=self.metrics,
            outcomes=self._outcomes,
            tokens=self._tokens,
            prepare=self._prepare,
            room=lambda request: edit_room(request, self._policy),
            take_token=self._poster.take_token,
            deliver=self._deliver,
        )

    def _replays_reconciler(self) -> Reconciler:
        return Reconciler(
            outbox=self._outbox,
            outcomes=self._outcomes,
            poster=self._poster,
            clock=self._clock,
            tokens=self._tokens,
            prepare=self._prepare,
            deliver=self._deliver,
            active=self._active,
            sleep=self._sleep,
            settle_seconds=self._settle,
        )

    # ------------------------------------------------------------------ requests

    async def handle(
        self, request: ReplyRequested, origin: Origin | None = None
    ) -> ReplySent | None:
        """Post `request` at most once; return its result (None while it waits in a queue or
        is being sent by an earlier delivery in this process). Results are also published."""
        return (await self.handle_many([(request, origin)]))[0]

    async def handle_many(
        self, items: Sequence[tuple[ReplyRequested, Origin | None]]
    ) -> list[ReplySent | None]:
        """`handle` for a batch: one insert claims them all, one records their outcomes; the
        posts go out concurrently, one case's in order."""
        plans: dict[str, Plan] = {}
        for request, origin in by_priority(items):
            key = request.idempotency_key
            if key not in plans and key not in self._active:
                plans[key] = self._plan(request, origin)
        existing = await self._outbox.claim_many({k: p.record for k, p in plans.items()})
        results: dict[str, ReplySent | None] = {}
        sends: list[Plan] = []
        for key, plan in plans.items():
            request, origin = plan.request, plan.origin
            if key in existing:
                if plan.state == "sending":
                    self._limiter.give_back(request.target.account, request.channel)
                results[key] = await self._resume(request, existing[key], origin)
            elif plan.state == "sending":
                sends.append(plan)
            elif plan.state == "queued":
                if await self._parking.park(request, origin):
                    self._queue.enqueue(request, plan.parts, origin)
                results[key] = None
            else:
                fields = {k: plan.record.get(k) for k in ("text", "error")}
                if plan.state == "held":
                    await self._outbox.hold(
                        key, {"reason": plan.record["error"], "held_at": plan.record["finished_at"]}
                    )
                    self.metrics.outbox_depth.labels("held").inc()
                results[key] = await self._outcomes.emit(
                    request, plan.state, at=plan.record["finished_at"], **fields
                )
                if plan.record.get("retry") == UNSENDABLE:
                    await self._outcomes.dead_letter(
                        request, origin, plan.record["error"], unsendable=True
                    )
        results.update(await self._deliver_many(sends))
        return [results.get(r.idempotency_key) for r, _ in items]

    def _plan(self, request: ReplyRequested, origin: Origin | None) -> Plan:
        """What to claim for `request` (pure but for the rate limiter's tokens)."""
        now = self._clock.now()
        record = self._claim_record(request, origin)
        try:
            parts = self._prepare(request)
        except ContentRefused as exc:
            return Plan(
                request,
                origin,
                [],
                {
                    **record,
                    "state": "failed",
                    "error": f"content refused: {exc}",
                    "text": None,
                    "finished_at": now,
                },
            )
        record["parts"] = parts
        text = "\n".join(parts)
        reason = approval_reason(request, self._policy)
        if reason is not None:
            return Plan(
                request,
                origin,
                parts,
                {**record, "state": "held", "text": text, "error": reason, "finished_at": now},
            )
        if self._tokens(request.target.account) is None:
            error = f"not sendable: no access token for {request.target.account}"
            failed = {"state": "failed", "text": text, "error": error, "retry": UNSENDABLE}
            return Plan(request, origin, parts, {**record, **failed, "finished_at": now})
        if self._queue.token_now(request):
            return Plan(request, origin, parts, {**record, "state": "sending", "attempted_at": now})
        return Plan(request, origin, parts, {**record, "state": "queued"})

    def _prepare(self, request: ReplyRequested, edited: str | None = None) -> list[str]:
        """The messages of a reply: its template's, or the text an operator approved."""
        if edited is not None:
            return prepare_edit(edited, request, self._policy)
        extra = {"link": self._link(request)} if "link" not in request.variables else {}
        text = self._renderer.render(request, **extra)
        marker = reply_marker(request)
        return prepare(text, request.channel, self._policy, mentions_of(request), marker)

    def _claim_record(self, request: ReplyRequested, origin: Origin | None) -> dict[str, Any]:
        return {
            "request_event_id": request.event_id,
            "case_id": request.case_id,
            "purpose": request.purpose.value,
            "account": request.target.account,
            "claimed_at": self._clock.now(),
            "request": request.model_dump(mode="json"),
            "origin": None if origin is None else origin.__dict__,
        }

    async def _resume(
        self, request: ReplyRequested, record: dict[str, Any], origin: Origin | None
    ) -> ReplySent | None:
        state = record.get("state")
        replayed = origin if self._reconciler.retryable(record, origin) else None
        if replayed is not None and await self._reconciler.claim_replay(request, replayed):
            return await self._reconciler.retry(request, record, replayed)
        if state in FINAL:
            # The same outcome as the first time, down to its time: same event id, same message
            # (published again: the first publish may not have been acknowledged).
            result = self._outcomes.result(
                request,
                state,
                at=record.get("finished_at"),
                text=record.get("text"),
                platform_message_id=record.get("platform_message_id"),
                error=record.get("error"),
            )
            await self._results.sent(result)
            return result
        key = request.idempotency_key
        if key in self._active:
            return None
        if state == "queued":
            if await self._parking.park(request, origin):
                self._queue.enqueue(request, list(record.get("parts") or []), origin)
            return None
        return await self._reconciler.reconcile(request, record, origin)

    # ------------------------------------------------------------------ posting

    async def _deliver(
        self, request: ReplyRequested, parts: list[str], token: str, origin: Origin | None
    ) -> ReplySent | None:
        plan = Plan(request, origin, parts, {"state": "sending"}, token)
        return (await self._deliver_many([plan])).get(request.idempotency_key)

    async def _deliver_many(self, plans: list[Plan]) -> dict[str, ReplySent | None]:
        """Post claimed replies (concurrently across cases, in order within one), record the
        outcomes in one batch, then report them."""
        if not plans:
            return {}
        keys = [p.request.idempotency_key for p in plans]
        self._active.update(keys)
        self.metrics.outbox_depth.labels("sending").inc(len(plans))
        try:
            by_case: dict[str, list[Plan]] = {}
            for plan in plans:
                by_case.setdefault(plan.request.case_id, []).append(plan)

            async def send_case(case: list[Plan]) -> list[tuple[Plan, Outcome]]:
                bind(case_id=case[0].request.case_id)  # its own task (gather): its lines
                with tracing.joined_for("replies.requested send", [p.request for p in case]):
                    return [(plan, await self._poster.send(plan)) for plan in case]

            sent = [
                o for case in await asyncio.gather(*map(send_case, by_case.values())) for o in case
            ]
            now = self._clock.now()
            await self._outbox.record_many(
                {
                    p.request.idempotency_key: {**o.fields, "state": o.state, "finished_at": now}
                    for p, o in sent
                }
            )
            for plan, outcome in sent:
                if outcome.state == "held":
                    await self._outbox.hold(
                        plan.request.idempotency_key,
                        {"reason": outcome.fields["error"], "held_at": now},
                    )
                    self.metrics.outbox_depth.labels("held").inc()
            results = [
                self._outcomes.report(p.request, o.state, at=now, **o.fields) for p, o in sent
            ]
            await self._results.sent_many(results)
            for plan, outcome in sent:
                if outcome.exhausted or outcome.unsendable:
                    await self._outcomes.dead_letter(
                        plan.request,
                        plan.origin,
                        outcome.fields["error"],
                        unsendable=outcome.unsendable,
                    )
            return {p.request.idempotency_key: r for (p, _), r in zip(sent, results, strict=True)}
        finally:
            self._active.difference_update(keys)
            self.metrics.outbox_depth.labels("sending").dec(len(plans))

    async def _send_queued(
        self, request: ReplyRequested, parts: list[str], origin: Origin | None
    ) -> None:
        key = request.idempotency_key
        now = self._clock.now()
        earlier = await self._outbox.attempt(key, {"at": now})
        if earlier is not None:  # another replica, or this one before a crash, tried it
            record = await self._outbox.get(key) or {}
            record = {**record, "attempted_at": earlier.get("at")}
            await self._reconciler.reconcile(request, record, origin)
        else:  # the attempt's record: a crash from here on is reconciled at the next start
            token = self._tokens(request.target.account)
            if token is None:
                error = f"not sendable: no access token for {request.target.account}"
                await self._outcomes.unsendable(request, origin, "\n".join(parts), error)
            else:
                await self._deliver(request, parts, token, origin)
        await self._outbox.unpark(key)

    async def start(self) -> None:
        """Queue the parked replies, count them and the held ones (a sweep of `parking`)."""
        await self._parking.sweep()

    def start_when(self, ready: Callable[[], Awaitable[bool]]) -> None:
        """Sweep the parked replies on a timer once `ready()` (see `Parking.run`)."""
        self._parking.start(ready)

    def assigned(self, partitions: Collection[int]) -> None:
        """This replica owns these partitions of replies.requested (and their accounts) now."""
        self._parking.assigned(partitions)

    def revoked(self, partitions: Collection[int]) -> None:
        self._parking.revoked(partitions)

    async def stop(self) -> None:
        await self._parking.stop()
        await self._queue.stop()

    async def idle(self) -> None:
        """Wait until every queue is empty (tests and benchmarks)."""
        await self._queue.idle()

    # ------------------------------------------------------------------ an operator

    async def held(self) -> list[dict[str, Any]]:
        """Replies waiting for an operator, with what they would say."""
        return await self._decisions.held()

    async def decide(
        self, key: str, *, approve: bool, operator: str, note: str = "", text: str | None = None
    ) -> ReplySent | None:
        """Approve (post it now; with `text`, that text in place of the template's) or reject a
        held reply; each reply is decided once (`decisions`)."""
        return await self._decisions.decide(
            key, approve=approve, operator=operator, note=note, text=text
        )
