"""Tracker's subscribers and its timer sweep: every message and every clock changes cases.

Each change is applied with `CaseStore.apply` (a clock) or `CaseStore.begin_many` (what one poll
of a topic returned): load the case, let the domain compute the new case (all of the poll's
changes of that case, in order), write it conditionally as one version (retrying on a concurrent
write), then publish its outbox and carry out its effects (timers, indexes), then record that
they are done. A subscriber hands back the task of its poll once the poll has taken its turns at
its cases, and is handed its next poll while the task goes on (`batch_subscriber`): one poll's
writes overlap the next one's computing, and each case still takes its changes in order.

The store remembers the version of each case it last wrote (or read) and uses it as the base of
the next change instead of reading the case again: the messages of one case come in bursts (an
appeal, its dispatch hops, the acknowledgment). The memory is only a guess: if another replica
wrote the case meanwhile, the insert of the next version fails and the case is read again (no
version is ever deleted, so an insert is a true compare-and-set from any base: adapters/cases.py).

Recording that an outbox is done is a version of its own. With `settle_after` it waits that long
(`settle`): the next change of the case, which comes soon in a burst, leaves the done outbox out
of its version anyway, so most cases write that version once, at the end of a burst, instead of
after every change. Until then the stored version still lists the done outbox; a crash in between
publishes it again (same event ids, idempotent effects), as a crash before the record always did.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fengqiao.contracts import (
    APPEALS,
    CASE_EVENTS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    AppealNormalized,
    CoordinationRequested,
    DispatchOrdered,
    ReplySent,
    SupervisionOrdered,
    Topic,
    UnitActed,
)
from fengqiao.runtime.messaging import BatchFailures, DeclaredPublishers, Outbox, batch_subscriber
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import CaseRepository, without_outbox
from fengqiao.services.tracker.adapters.indexes import Indexes
from fengqiao.services.tracker.adapters.recent import Recent
from fengqiao.services.tracker.adapters.timers import Timer, Timers, fire_due, timer_key

log = logging.getLogger("fengqiao.tracker")

MAX_ATTEMPTS = 50
BATCH_RECORDS = 500  # messages of a topic handed over at once (what one poll returned)
PUBLISHES = (CASE_EVENTS, REPLIES_REQUESTED, SUPERVISION_ORDERS)  # what a case's outbox holds
# Cases whose last written version is reused as the next change's base (a guess, see above).
REMEMBERED_CASES = 10_000

BatchHandler = Callable[[Any], Awaitable[asyncio.Task[BatchFailures]]]
Change = Callable[[domain.Case], domain.Case]
_UNREAD = object()  # a case not read yet


_holding: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "fengqiao_tracker_cases_held", default=frozenset()
)


class _Turn:
    """A change's turn at a case (`CaseStore._turn`): one change per case at a time in this
    process, in the order the turns were made. The place in the case's queue is taken when the
    turn is made, and `async with` waits for the turns made before it: a batch takes its turns
    at all its cases before anything is awaited, so the changes of a batch begun later (the
    next poll, while this one is still written) come after its own."""

    __slots__ = ("_before", "_case_id", "_done", "_queue", "_token")

    def __init__(self, queue: dict[str, asyncio.Future[None]], case_id: str) -> None:
        self._queue, self._case_id = queue, case_id
        self._token: contextvars.Token[frozenset[str]] | None = None
        self._before: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None  # None: re-entered, the turn is ours
        if case_id in _holding.get():
            # Re-entered from our own publish (an in-memory test broker delivers synchronously,
            # e.g. a supervision order to our own subscriber): the case is ours already.
            return
        self._before = queue.get(case_id)  # the turn made before (None: nobody's)
        self._done = queue[case_id] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> None:
        if self._done is None:
            return
        before = self._before
        if before is not None and not before.done():
            try:
                await asyncio.shield(before)
            except BaseException:  # cancelled while waiting: the next turn still waits for it
                self.release()
                raise
        self._token = _holding.set(_holding.get() | {self._case_id})

    async def __aexit__(self, *_: object) -> None:
        if self._token is not None:
            _holding.reset(self._token)
            self._token = None
        self.release()

    def release(self) -> None:
        """Hand the case to the next turn: now, or when the turns before end (a turn that was
        never taken, e.g. its batch was cancelled). Does nothing the second time."""
        done = self._done
        if done is None or done.done():
            return
        before = self._before
        if before is not None and not before.done():
            before.add_done_callback(lambda _: self.release())
            return
        self._before = None
        done.set_result(None)
        if self._queue.get(self._case_id) is done:
            del self._queue[self._case_id]


class ConcurrentWriteError(Exception):
    """The case kept changing under us; the message is retried via the dead-letter topic."""


class CaseStore:
    """Applies domain functions to stored cases, publishes what they ask for, and carries out
    their effects."""

    def __init__(
        self,
        repo: CaseRepository,
        outbox: Outbox,
        indexes: Indexes,
        timers: Timers,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        settle_after: float | None = None,
    ) -> None:
        self._repo = repo
        self._outbox = outbox
        self._indexes = indexes
        self._timers = timers
        self._clock = clock
        self._turns: dict[str, asyncio.Future[None]] = {}  # case → its last turn's end
        # Exactly as stored: only versions that `get` returned or `save` wrote.
        self._recent: Recent[str, domain.Case] = Recent(REMEMBERED_CASES)
        # None: record a done outbox at once. Else: case → (version whose outbox and effects are
        # done, monotonic time to record it), see the module docstring.
        self._settle_after = settle_after
        self._unsettled: dict[str, tuple[int, float]] = {}
        # Case → version whose outbox this process is publishing. Only a change re-entered from
        # that publishing (an in-memory test broker delivers at once, e.g. a supervision order
        # to our own subscriber) sees it: any other waits for the case's lock.
        self._flushing: dict[str, int] = {}

    @property
    def repo(self) -> CaseRepository:
        return self._repo

    @property
    def indexes(self) -> Indexes:
        return self._indexes

    async def apply(self, case_id: str, change: Change) -> domain.Case:
        async with self._turn(case_id):
            case, failures = await self._apply(case_id, [change], _UNREAD)
        if failures:
            raise failures[0]
        return case

    async def apply_many(
        self, changes: Sequence[tuple[str, Change]]
    ) -> list[domain.Case | Exception]:
        """Apply a batch of changes (e.g. the messages of one poll of a topic): the changes of
        one case one after the other, in order, written as one version; different cases side by
        side. Returns, for each change, the case after it was applied or why it failed: a change
        that raises is left out (the others of its case still apply), and a case whose write
        fails fails all its changes."""
        return await self.begin_many(changes)

    def begin_many(
        self, changes: Sequence[tuple[str, Change]]
    ) -> asyncio.Task[list[domain.Case | Exception]]:
        """`apply_many`, begun: the batch's turns at its cases are taken before this returns, so
        the changes of a batch begun after it come after its own; the task applies them."""
        by_case: dict[str, list[int]] = {}
        for index, (case_id, _) in enumerate(changes):
            by_case.setdefault(case_id, []).append(index)
        turns = {case_id: self._turn(case_id) for case_id in by_case}
        task = asyncio.ensure_future(self._apply_batch(changes, by_case, turns))

        # A turn not taken (the task was cancelled before it came) is handed on all the same.
        def hand_on(_: object) -> None:
            for turn in turns.values():
                turn.release()

        task.add_done_callback(hand_on)
        return task

    async def _apply_batch(
        self,
        changes: Sequence[tuple[str, Change]],
        by_case: dict[str, list[int]],
        turns: dict[str, _Turn],
    ) -> list[domain.Case | Exception]:
        results: list[domain.Case | Exception] = [RuntimeError("not applied")] * len(changes)
        # The cases this process has not seen are read together (most are new: one lookup for
        # all). A base read here is only a guess, as a remembered one is (see _apply).
        unseen = [case_id for case_id in by_case if self._recent.get(case_id) is None]
        try:
            bases = await self._repo.get_many(unseen) if len(unseen) > 1 else {}
        except Exception:
            log.exception("reading %d cases together failed; reading them one by one", len(unseen))
            bases = {}

        async def apply_case(case_id: str, indexes: list[int]) -> None:
            try:
                async with turns[case_id]:
                    chain = [changes[i][1] for i in indexes]
                    case, failures = await self._apply(case_id, chain, bases.get(case_id, _UNREAD))
            except Exception as exc:
                for i in indexes:
                    results[i] = exc
                return
            for position, i in enumerate(indexes):
                results[i] = failures.get(position, case)

        await asyncio.gather(*(apply_case(c, indexes) for c, indexes in by_case.items()))
        return results

    def _turn(self, case_id: str) -> _Turn:
        """`async with` it: one change per case at a time in this process (the subscribers of
        different topics run concurrently), in the order the turns were made; across replicas
        the store's compare-and-set decides."""
        return _Turn(self._turns, case_id)

    async def _apply(
        self, case_id: str, chain: Sequence[Change], read: object
    ) -> tuple[domain.Case, dict[int, Exception]]:
        """Apply `chain` to the case and write the result as its next version; the case, and the
        changes that raised (by position; left out). `read`: the case as just read (None: there
        was none), or `_UNREAD`."""
        for attempt in range(MAX_ATTEMPTS):
            if attempt:  # another writer (replica) won: back off a little, with jitter
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))
                read = _UNREAD
            case = self._recent.get(case_id)
            if case is None:
                if read is _UNREAD:
                    read = await self._repo.get(case_id)
                case = read if isinstance(read, domain.Case) else domain.new_case(case_id)
                if case.version:
                    self._recent.put(case_id, case)
            if case.version in (self._unsettled.get(case_id, (0,))[0], self._flushing.get(case_id)):
                # Its outbox is published and its effects done, only not yet recorded (or being
                # published by the change this one re-entered from): the next version leaves them
                # out.
                case = domain.evolve(case, outbox=(), effects={})
            updated, failures = case, {}
            for position, change in enumerate(chain):
                try:
                    updated = change(updated)
                except Exception as exc:
                    failures[position] = exc
            if updated is case:
                if case.outbox or case.effects:  # a crash left them: finish them now
                    await self._flush(case)
                return case, failures
            if updated.version != case.version + 1:  # several changes: one version
                updated = domain.evolve(
                    _without_idle_cancels(case, updated), version=case.version + 1
                )
            if await self._repo.save(updated, expected_version=case.version):
                self._recent.put(case_id, updated)
                await self._flush(updated)
                return updated, failures
            self._recent.forget(case_id)
        raise ConcurrentWriteError(f"case {case_id}: {MAX_ATTEMPTS} conflicting writes in a row")

    async def _flush(self, case: domain.Case) -> None:
        # Done and published before being removed from the case: a crash in between does them
        # again, with idempotent effects and the same event ids (consumers ignore the repeat).
        # Effects first: the index that routes a citizen's answer to the callback question
        # exists before the question is published. The effects (each on its own timer or index
        # entry) run side by side; all messages are handed to the producer before waiting for
        # their acknowledgements.
        outer = self._flushing.get(case.case_id)
        self._flushing[case.case_id] = case.version
        try:
            await _all(self._effect(case, key, value) for key, value in case.effects.items())
            await self._outbox.send_all(case.outbox)
        finally:
            if outer is None:
                del self._flushing[case.case_id]
            else:
                self._flushing[case.case_id] = outer
        if not case.outbox and not case.effects:
            return
        if self._settle_after is None:
            await self._record_done(case)
        else:
            self._unsettled[case.case_id] = (case.version, time.monotonic() + self._settle_after)

    async def _record_done(self, case: domain.Case) -> None:
        done = without_outbox(case, [o.message.event_id for o in case.outbox], list(case.effects))
        # Another writer may have written that version first: it carries them and does them
        # again (same event ids, idempotent effects).
        if await self._repo.save(done, expected_version=case.version):
            self._recent.put(case.case_id, done)
        else:
            self._recent.forget(case.case_id)

    async def settle(self, *, everything: bool = False) -> int:
        """Record the done outboxes whose time has come (all of them with `everything`, e.g. at
        shutdown); the number of versions written. A case changed since needs none: its new
        version left them out."""
        now = time.monotonic()
        due = [(c, v) for c, (v, at) in list(self._unsettled.items()) if everything or at <= now]

        async def record(case_id: str, version: int) -> bool:
            async with self._turn(case_id):
                if self._unsettled.get(case_id, (0,))[0] != version:
                    return False  # done again since, with a later due time
                del self._unsettled[case_id]
                case = self._recent.get(case_id) or await self._repo.get(case_id)
                if case is None or case.version != version:
                    return False
                await self._record_done(case)
                return True

        # Side by side: the versions go to the store together (one insert for all, not one
        # round trip each). A failure is raised once all have ended; those not written are
        # recorded by their case's next version, or done again after a crash.
        written = 0
        failure: BaseException | None = None
        for result in await asyncio.gather(*(record(c, v) for c, v in due), return_exceptions=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                written += result
        if failure is not None:
            raise failure
        return written

    async def run_settling(self, interval: float = 0.5) -> None:
        """`settle` every `interval` seconds until cancelled; at shutdown, after cancelling it,
        call `settle(everything=True)`."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.settle()
            except Exception:
                log.exception("recording done outboxes failed; retrying")

    async def _effect(self, case: domain.Case, key: str, value: dict[str, Any]) -> None:
        kind, _, name = key.partition(":")
        if kind == "timer":
            tkey = timer_key(case.case_id, name)
            if value.get("due_at"):
                due = dt.datetime.fromisoformat(value["due_at"])
                await self._timers.schedule(tkey, due, value["payload"], now=self._clock())
            else:
                await self._timers.cancel(tkey, now=self._clock())
        elif kind == "unit":
            await self._indexes.add_unit_case(value["unit"], case.case_id)
        elif kind == "await":
            await self._indexes.set_awaiting(key, value.get("case_id"))
        else:
            raise ValueError(f"case {case.case_id}: unknown effect {key!r}")


def _without_idle_cancels(base: domain.Case, updated: domain.Case) -> domain.Case:
    """`updated` (several changes on `base`) without the cancels of clocks that were not running
    before them: started and stopped within the changes (accepted, then progress reported, in
    one poll), their timer was never written, and a cancel would cost the store a lookup. Kept
    when `base` does not know its clocks (a case stored before `clocks`)."""
    if base.clocks is None:
        return updated
    idle = {
        key
        for key, value in updated.effects.items()
        if key.startswith("timer:")
        and value.get("due_at") is None
        and key not in base.effects
        and key.removeprefix("timer:") not in base.clocks
    }
    if not idle:
        return updated
    return domain.evolve(
        updated, effects={k: v for k, v in updated.effects.items() if k not in idle}
    )


async def _all(steps: Iterable[Awaitable[None]]) -> None:
    """Run `steps` side by side; raise the first failure once all have ended."""
    steps = list(steps)
    if len(steps) <= 1:  # no task to make
        for step in steps:
            await step
        return
    for result in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


class Tracker:
    """The registered subscribers' store, and the sweep that fires the clocks."""

    def __init__(
        self, store: CaseStore, timers: Timers, rules: domain.Rules, registry: CollectorRegistry
    ) -> None:
        self.store = store
        self.timers = timers
        self.rules = rules
        self.registry = registry
        self.fired = Counter(
            "fengqiao_tracker_timers_fired_total",
            "Clocks that ran out",
            ["clock"],
            registry=registry,
        )
        self.sweep_seconds = Histogram(
            "fengqiao_tracker_sweep_seconds", "Time of one timer sweep", registry=registry
        )
        self.last_sweep = Gauge(
            "fengqiao_tracker_last_sweep_timestamp", "When the last sweep ended", registry=registry
        )
        self.pending_timers = Gauge(
            "fengqiao_tracker_pending_timers", "Timers waiting to wake", registry=registry
        )
        self.overdue_cases = Gauge(
            "fengqiao_tracker_overdue_cases", "Open cases past their deadline", registry=registry
        )

    async def fire(self, timer: Timer) -> None:
        payload = timer.payload
        fired = domain.TimerFired(
            case_id=payload["case_id"],
            clock=payload["clock"],
            payload=payload,
            occurred_at=max(timer.due_at, dt.datetime.now(dt.UTC)),
        )
        await self.store.apply(fired.case_id, lambda c: domain.on_timer(c, fired, self.rules))
        self.fired.labels(fired.clock).inc()

    async def sweep(self, now: dt.datetime | None = None, *, limit: int = 500) -> int:
        """Fire every clock that is due (one pass); the number fired."""
        started = time.perf_counter()
        handled = await fire_due(
            self.timers, now or dt.datetime.now(dt.UTC), self.fire, limit=limit
        )
        self.sweep_seconds.observe(time.perf_counter() - started)
        self.last_sweep.set_to_current_time()
        return handled

    async def refresh_gauges(self) -> None:
        """Pending timers and overdue cases: counted, so they are right across replicas."""
        self.pending_timers.set(await self.timers.pending())
        self.overdue_cases.set(await self.store.repo.overdue())

    async def run_sweeps(self, interval: float, gauges_every: float = 60.0) -> None:
        """Sweep every `interval` seconds until cancelled; a failing sweep is logged and retried
        (its claims run out and fire again). The gauges are counted every `gauges_every`."""
        counted = 0.0
        while True:
            try:
                while await self.sweep() >= 500:
                    pass  # a backlog (after downtime): go on at once
                if time.monotonic() - counted >= gauges_every:
                    counted = time.monotonic()
                    await self.refresh_gauges()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer sweep failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)


