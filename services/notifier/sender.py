"""Sending one reply: gate, claim it in the outbox, wait for its rate limit, post with retries,
reconcile an unknown outcome, record, report.

Paths of a reply (its key is (case, purpose, hop)):

- refused by the gate, or without a token → claimed `failed` at once;
- in a held category, or urgent → claimed `held` until an operator approves or rejects it;
- a token free now → claimed `sending` and posted; no token → claimed `queued`, parked (a
  document per key, reloaded at start) and posted by the bucket's worker when a token frees;
- found `sending` (a crash or timeout after the platform may have taken it) → after the HTTP
  timeout has passed, the account's recent posts are read: found → `sent` with its id; absent
  → posted; cannot tell → `held` for an operator.

Retryable errors are tried again with exponential backoff and jitter (the platform's
Retry-After when it gives one); after the last try the reply is `failed` and dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fengqiao.contracts import ReplyRequested, ReplySent, derived_event_id
from fengqiao.runtime.clock import Clock
from fengqiao.services.notifier.adapters.outbox import FINAL, Outbox, State
from fengqiao.services.notifier.adapters.platform import (
    CannotReconcile,
    PermanentError,
    PlatformClient,
    PlatformError,
    RetryableError,
)
from fengqiao.services.notifier.domain import (
    ContentPolicy,
    ContentRefused,
    Renderer,
    approval_reason,
    mentions_of,
    prepare,
)
from fengqiao.services.notifier.limits import RateLimiter
from fengqiao.services.notifier.metrics import NotifierMetrics

log = logging.getLogger("fengqiao.notifier")

Sleep = Callable[[float], Awaitable[None]]
UNKNOWN = "outcome of an earlier attempt unknown; held for an operator"


@dataclass(frozen=True)
class Origin:
    """Where a request was read from, for its dead letter."""

    topic: str
    partition: int
    offset: int
    key: str | None = None


class Results(Protocol):
    async def sent(self, result: ReplySent) -> None:
        """Publish a reply's outcome on replies.sent."""

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        """Publish outcomes on replies.sent, in order, without waiting for each one's
        acknowledgement before the next; return once all are acknowledged."""

    async def dead_letter(self, request: ReplyRequested, origin: Origin | None, error: str) -> None:
        """Write a request that failed after its last try to replies.requested.dlq."""


@dataclass
class _Plan:
    request: ReplyRequested
    origin: Origin | None
    parts: list[str]
    record: dict[str, Any]
    token: str | None = None

    @property
    def state(self) -> str:
        return str(self.record["state"])


@dataclass
class _Outcome:
    state: State
    fields: dict[str, Any]
    exhausted: bool = False


def _fields(text: str, error: str | None, ids: list[str]) -> dict[str, Any]:
    return {"text": text, "error": error, "platform_message_id": ",".join(ids) or None}


class Undecidable(Exception):
    """An operator decision that cannot be taken (not held, or decided already)."""


class _Unknown(Exception):
    """The platform may have taken the reply and cannot tell whether it did."""


