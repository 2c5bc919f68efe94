"""Dead letters as the operator sees them: grouped by origin, masked, replayed once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from fengqiao.contracts import DeadLetter
from fengqiao.ops import dlq

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
PAYLOAD = '{"type": "appeal.normalized", "case_id": "c-1", "text": "电话13912345678"}'


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def letter(consumer: str, *, offset: int = 7, minutes: int = 0) -> bytes:
    return (
        DeadLetter(
            occurred_at=AT + timedelta(minutes=minutes),
            producer=consumer,
            origin_topic="appeals",
            origin_partition=2,
            origin_offset=offset,
            origin_key="c-1",
            consumer=consumer,
            error_type="ValueError",
            error="bad 13912345678",
            payload=PAYLOAD,
        )
        .model_dump_json()
        .encode()
    )


def test_letters_of_one_message_are_one_entry_and_garbage_is_reported() -> None:
    records = [
        Record("appeals.dlq", 0, 0, letter("router")),
        Record("appeals.dlq", 0, 1, letter("tracker", minutes=1)),
        Record("appeals.dlq", 0, 2, letter("tracker", minutes=2)),  # dead-lettered twice
        Record("appeals.dlq", 0, 3, b"{not json"),
        Record("appeals.dlq", 0, 4, letter("router", offset=8, minutes=-5)),
    ]
    entries, unreadable = dlq.collect(records)  # type: ignore[arg-type]
    assert [e.id for e in entries] == ["appeals:2:8", "appeals:2:7"]  # oldest first
    entry = entries[1]
    assert entry.consumers == ["router", "tracker"]
    assert entry.letters == ["appeals.dlq:0:0", "appeals.dlq:0:1", "appeals.dlq:0:2"]
    assert unreadable == ["appeals.dlq:0:3: not a dead letter (1 errors)"]
    assert dlq.find(entries, "appeals.dlq:0:1") is entry
    with pytest.raises(dlq.DeadLetterError, match="no dead letter 'appeals:9:9'"):
        dlq.find(entries, "appeals:9:9")


def test_what_is_shown_has_private_data_masked() -> None:
    [entry], _ = dlq.collect([Record("appeals.dlq", 0, 0, letter("router"))])  # type: ignore[list-item]
    shown = dlq.Entry.detail(entry)
    assert "13912345678" not in str(shown)
    assert "139****5678" in shown["payload"] and "139****5678" in shown["error"]


class Publisher:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []
        self.fail = fail

    async def __call__(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        if self.fail:
            raise ConnectionError("kafka went away")
        self.sent.append((topic, value, key, headers))
        return 2, 100 + len(self.sent)


async def test_replay_publishes_the_original_once() -> None:
    [entry], _ = dlq.collect([Record("appeals.dlq", 0, 0, letter("router"))])  # type: ignore[list-item]
    store, publish = dlq.InMemoryActionStore(), Publisher()
    first = await dlq.replay(entry, store, publish)
    second = await dlq.replay(entry, store, publish)
    assert first["outcome"] == "replayed" and first["offset"] == 101
    assert second["outcome"] == "already replayed" and second["state"] == "published"
    assert publish.sent == [
        ("appeals", PAYLOAD.encode(), b"c-1", [("fengqiao-replay-of", b"appeals:2:7")])
    ]
    [listed] = await dlq.with_status([entry], store)
    assert listed.status == "replayed"


async def test_a_failed_publish_can_be_replayed_again() -> None:
    [entry], _ = dlq.collect([Record("appeals.dlq", 0, 0, letter("router"))])  # type: ignore[list-item]
    store = dlq.InMemoryActionStore()
    with pytest.raises(ConnectionError):
        await dlq.replay(entry, store, Publisher(fail=True))
    assert (await dlq.replay(entry, store, Publisher()))["outcome"] == "replayed"


async def test_a_purged_letter_is_not_replayed() -> None:
    [entry], _ = dlq.collect([Record("appeals.dlq", 0, 0, letter("router"))])  # type: ignore[list-item]
    store = dlq.InMemoryActionStore()
    assert (await dlq.purge(entry, store, reason="duplicate"))["outcome"] == "purged"
    assert (await dlq.purge(entry, store, reason=None))["outcome"] == "already purged"
    [entry] = await dlq.with_status([entry], store)
    assert entry.status == "purged" and entry.action and entry.action["reason"] == "duplicate"
    with pytest.raises(dlq.DeadLetterError, match="was purged"):
        await dlq.replay(entry, store, Publisher())
