"""Group commit: inserts queued while one is in flight are written together, and each caller
learns its own outcome (inserted, `_id` taken, or the error of its batch)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError, WriteError

from fengqiao.runtime.store import GroupInsert


class FakeCollection:
    """Unique `_id`s; records each insert_many's batch; may fail on purpose."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.batches: list[list[str]] = []
        self.fail_with: Exception | None = None
        self.reject: set[str] = set()  # ids refused with a write error other than a duplicate

    async def insert_many(self, docs: list[dict[str, Any]], *, ordered: bool) -> None:
        assert ordered is False
        await asyncio.sleep(0.01)  # in flight long enough for others to queue
        self.batches.append([d["_id"] for d in docs])
        if self.fail_with is not None:
            raise self.fail_with
        errors = []
        for index, doc in enumerate(docs):
            if doc["_id"] in self.reject:
                errors.append({"index": index, "code": 2, "errmsg": "bad value"})
            elif doc["_id"] in self.docs:
                errors.append({"index": index, "code": 11000, "errmsg": "E11000 duplicate key"})
            else:
                self.docs[doc["_id"]] = doc
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(docs) - len(errors)})


class FakeDatabase(dict[str, FakeCollection]):
    def __missing__(self, name: str) -> FakeCollection:
        self[name] = FakeCollection()
        return self[name]


async def test_inserts_that_queue_up_are_written_in_one_batch() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    results = await asyncio.gather(*(group.insert("c", {"_id": f"d{i}"}) for i in range(50)))
    assert results == [True] * 50
    assert sorted(db["c"].docs) == sorted(f"d{i}" for i in range(50))
    assert [len(b) for b in db["c"].batches] == [50]
    # Those that come while a batch is in flight go together in the next one.
    first = asyncio.create_task(group.insert("c", {"_id": "e0"}))
    await asyncio.sleep(0.005)
    later = await asyncio.gather(*(group.insert("c", {"_id": f"e{i}"}) for i in range(1, 8)))
    assert await first and all(later)
    assert [len(b) for b in db["c"].batches] == [50, 1, 7]


async def test_racing_writers_of_one_id_one_wins_and_others_are_told() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    assert await group.insert("c", {"_id": "taken"})
    results = await asyncio.gather(*(group.insert("c", {"_id": "v2", "n": i}) for i in range(10)))
    assert results.count(True) == 1
    assert not await group.insert("c", {"_id": "taken"})


async def test_collections_are_written_separately() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    await asyncio.gather(group.insert("a", {"_id": "x"}), group.insert("b", {"_id": "x"}))
    assert db["a"].batches == [["x"]] and db["b"].batches == [["x"]]


async def test_a_batch_larger_than_the_maximum_is_split() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    group.MAX_BATCH = 10
    assert all(await asyncio.gather(*(group.insert("c", {"_id": f"d{i}"}) for i in range(25))))
    assert [len(b) for b in db["c"].batches] == [10, 10, 5]


async def test_another_write_error_fails_only_its_own_caller() -> None:
    db = FakeDatabase()
    db["c"].reject = {"bad"}
    group = GroupInsert(db)  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(group.insert("c", {"_id": i}) for i in ("first", "ok", "bad", "fine")),
        return_exceptions=True,
    )
    assert results[:2] == [True, True] and results[3] is True
    assert isinstance(results[2], WriteError) and "bad value" in str(results[2])


async def test_a_failed_write_fails_every_caller_of_its_batch_and_the_next_batch_goes_on() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    db["c"].fail_with = AutoReconnect("connection lost")
    results = await asyncio.gather(
        *(group.insert("c", {"_id": f"d{i}"}) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, AutoReconnect) for r in results)
    db["c"].fail_with = None
    assert await group.insert("c", {"_id": "d0"})


async def test_a_cancelled_writer_leaves_no_caller_waiting() -> None:
    db = FakeDatabase()
    group = GroupInsert(db)  # type: ignore[arg-type]
    callers = [asyncio.create_task(group.insert("c", {"_id": f"d{i}"})) for i in range(3)]
    await asyncio.sleep(0)  # the writer is in flight with d0, d1 and d2 queued
    for writer in list(group._writers.values()):
        writer.cancel()
    for caller in callers:
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert group._writers == {}