class _Exhausted(Exception):
    """Retryable errors up to the last try."""


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
    ) -> None:
        self._outbox, self._platform, self._renderer = outbox, platform, renderer
        self._tokens, self._clock, self._results, self._producer = tokens, clock, results, producer
        self._policy = policy or ContentPolicy()
        self._limiter = limiter or RateLimiter({}, enabled=False)
        self.metrics = metrics or NotifierMetrics()
        self._link = link
        self._max_attempts, self._base_delay, self._max_delay = max_attempts, base_delay, max_delay
        self._settle, self._sleep, self._monotonic = settle_seconds, sleep, monotonic
        self._active: set[str] = set()  # keys being sent or queued in this process
        self._queues: dict[str, deque[tuple[ReplyRequested, list[str], Origin | None]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._concurrency = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._last_of_case: dict[str, asyncio.Task[None]] = {}

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
        plans: dict[str, _Plan] = {}
        for request, origin in items:
            key = request.idempotency_key
            if key not in plans and key not in self._active:
                plans[key] = self._plan(request, origin)
        existing = await self._outbox.claim_many({k: p.record for k, p in plans.items()})
        results: dict[str, ReplySent | None] = {}
        sends: list[_Plan] = []
        for key, plan in plans.items():
            request, origin = plan.request, plan.origin
            if key in existing:
                if plan.state == "sending":
                    self._limiter.give_back(request.target.account, request.channel)
                results[key] = await self._resume(request, existing[key], origin)
            elif plan.state == "sending":
                sends.append(plan)
            elif plan.state == "queued":
                await self._outbox.park(key, {"parked_at": self._clock.now()})
                self._enqueue(request, plan.parts, origin)
                results[key] = None
            else:
                fields = {k: plan.record.get(k) for k in ("text", "error")}
                if plan.state == "held":
                    await self._outbox.hold(
                        key, {"reason": plan.record["error"], "held_at": plan.record["finished_at"]}
                    )
                    self.metrics.outbox_depth.labels("held").inc()
                results[key] = await self._emit(
                    request, plan.state, at=plan.record["finished_at"], **fields
                )
        results.update(await self._deliver_many(sends))
        return [results.get(r.idempotency_key) for r, _ in items]

    def _plan(self, request: ReplyRequested, origin: Origin | None) -> _Plan:
        """What to claim for `request` (pure but for the rate limiter's tokens)."""
        now = self._clock.now()
        record = self._claim_record(request, origin)
        try:
            parts = self._prepare(request)
        except ContentRefused as exc:
            return _Plan(
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
            return _Plan(
                request,
                origin,
                parts,
                {**record, "state": "held", "text": text, "error": reason, "finished_at": now},
            )
        if self._tokens(request.target.account) is None:
            error = f"no access token for {request.target.account}"
            return _Plan(
                request,
                origin,
                parts,
                {**record, "state": "failed", "text": text, "error": error, "finished_at": now},
            )
        account, channel = request.target.account, request.channel
        if self._limiter.wait(account, channel, self._monotonic()) == 0.0:
            return _Plan(
                request, origin, parts, {**record, "state": "sending", "attempted_at": now}
            )
        return _Plan(request, origin, parts, {**record, "state": "queued"})

    def _prepare(self, request: ReplyRequested) -> list[str]:
        extra = {"link": self._link(request)} if "link" not in request.variables else {}
        text = self._renderer.render(request, **extra)
        return prepare(text, request.channel, self._policy, mentions_of(request))

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
        if state in FINAL:
            # The same outcome as the first time, down to its time: same event id, same message
            # (published again: the first publish may not have been acknowledged).
            result = self._result(
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
            await self._outbox.park(key, {"parked_at": self._clock.now()})
            self._enqueue(request, list(record.get("parts") or []), origin)
            return None
        return await self._reconcile(request, record, origin)

    # ------------------------------------------------------------------ posting

    async def _deliver(
        self, request: ReplyRequested, parts: list[str], token: str, origin: Origin | None
    ) -> ReplySent | None:
        plan = _Plan(request, origin, parts, {"state": "sending"}, token)
        return (await self._deliver_many([plan])).get(request.idempotency_key)

    async def _deliver_many(self, plans: list[_Plan]) -> dict[str, ReplySent | None]:
        """Post claimed replies (concurrently across cases, in order within one), record the
        outcomes in one batch, then report them."""
        if not plans:
            return {}
        keys = [p.request.idempotency_key for p in plans]
        self._active.update(keys)
        self.metrics.outbox_depth.labels("sending").inc(len(plans))
        try:
            by_case: dict[str, list[_Plan]] = {}
            for plan in plans:
                by_case.setdefault(plan.request.case_id, []).append(plan)

            async def send_case(case: list[_Plan]) -> list[tuple[_Plan, _Outcome]]:
                return [(plan, await self._send(plan)) for plan in case]

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
            results = [self._report(p.request, o.state, at=now, **o.fields) for p, o in sent]
            await self._results.sent_many(results)
            for plan, outcome in sent:
                if outcome.exhausted:
                    self.metrics.dead_letters.inc()
                    await self._results.dead_letter(
                        plan.request, plan.origin, outcome.fields["error"]
                    )
            return {p.request.idempotency_key: r for (p, _), r in zip(sent, results, strict=True)}
        finally:
            self._active.difference_update(keys)
            self.metrics.outbox_depth.labels("sending").dec(len(plans))

    async def _send(self, plan: _Plan) -> _Outcome:
        """Post every part of one reply; its outcome (nothing recorded yet)."""
        request, parts = plan.request, plan.parts
        token = plan.token or self._tokens(request.target.account) or ""
        text = "\n".join(parts)
        ids: list[str] = []
        async with self._concurrency:
            for index, part in enumerate(parts):
                if index:
                    await self._take_token(request)
                try:
                    ids.append(await self._post(request, part, token))
                except PermanentError as exc:
                    return _Outcome("failed", _fields(text, str(exc), ids))
                except _Unknown as exc:
                    return _Outcome("held", _fields(text, str(exc), ids))
                except _Exhausted as exc:
                    return _Outcome("failed", _fields(text, str(exc), ids), exhausted=True)
        return _Outcome("sent", _fields(text, None, ids))

    async def _post(self, request: ReplyRequested, text: str, token: str) -> str:
        channel, target = request.channel, request.target
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._platform.send(channel, target, text, token=token)
            except RetryableError as exc:
                last = attempt == self._max_attempts
                if last and not exc.maybe_delivered:
                    raise _Exhausted(f"gave up after {attempt} tries: {exc}") from exc
                delay = min(
                    exc.retry_after or self._base_delay * 2 ** (attempt - 1), self._max_delay
                )
                delay *= 1 + random.random() / 2
                log.warning(
                    "reply %s: %s; next step in %.1f s", request.idempotency_key, exc, delay
                )
                await self._sleep(delay)
                if exc.maybe_delivered:
                    found = await self._find(request, text, token, cause=str(exc))
                    if found is not None:
                        return found
                    if last:
                        raise _Exhausted(f"gave up after {attempt} tries: {exc}") from exc
                self.metrics.retries.labels(target.platform).inc()
        raise AssertionError("unreachable")

    async def _find(
        self, request: ReplyRequested, text: str, token: str, *, cause: str
    ) -> str | None:
        """The id of `text` if the platform shows it posted; _Unknown when it cannot tell."""
        try:
            found = await self._platform.find_posted(
                request.channel, request.target, text, token=token
            )
        except CannotReconcile as exc:
            self.metrics.reconciled.labels("unknown").inc()
            raise _Unknown(f"{cause}; {exc}; held for an operator") from exc
        except PlatformError as exc:
            self.metrics.reconciled.labels("unknown").inc()
            raise _Unknown(
                f"{cause}; could not check the platform ({exc}); held for an operator"
            ) from exc
        self.metrics.reconciled.labels("found" if found else "absent").inc()
        return found

    async def _reconcile(
        self, request: ReplyRequested, record: dict[str, Any], origin: Origin | None
    ) -> ReplySent | None:
        """An earlier attempt may have posted the reply: look before posting again."""
        key = request.idempotency_key
        parts: list[str] = list(record.get("parts") or [])
        token = self._tokens(request.target.account)
        if len(parts) != 1 or token is None:
            return await self._hold(request, "\n".join(parts) or None, UNKNOWN)
        self._active.add(key)
        try:
            attempted: datetime | None = record.get("attempted_at")
            if attempted is not None:
                waited = (self._clock.now() - attempted).total_seconds()
                if waited < self._settle:  # the earlier request may still be on its way
                    await self._sleep(self._settle - waited)
            try:
                found = await self._find(
                    request, parts[0], token, cause="an earlier attempt was interrupted"
                )
            except _Unknown:
                return await self._hold(request, parts[0], UNKNOWN)
            if found is not None:
                return await self._finish(request, "sent", text=parts[0], ids=[found])
            await self._outbox.finish(key, "sending", {"attempted_at": self._clock.now()})
        finally:
            self._active.discard(key)
        await self._take_token(request)
        return await self._deliver(request, parts, token, origin)

    # ------------------------------------------------------------------ the queue

    def _enqueue(self, request: ReplyRequested, parts: list[str], origin: Origin | None) -> None:
        bucket = self._limiter.bucket_name(request.target.account, request.channel)
        self._active.add(request.idempotency_key)
        self._queues.setdefault(bucket, deque()).append((request, parts, origin))
        self.metrics.queue_depth.labels(bucket).inc()
        self.metrics.outbox_depth.labels("queued").inc()
        self.metrics.rate_limited.labels(bucket).inc()
        worker = self._workers.get(bucket)
        if worker is None or worker.done():
            self._workers[bucket] = asyncio.create_task(self._drain(bucket), name=f"queue {bucket}")

    async def _drain(self, bucket: str) -> None:
        """Take the bucket's replies in order as tokens free; each is sent in a task of its own
        (a slow store or platform must not eat into the budget), one case's in order."""
        queue = self._queues[bucket]
        while queue:
            request, parts, origin = queue[0]
            await self._take_token(request)
            queue.popleft()
            self.metrics.queue_depth.labels(bucket).dec()
            self.metrics.outbox_depth.labels("queued").dec()
            before = self._last_of_case.get(request.case_id)
            task = asyncio.create_task(self._send_after(before, request, parts, origin))
            self._last_of_case[request.case_id] = task
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send_after(
        self,
        before: asyncio.Task[None] | None,
        request: ReplyRequested,
        parts: list[str],
        origin: Origin | None,
    ) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            await self._send_queued(request, parts, origin)
        except Exception:  # stays parked; tried again at the next start
            log.exception("queued reply %s", request.idempotency_key)
        finally:
            self._active.discard(request.idempotency_key)
            if self._last_of_case.get(request.case_id) is asyncio.current_task():
                del self._last_of_case[request.case_id]

    async def _send_queued(
        self, request: ReplyRequested, parts: list[str], origin: Origin | None
    ) -> None:
        key = request.idempotency_key
        now = self._clock.now()
        earlier = await self._outbox.attempt(key, {"at": now})
        if earlier is not None:  # another replica, or this one before a crash, tried it
            record = await self._outbox.get(key) or {}
            await self._reconcile(request, {**record, "attempted_at": earlier.get("at")}, origin)
        else:  # the attempt's record: a crash from here on is reconciled at the next start
            token = self._tokens(request.target.account)
            if token is None:
                await self._finish(
                    request,
                    "failed",
                    text="\n".join(parts),
                    error=f"no access token for {request.target.account}",
                )
            else:
                await self._deliver(request, parts, token, origin)
        await self._outbox.unpark(key)

    async def _take_token(self, request: ReplyRequested) -> None:
        account, channel = request.target.account, request.channel
        while (wait := self._limiter.wait(account, channel, self._monotonic())) > 0:
            await self._sleep(wait)

    async def start(self) -> None:
        """Reload the replies parked before a restart, and count those held."""
        self.metrics.outbox_depth.labels("held").set(len(await self._outbox.held()))
        for parked in sorted(await self._outbox.parked(), key=lambda d: str(d.get("parked_at"))):
            record = await self._outbox.get(parked["_id"])
            if record is None or record.get("state") in FINAL:
                await self._outbox.unpark(parked["_id"])
                continue
            request = ReplyRequested.model_validate(record["request"])
            origin = Origin(**record["origin"]) if record.get("origin") else None
            self._enqueue(request, list(record.get("parts") or []), origin)

    def start_when(self, ready: Callable[[], Awaitable[bool]]) -> None:
        """`start` in the background once `ready()` (the broker is connected: a queued reply's
        result must be publishable)."""

        async def wait_then_start() -> None:
            while not await ready():
                await self._sleep(0.2)
            await self.start()

        self._workers["(start)"] = asyncio.create_task(wait_then_start(), name="notifier start")

    async def stop(self) -> None:
        tasks = [*self._workers.values(), *self._in_flight]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every queue is empty (tests and benchmarks)."""
        while any(not t.done() for t in [*self._workers.values(), *self._in_flight]):
            await asyncio.gather(*self._workers.values(), *self._in_flight, return_exceptions=True)

    # ------------------------------------------------------------------ an operator

    async def held(self) -> list[dict[str, Any]]:
        """Replies waiting for an operator, with what they would say."""
        found = []
        for hold in await self._outbox.held():
            record = await self._outbox.get(hold["_id"]) or {}
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
        record = await self._outbox.get(key)
        if record is None or record.get("state") != "held":
            raise Undecidable(f"reply {key} is not held")
        decision = {"approve": approve, "operator": operator, "note": note, "at": self._clock.now()}
        # One decision per hold (a reply approved, then held again for an unknown outcome, is
        # decided again).
        held_at = record.get("finished_at")
        earlier = await self._outbox.decide(
            f"{key}@{held_at.isoformat() if held_at else ''}", decision
        )
        if earlier is not None:
            verb = "approved" if earlier.get("approve") else "rejected"
            raise Undecidable(f"reply {key} was already {verb} by {earlier.get('operator')}")
        await self._outbox.release(key)
        self.metrics.outbox_depth.labels("held").dec()
        request = ReplyRequested.model_validate(record["request"])
        if not approve:
            why = f"rejected by {operator}" + (f": {note}" if note else "")
            return await self._finish(request, "failed", text=record.get("text"), error=why)
        try:
            parts = self._prepare(request)  # the gate again, just before sending
        except ContentRefused as exc:
            return await self._finish(request, "failed", error=f"content refused: {exc}")
        token = self._tokens(request.target.account)
        if token is None:
            return await self._finish(
                request,
                "failed",
                text="\n".join(parts),
                error=f"no access token for {request.target.account}",
            )
        await self._outbox.finish(
            key, "sending", {"attempted_at": self._clock.now(), "parts": parts}
        )
        await self._take_token(request)
        return await self._deliver(request, parts, token, None)

    # ------------------------------------------------------------------ outcomes

    async def _hold(
        self, request: ReplyRequested, text: str | None, reason: str
    ) -> ReplySent | None:
        now = self._clock.now()
        await self._outbox.hold(request.idempotency_key, {"reason": reason, "held_at": now})
        self.metrics.outbox_depth.labels("held").inc()
        return await self._finish(request, "held", text=text, error=reason)

    async def _finish(
        self, request: ReplyRequested, state: State, *, ids: list[str] | None = None, **fields: Any
    ) -> ReplySent | None:
        now = self._clock.now()
        # Every outcome field is written: a reply held, then sent, keeps no stale error.
        fields = {"error": None, **fields, "platform_message_id": ",".join(ids) if ids else None}
        await self._outbox.finish(request.idempotency_key, state, {**fields, "finished_at": now})
        return await self._emit(request, state, at=now, **fields)

    async def _emit(
        self, request: ReplyRequested, state: Any, *, at: datetime, **fields: Any
    ) -> ReplySent:
        result = self._report(request, state, at=at, **fields)
        await self._results.sent(result)
        return result

    def _report(
        self, request: ReplyRequested, state: Any, *, at: datetime, **fields: Any
    ) -> ReplySent:
        """A reply's result, logged when it is no success and counted (not yet published)."""
        if state != "sent":
            log.warning("reply %s %s: %s", request.idempotency_key, state, fields.get("error"))
        self.metrics.reply(request.purpose.value, request.target.account, state)
        return self._result(request, state, at=at, **fields)

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
