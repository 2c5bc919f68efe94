"""What the tracker's store and timers remember between changes is only a guess: a replica that
remembers an old version must still see (and keep) what another replica wrote meanwhile."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fengqiao.contracts import Outgoing, ReplyPurpose, ReplySent
from fengqiao.runtime.store import Recent
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import PENDING, MemoryStore, StoredTimers
from fengqiao.services.tracker.unit_of_work import UnitOfWork

RULES = domain.Rules.default()
AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
CASE = "c-1"


# --------------------------------------------------------------------------- Recent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_recent_forgets_the_oldest_beyond_its_size() -> None:
    recent: Recent[str, int] = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    recent.put("a", 3)  # put again: now the newest
    recent.put("c", 4)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (3, None, 4)
    assert len(recent) == 2


def test_recent_forgets_after_its_time_to_live() -> None:
    clock = Clock()
    recent: Recent[str, int] = Recent(10, ttl=20.0, clock=clock)
    recent.put("a", 1)
    recent.put("b", 2, at=clock.now - 15)
    clock.now += 10
    assert (recent.get("a"), recent.get("b")) == (1, None)
    clock.now += 10
    assert recent.get("a") is None
    recent.put("a", 5)
    recent.forget("a")
    assert recent.get("a") is None and len(recent) == 0


def test_recent_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one entry, not 0"):
        Recent(0)


# --------------------------------------------------------------------------- UnitOfWork


class Discard:
    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        list(messages)


def failed_reply(i: int, case_id: str = CASE) -> ReplySent:
    return ReplySent(
        event_id=f"sent-{case_id}-{i}",
        occurred_at=AT,
        producer="notifier",
        case_id=case_id,
        request_event_id=f"req-{i}",
        idempotency_key=f"{case_id}:progress:{i}",
        purpose=ReplyPurpose.PROGRESS,
        status="failed",
        error="403",
    )


def record(i: int, case_id: str = CASE) -> domain.Change:
    return lambda c: domain.record_reply(c, failed_reply(i, case_id), rules=RULES)


class CountingRepository(InMemoryCaseRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, case_id: str) -> domain.Case | None:
        self.reads += 1
        return await super().get(case_id)


class BatchCountingRepository(CountingRepository):
    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.fail = fail

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, domain.Case | None]:
        self.batches.append(list(case_ids))
        if self.fail:
            raise ConnectionError("the store went away")
        return {c: await InMemoryCaseRepository.get(self, c) for c in case_ids}


def replica(repo: InMemoryCaseRepository) -> UnitOfWork:
    return UnitOfWork(repo, Discard(), InMemoryIndexes(), StoredTimers(MemoryStore()))


async def test_a_case_written_here_is_not_read_again_for_the_next_change() -> None:
    repo = CountingRepository()
    store = replica(repo)
    for i in range(3):
        await store.apply(CASE, record(i))
    assert repo.reads == 1  # the first change only
    case = await repo.get(CASE)
    assert case is not None and len(case.replies) == 3


@pytest.mark.parametrize("fail", [False, True])
async def test_the_cases_of_a_batch_not_seen_here_are_read_together(fail: bool) -> None:
    repo = BatchCountingRepository(fail=fail)
    store = replica(repo)
    await store.apply(CASE, record(0))  # seen here: remembered
    await replica(repo).apply("c-3", record(0, "c-3"))  # written by another replica
    reads = repo.reads
    changes = [(CASE, record(1)), ("c-2", record(1, "c-2")), ("c-3", record(1, "c-3"))]
    changes.append(("c-2", record(2, "c-2")))
    results = await store.apply_many(changes)
    assert repo.batches == [["c-2", "c-3"]]  # one read of both (none for the one remembered)
    # When reading them together fails, each is read on its own.
    assert repo.reads == reads + (2 if fail else 0)
    assert [r.case_id for r in results if isinstance(r, domain.Case)] == [c for c, _ in changes]
    for case_id, replies in ((CASE, 2), ("c-2", 2), ("c-3", 2)):
        case = await repo.get(case_id)
        assert case is not None and len(case.replies) == replies


async def test_a_replica_remembering_an_old_version_keeps_what_another_one_wrote() -> None:
    repo = CountingRepository()
    first, second = replica(repo), replica(repo)
    await first.apply(CASE, record(1))  # `first` remembers this version
    await second.apply(CASE, record(2))  # ...which is no longer the latest
    await first.apply(CASE, record(3))  # its guess fails to insert: it reads and applies again
    case = await repo.get(CASE)
    assert case is not None
    assert sorted(case.replies) == [f"{CASE}:progress:{i}" for i in (1, 2, 3)]
    assert {f"sent-{CASE}-{i}" for i in (1, 2, 3)} <= case.processed
    assert case.outbox == () and case.effects == {}


# --------------------------------------------------------------------------- timers


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        self.gets += 1
        return await super().get(collection, doc_id)


T0 = datetime(2026, 3, 10, 1, tzinfo=UTC)


async def test_a_new_timer_and_its_cancellation_need_no_read() -> None:
    store = CountingStore()
    timers = StoredTimers(store)
    await timers.schedule("c1:ack", T0 + timedelta(hours=1), {"n": 1}, now=T0)
    assert await timers.cancel("c1:ack", now=T0)
    assert store.gets == 0


async def test_a_timer_known_to_be_cancelled_is_cancelled_if_another_replica_revived_it() -> None:
    store = MemoryStore()
    here, there = StoredTimers(store), StoredTimers(store)
    await here.schedule("c1:progress", T0 + timedelta(hours=1), {"n": 1}, now=T0)
    assert await here.cancel("c1:progress", now=T0)  # `here` remembers it cancelled
    await there.schedule("c1:progress", T0 + timedelta(hours=2), {"n": 2}, now=T0)
    assert await here.cancel("c1:progress", now=T0)
    assert await there.get("c1:progress") is None
    assert await here.claim_due(T0 + timedelta(days=1), 10, timedelta(minutes=5)) == []


async def test_a_timer_rescheduled_from_a_stale_memory_replaces_the_latest() -> None:
    store = MemoryStore()
    here, there = StoredTimers(store), StoredTimers(store)
    await here.schedule("c1:sign", T0 + timedelta(hours=1), {"level": 1}, now=T0)
    await there.schedule("c1:sign", T0 + timedelta(hours=2), {"level": 2}, now=T0)
    timer = await here.schedule("c1:sign", T0 + timedelta(hours=3), {"level": 3}, now=T0)
    assert (timer.version, timer.state) == (3, PENDING)
    latest = await there.get("c1:sign")
    assert latest is not None and latest.payload == {"level": 3}
