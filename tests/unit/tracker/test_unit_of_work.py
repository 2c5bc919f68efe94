"""The unit of work's later steps: recording done outboxes after a burst (settling), and each
case's turns (one change at a time, in the order the turns were taken)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fengqiao.runtime.messaging import DeclaredPublishers
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import (
    InMemoryCaseRepository,
)
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers
from fengqiao.services.tracker.unit_of_work import UnitOfWork
from tests.unit.tracker.test_case_store import (
    CASE,
    RULES,
    RecordingPublisher,
    appeal,
    order,
    topics,
)


@pytest.fixture
def publishers() -> dict[str, RecordingPublisher]:
    return {"case.events": RecordingPublisher(), "replies.requested": RecordingPublisher()}


# --------------------------------------------------------------------------- settling later


async def test_with_settle_after_a_burst_records_its_done_outbox_once(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = InMemoryCaseRepository()
    store = UnitOfWork(
        repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers(), settle_after=60
    )
    await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    # Published, but the stored version still lists it until it settles.
    first_outbox = set(repo.docs[CASE]["outbox"])
    assert repo.docs[CASE]["version"] == 1 and first_outbox
    assert published_ids(publishers) == first_outbox
    await store.apply(CASE, lambda c: domain.record_dispatch(c, order(), rules=RULES))
    # The next change leaves the done outbox out of its version, and publishes only its own.
    stored = repo.docs[CASE]
    assert stored["version"] == 2
    assert stored["outbox"] and not first_outbox & set(stored["outbox"])
    assert published_ids(publishers) == first_outbox | set(stored["outbox"])
    assert sum(len(p.published) for p in publishers.values()) == len(published_ids(publishers))
    assert await store.settle() == 0  # not due yet
    assert await store.settle(everything=True) == 1
    stored = repo.docs[CASE]
    assert (stored["version"], stored["outbox"], stored["effects"]) == (3, {}, [])
    assert await store.settle(everything=True) == 0  # nothing left


async def test_settling_records_every_case_though_one_write_fails(
    publishers: dict[str, RecordingPublisher],
) -> None:
    class FailingFor(InMemoryCaseRepository):
        """Refuses to write the settled version of one case, as a store error would."""

        async def save(self, case: domain.Case, *, expected_version: int) -> bool:
            if case.case_id == "c-2" and case.version == 2:
                raise ConnectionError("the store went away")
            return await super().save(case, expected_version=expected_version)

    repo = FailingFor()
    store = UnitOfWork(
        repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers(), settle_after=60
    )
    for case_id in ("c-1", "c-2", "c-3"):
        await store.apply(case_id, lambda c: domain.open_case(c, appeal(), rules=RULES))
    with pytest.raises(ConnectionError, match="went away"):
        await store.settle(everything=True)
    assert {c: repo.docs[c]["version"] for c in ("c-1", "c-2", "c-3")} == {
        "c-1": 2,
        "c-2": 1,  # still lists its outbox: the next change leaves it out, or a restart redoes it
        "c-3": 2,
    }
    assert repo.docs["c-1"]["outbox"] == {} and repo.docs["c-2"]["outbox"]
    assert await store.settle(everything=True) == 0  # not retried: no longer remembered


def published_ids(publishers: dict[str, RecordingPublisher]) -> set[str]:
    return {m.event_id for p in publishers.values() for m, _ in p.published}


async def test_a_settled_case_redelivered_publishes_nothing_again(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = InMemoryCaseRepository()
    store = UnitOfWork(
        repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers(), settle_after=60
    )
    change = lambda c: domain.open_case(c, appeal(), rules=RULES)  # noqa: E731
    await store.apply(CASE, change)
    before = topics(publishers)
    await store.apply(CASE, change)  # a re-delivery before it settled
    assert topics(publishers) == before
    assert repo.docs[CASE]["version"] == 1


async def test_a_store_that_did_not_settle_publishes_the_outbox_again_after_a_restart(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = InMemoryCaseRepository()
    first = UnitOfWork(
        repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers(), settle_after=60
    )
    await first.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    # `first` stops without settling (a crash): the next process finishes the outbox (same
    # event ids, so consumers drop the repeat) and records it.
    later: dict[str, RecordingPublisher] = {t: RecordingPublisher() for t in publishers}
    second = UnitOfWork(repo, DeclaredPublishers(later), InMemoryIndexes(), InMemoryTimers())
    await second.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    assert topics(later) == topics(publishers)
    assert repo.docs[CASE]["outbox"] == {}


# --------------------------------------------------------------------------- a case's turns


def memory_store(
    publishers: dict[str, RecordingPublisher], repo: InMemoryCaseRepository | None = None
) -> UnitOfWork:
    return UnitOfWork(
        repo or InMemoryCaseRepository(),
        DeclaredPublishers(publishers),
        InMemoryIndexes(),
        InMemoryTimers(),
    )


async def test_a_case_is_held_by_one_change_at_a_time_and_its_queue_goes_with_its_last_turn(
    publishers: dict[str, RecordingPublisher],
) -> None:
    store = memory_store(publishers)
    order: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with store.turns.take(CASE):
            order.append("first in")
            async with store.turns.take(CASE):  # re-entered (our own publish): no deadlock
                order.append("first again")
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with store.turns.take(CASE):
            order.append("second in")

    holding = asyncio.ensure_future(first())
    await asyncio.sleep(0)
    waiting, cancelled = asyncio.ensure_future(second()), asyncio.ensure_future(second())
    await asyncio.sleep(0)
    cancelled.cancel()  # while it waits for the lock
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holding, waiting)
    assert cancelled.cancelled()
    assert order == ["first in", "first again", "first out", "second in"]
    assert store.turns.queue == {}


class SlowFirstReadRepository(InMemoryCaseRepository):
    """The first read of several cases together answers last (as one of two concurrent queries
    to a store may)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_many(self, case_ids: Any) -> dict[str, domain.Case | None]:
        self.reads += 1
        if self.reads == 1:
            await asyncio.sleep(0.05)
        return await super().get_many(case_ids)


async def test_a_batch_begun_later_applies_its_changes_of_a_case_after_the_earlier_batch(
    publishers: dict[str, RecordingPublisher],
) -> None:
    """A pipelined subscriber begins the next poll while the last is still being read and
    written: the case's turns were taken when each batch began, so the order is the polls'."""
    store = memory_store(publishers, SlowFirstReadRepository())
    other = "c-2"
    opened_other = lambda c: domain.open_case(  # noqa: E731
        c, appeal("appeal-2").model_copy(update={"case_id": other}), rules=RULES
    )
    first = store.begin_many(
        [(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES)), (other, opened_other)]
    )
    second = store.begin_many(
        [
            (other, lambda c: c),
            (CASE, lambda c: domain.record_dispatch(c, order(), rules=RULES)),
        ]
    )
    [opened, _], [_, dispatched] = await asyncio.gather(first, second)
    assert isinstance(opened, domain.Case) and isinstance(dispatched, domain.Case)
    assert opened.version == 1 and dispatched.version > opened.version
    assert [e.event for e in dispatched.timeline] == ["case.opened", "case.dispatched"]
    assert store.turns.queue == {}


async def test_a_batch_cancelled_before_it_began_hands_its_cases_on(
    publishers: dict[str, RecordingPublisher],
) -> None:
    store = memory_store(publishers)
    cancelled = store.begin_many([(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))])
    later = store.begin_many([(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))])
    cancelled.cancel()
    [case] = await asyncio.wait_for(later, 1)
    assert isinstance(case, domain.Case) and case.version == 1
    assert cancelled.cancelled() and store.turns.queue == {}
