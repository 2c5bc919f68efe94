"""The tracker's unit of work: a change of a case, from reading it to doing what it asks.

`UnitOfWork.apply` (a clock) or `begin_many` (what one poll of a topic returned): take the case's
turn (`turns.py`), load the case, let the domain compute the new case (all of the poll's changes
of that case, in order), write it as one version (compare-and-set, retried on a concurrent
write), carry out its effects and publish its outbox, then record that they are done. Different
cases go side by side; a poll's task is handed back once its turns are taken, so one poll's
writes overlap the next one's computing and each case still takes its changes in order.

The base of a change is the version this process last wrote (or read) of the case, not a new
read: the messages of one case come in bursts. It is only a guess: if another replica wrote the
case meanwhile, the insert of the next version fails and the case is read again (no version is
ever deleted, so an insert is a true compare-and-set from any base: adapters/cases.py).

Recording that an outbox is done is a version of its own. With `settle_after` it waits that long
(`settle`): the next change of the case, which comes soon in a burst, leaves the done outbox out
of its version anyway, so most cases write that version once, at the end of a burst. Until then
the stored version still lists the done outbox; a crash in between publishes it again (same
event ids, idempotent effects), as a crash before the record always did.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from fengqiao.runtime import tracing
from fengqiao.runtime.logs import bind
from fengqiao.runtime.messaging import Outages, Outbox, is_transient
from fengqiao.runtime.store import Recent
from fengqiao.runtime.tracing import Traced
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import CaseRepository, without_outbox
from fengqiao.services.tracker.adapters.indexes import Indexes
from fengqiao.services.tracker.adapters.timers import Timers, timer_key
from fengqiao.services.tracker.domain import (
    AwaitCitizen,
    CancelTimer,
    Effect,
    ScheduleTimer,
    ShowToUnit,
)
from fengqiao.services.tracker.turns import Turn, Turns

log = logging.getLogger("fengqiao.tracker")

MAX_ATTEMPTS = 50
CHANGES = "case changes"  # what the outages' log and counter call the changes of cases
# Cases whose last written version is reused as the next change's base (a guess, see above).
REMEMBERED_CASES = 10_000

Change = Callable[[domain.Case], domain.Case]
Results = list[domain.Case | Exception]
_UNREAD = object()  # a case not read yet


class ConcurrentWriteError(Exception):
    """The case kept changing under us; the message is retried via the dead-letter topic."""


class UnitOfWork:
    """Applies domain changes to stored cases, carries out their effects and publishes their
    outboxes (see the module docstring)."""

    def __init__(
        self,
        repo: CaseRepository,
        outbox: Outbox,
        indexes: Indexes,
        timers: Timers,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        settle_after: float | None = None,
        outages: Outages | None = None,
    ) -> None:
        self.repo, self.indexes = repo, indexes
        # A change that fails because the store or Kafka is away is tried again, holding its
        # turn at the case (the case's later changes wait for it: they stay in order).
        self.outages = outages or Outages("tracker")
        self._outbox, self._timers, self._clock = outbox, timers, clock
        self.turns = Turns()
        # Exactly as stored: only versions that `get` returned or `save` wrote.
        self._recent: Recent[str, domain.Case] = Recent(REMEMBERED_CASES)
        # None: record a done outbox at once. Else: case → (version whose outbox and effects are
        # done, monotonic time to record it), see the module docstring.
        self._settle_after = settle_after
        self._unsettled: dict[str, tuple[int, float]] = {}
        # Case → version whose outbox this process is publishing. Only a change re-entered from
        # that publishing (an in-memory test broker delivers at once, e.g. a supervision order
        # to our own subscriber) sees it: any other waits for the case's turn.
        self._flushing: dict[str, int] = {}

    async def apply(self, case_id: str, change: Change) -> domain.Case:
        async with self.turns.take(case_id):
            case, failures = await self.outages.retry(
                lambda: self._apply(case_id, [change], _UNREAD), CHANGES
            )
        if failures:
            raise failures[0]
        return case

    async def apply_many(
        self, changes: Sequence[tuple[str, Change]], traced: Traced | None = None
    ) -> Results:
        """Apply a batch of changes (e.g. the messages of one poll of a topic): the changes of
        one case one after the other, in order, written as one version; different cases side by
        side. Returns, for each change, the case after it was applied or why it failed: a change
        that raises is left out (the others of its case still apply), and a case whose write
        fails fails all its changes."""
        return await self.begin_many(changes, traced)

    def begin_many(
        self, changes: Sequence[tuple[str, Change]], traced: Traced | None = None
    ) -> asyncio.Task[Results]:
        """`apply_many`, begun: the batch's turns at its cases are taken before this returns, so
        the changes of a batch begun after it come after its own; the task applies them.
        `traced`: the span name and the trace context of each change's message (with tracing
        on): each case's work, and what its outbox publishes, goes on in its messages' trace."""
        by_case: dict[str, list[int]] = {}
        for index, (case_id, _) in enumerate(changes):
            by_case.setdefault(case_id, []).append(index)
        turns = {case_id: self.turns.take(case_id) for case_id in by_case}
        task = asyncio.ensure_future(self._apply_batch(changes, by_case, turns, traced))

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
        turns: dict[str, Turn],
        traced: Traced | None = None,
    ) -> Results:
        results: Results = [RuntimeError("not applied")] * len(changes)
        # The cases this process has not seen are read together (most are new: one lookup for
        # all). A base read here is only a guess, as a remembered one is (see _apply).
        unseen = [case_id for case_id in by_case if self._recent.get(case_id) is None]
        try:
            bases = await self.repo.get_many(unseen) if len(unseen) > 1 else {}
        except Exception as exc:  # each case is read (and an outage waited out) on its own
            log.warning(
                "reading %d cases together failed (%s: %s); reading them one by one",
                *(len(unseen), type(exc).__name__, exc),
                exc_info=not is_transient(exc),
            )
            bases = {}

        async def apply_case(case_id: str, indexes: list[int]) -> None:
            bind(case_id=case_id)  # its own task (gather): the lines logged for this case
            try:
                async with turns[case_id]:
                    chain = [changes[i][1] for i in indexes]
                    read = bases.get(case_id, _UNREAD)
                    with tracing.joined_by(traced, indexes, case_id=case_id):
                        case, failures = await self.outages.retry(
                            lambda: self._apply(case_id, chain, read), CHANGES
                        )
            except Exception as exc:
                for i in indexes:
                    results[i] = exc
                return
            for position, i in enumerate(indexes):
                results[i] = failures.get(position, case)

        await asyncio.gather(*(apply_case(c, indexes) for c, indexes in by_case.items()))
        return results

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
            case = await self._base(case_id, read)
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
            if await self.repo.save(updated, expected_version=case.version):
                self._recent.put(case_id, updated)
                await self._flush(updated)
                return updated, failures
            self._recent.forget(case_id)
        raise ConcurrentWriteError(f"case {case_id}: {MAX_ATTEMPTS} conflicting writes in a row")

    async def _base(self, case_id: str, read: object) -> domain.Case:
        """The case to change: the version remembered, or `read`, or read now; without the outbox
        and effects already done."""
        case = self._recent.get(case_id)
        if case is None:
            if read is _UNREAD:
                read = await self.repo.get(case_id)
            case = read if isinstance(read, domain.Case) else domain.new_case(case_id)
            if case.version:
                self._recent.put(case_id, case)
        if case.version in (self._unsettled.get(case_id, (0,))[0], self._flushing.get(case_id)):
            # Its outbox is published and its effects done, only not yet recorded (or being
            # published by the change this one re-entered from): the next version leaves them out.
            case = domain.evolve(case, outbox=(), effects={})
        return case

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
            await _all(self._carry_out(case.case_id, effect) for effect in case.effects.values())
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

    async def _carry_out(self, case_id: str, effect: Effect) -> None:
        match effect:
            case ScheduleTimer(step):
                key = timer_key(case_id, step.clock.value)
                await self._timers.schedule(key, step.due, step.payload(), now=self._clock())
            case CancelTimer(clock):
                await self._timers.cancel(timer_key(case_id, clock.value), now=self._clock())
            case ShowToUnit(unit):
                await self.indexes.add_unit_case(unit, case_id)
            case AwaitCitizen():
                await self.indexes.set_awaiting(effect.key, effect.case_id)

    async def _record_done(self, case: domain.Case) -> None:
        done = without_outbox(case, [o.message.event_id for o in case.outbox], list(case.effects))
        # Another writer may have written that version first: it carries them and does them
        # again (same event ids, idempotent effects).
        if await self.repo.save(done, expected_version=case.version):
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
            async with self.turns.take(case_id):
                if self._unsettled.get(case_id, (0,))[0] != version:
                    return False  # done again since, with a later due time
                del self._unsettled[case_id]
                case = self._recent.get(case_id) or await self.repo.get(case_id)
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
            try:  # an outage is waited out; those not recorded meanwhile are recorded by their
                # case's next version
                await self.outages.retry(self.settle, "recording done outboxes")
            except Exception:
                log.exception("recording done outboxes failed; retrying")


def _without_idle_cancels(base: domain.Case, updated: domain.Case) -> domain.Case:
    """`updated` (several changes on `base`) without the cancels of clocks that were not running
    before them: started and stopped within the changes (accepted, then progress reported, in
    one poll), their timer was never written, and a cancel would cost the store a lookup."""
    idle = {
        key
        for key, effect in updated.effects.items()
        if isinstance(effect, CancelTimer)
        and key not in base.effects
        and effect.clock not in base.clocks
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