def register(
    broker: KafkaBroker,
    repo: CaseRepository,
    *,
    indexes: Indexes,
    timers: Timers,
    rules: domain.Rules,
    group_id: str,
    registry: CollectorRegistry,
    settle_after: float | None = None,
    outbox: Outbox | None = None,
) -> Tracker:
    """Register the tracker's subscribers on `broker` and declare its publishers (PUBLISHES).
    Cases' outboxes go through `outbox` when given (the app's `DirectProducer` of PUBLISHES),
    else through the declared publishers (as an in-memory test broker needs)."""
    applied = Counter(
        "fengqiao_tracker_messages_total", "Messages applied to cases", ["topic"], registry=registry
    )
    declared = DeclaredPublishers.declare(broker, PUBLISHES)
    store = CaseStore(repo, outbox or declared, indexes, timers, settle_after=settle_after)
    tracker = Tracker(store, timers, rules, registry)

    def subscriber(topic: Topic, description: str) -> Callable[[BatchHandler], BatchHandler]:
        # What one poll returned, at once: the messages of one case one after the other and
        # written as one version, different cases side by side (CaseStore.apply_many).
        return batch_subscriber(
            broker,
            topic,
            group_id=group_id,
            action="track",
            description=description,
            max_records=BATCH_RECORDS,
        )

    def apply_all(
        topic: Topic,
        changes: list[tuple[str, Change]],
        positions: list[int] | None = None,
        failed: BatchFailures | None = None,
    ) -> asyncio.Task[BatchFailures]:
        """Begin applying the changes (their turns at their cases are taken at once, so the
        subscriber can be handed its next poll meanwhile); the task of the failures by position
        in the batch (`positions[i]` for the i-th change, default i), with those `failed`
        before."""
        applying = store.begin_many(changes)

        async def failures() -> BatchFailures:
            found = BatchFailures(failed or {})
            results = await applying
            for i, result in enumerate(results):
                if isinstance(result, Exception):
                    found[positions[i] if positions is not None else i] = result
            applied.labels(topic.name).inc(sum(not isinstance(r, Exception) for r in results))
            return found

        return asyncio.ensure_future(failures())

    @subscriber(
        APPEALS,
        "Open a case for a new appeal (and ask for its acknowledgment); a citizen's answer to a "
        "callback question closes or reopens the case it answers.",
    )
    async def on_appeals(appeals: list[AppealNormalized]) -> asyncio.Task[BatchFailures]:
        keys = [domain.awaiting_key(a.platform, a.author.id) for a in appeals]
        waiting = await indexes.awaiting(keys)
        failures = BatchFailures()
        answers = [i for i, key in enumerate(keys) if key in waiting]
        answered = set()
        if answers:  # few: applied before the poll's new cases are begun
            results = await store.apply_many(
                [(waiting[keys[i]], answer(appeals[i])) for i in answers]
            )
            for i, result in zip(answers, results, strict=True):
                if isinstance(result, Exception):
                    failures[i] = result
                elif result.has_processed(appeals[i].event_id):
                    answered.add(i)
            applied.labels(APPEALS.name).inc(len(answered))
        opening = [
            i
            for i, appeal in enumerate(appeals)
            if appeal.is_appeal and i not in answered and i not in failures
        ]
        return apply_all(
            APPEALS, [(appeals[i].case_id, opens(appeals[i])) for i in opening], opening, failures
        )

    def answer(appeal: AppealNormalized) -> Change:
        return lambda c: domain.record_citizen_reply(c, appeal, rules=rules) or c

    def opens(appeal: AppealNormalized) -> Change:
        return lambda c: domain.open_case(c, appeal, rules=rules)

    @subscriber(DISPATCH_ORDERS, "Record one hop of a dispatch and start its clocks.")
    async def on_dispatch(orders: list[DispatchOrdered]) -> asyncio.Task[BatchFailures]:
        return apply_all(
            DISPATCH_ORDERS, [(o.case_id, _bound(domain.record_dispatch, o, rules)) for o in orders]
        )

    @subscriber(REPLIES_SENT, "Record what the platform answered to a reply.")
    async def on_reply(sent: list[ReplySent]) -> asyncio.Task[BatchFailures]:
        return apply_all(
            REPLIES_SENT, [(r.case_id, _bound(domain.record_reply, r, rules)) for r in sent]
        )

    @subscriber(COORDINATION_REQUESTS, "Record a request to an outside agency (横协调).")
    async def on_coordination(requests: list[CoordinationRequested]) -> asyncio.Task[BatchFailures]:
        return apply_all(
            COORDINATION_REQUESTS,
            [(r.case_id, _bound(domain.record_coordination, r, rules)) for r in requests],
        )

    @subscriber(SUPERVISION_ORDERS, "Record an upper tier's supervision order (纵督促).")
    async def on_supervision(orders: list[SupervisionOrdered]) -> asyncio.Task[BatchFailures]:
        return apply_all(
            SUPERVISION_ORDERS,
            [(o.case_id, _bound(domain.record_supervision, o, rules)) for o in orders],
        )

    @subscriber(
        UNIT_ACTIONS,
        "Apply what an office did (签收, progress, 办结, 退单, extensions, notes); an action the "
        "case no longer allows is recorded as refused.",
    )
    async def on_action(actions: list[UnitActed]) -> asyncio.Task[BatchFailures]:
        return apply_all(UNIT_ACTIONS, [(a.case_id, _bound(domain.act, a, rules)) for a in actions])

    return tracker


def _bound(apply: Callable[..., domain.Case], message: Any, rules: domain.Rules) -> Change:
    """The change a message makes: `apply(case, message, rules=rules)`."""
    return lambda case: apply(case, message, rules=rules)
