"""Compaction of versioned records below the latest (fengqiao/runtime/store/versions.py): the
versions become stubs, every `_id` stays, so the latest is still found from scratch and a writer
on any stale base is still refused."""

from __future__ import annotations

from fengqiao.runtime.store import MemoryRecords, Versions


def versions(records: MemoryRecords) -> Versions:
    return Versions(records, "v", id_of=lambda k, n: f"{k}:{n:08d}", key_field="key", remember=10)


def doc(n: int) -> dict[str, object]:
    return {"_id": f"k:{n:08d}", "key": "k", "version": n, "body": "x" * 100}


async def test_a_range_of_versions_becomes_stubs_and_the_rest_stays() -> None:
    records = MemoryRecords()
    writer = versions(records)
    for n in range(1, 101):
        assert await writer.insert("k", n, doc(n))
    await writer.compact("k", 92, since=28)
    stubs = {d["version"] for d in records.collections["v"].values() if "stub" in d}
    assert stubs == set(range(28, 92))
    assert len(records.collections["v"]) == 100  # every _id stays
    assert await versions(records).latest("k") == doc(100)  # from scratch, through stubs
    assert not await writer.insert("k", 40, doc(40))  # a stale writer on a stubbed base
    await writer.compact("k", 100)  # ended: everything below the latest
    assert sum("stub" in d for d in records.collections["v"].values()) == 99
    assert await versions(records).latest("k") == doc(100)
