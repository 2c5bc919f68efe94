"""Dead letters: list them, show one, replay it to its origin topic once, or purge it.

A dead letter is identified by where its message came from, `<topic>:<partition>:<offset>`
(e.g. `dispatch.orders:3:17`): two consumers of one topic that both failed on a message, or one
consumer that dead-lettered it twice (crash before its commit), make one dead letter, replayed
once for all of them. A replay publishes the original bytes with the original key (so the same
partition and order) and a `fengqiao-replay-of` header; consumers that had handled the message
already drop the repeat by its event id.

Kafka cannot delete one message, so what operators did is kept in MongoDB, database
`fengqiao_ops`, collection `dlq_actions`, one document per (action, dead letter) with `_id`
`replay:<id>` or `purge:<id>`. MongoDB rather than a compacted topic because the claim must be a
compare-and-set: an insert against a unique `_id` is the one write FerretDB applies atomically,
so of two operators replaying the same dead letter at once exactly one publishes.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from fengqiao.contracts import DeadLetter
from fengqiao.ops import Refused
from fengqiao.runtime.pii import mask_pii

REPLAY_HEADER = "fengqiao-replay-of"


class DeadLetterError(Refused):
    """An operator asked for something the dead letters do not allow; the message says why."""


@dataclass
class Entry:
    """One failed message and every dead letter written for it."""

    id: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    origin_key: str | None
    error_type: str
    error: str
    payload: str
    first_at: datetime
    consumers: list[str] = field(default_factory=list)
    letters: list[str] = field(default_factory=list)  # `<dlq topic>:<partition>:<offset>`
    status: str = "new"  # new | replayed | purged
    action: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "origin": {
                "topic": self.origin_topic,
                "partition": self.origin_partition,
                "offset": self.origin_offset,
                "key": self.origin_key,
            },
            "consumers": self.consumers,
            "error_type": self.error_type,
            "error": mask_pii(self.error)[0],
            "first_at": self.first_at.isoformat(),
        }

    def detail(self) -> dict[str, Any]:
        """Everything, the payload with phone numbers, ID numbers and bank cards masked."""
        return {
            **self.summary(),
            "dead_letters": self.letters,
            "action": self.action,
            "payload": mask_pii(self.payload)[0],
        }


def letter_id(letter: DeadLetter) -> str:
    return f"{letter.origin_topic}:{letter.origin_partition}:{letter.origin_offset}"


def collect(records: Iterable[ConsumerRecord[bytes, bytes]]) -> tuple[list[Entry], list[str]]:
    """The dead letters in `records` (of `.dlq` topics) grouped by origin, oldest first, and a
    line for each record that is not a DeadLetter."""
    entries: dict[str, Entry] = {}
    unreadable = []
    for record in records:
        where = f"{record.topic}:{record.partition}:{record.offset}"
        try:
            letter = DeadLetter.model_validate_json(record.value or b"")
        except ValidationError as exc:
            unreadable.append(f"{where}: not a dead letter ({exc.error_count()} errors)")
            continue
        entry = entries.get(letter_id(letter))
        if entry is None:
            entry = entries[letter_id(letter)] = Entry(
                id=letter_id(letter),
                origin_topic=letter.origin_topic,
                origin_partition=letter.origin_partition,
                origin_offset=letter.origin_offset,
                origin_key=letter.origin_key,
                error_type=letter.error_type,
                error=letter.error,
                payload=letter.payload,
                first_at=letter.occurred_at,
            )
        if letter.consumer not in entry.consumers:
            entry.consumers.append(letter.consumer)
        entry.letters.append(where)
    return sorted(entries.values(), key=lambda e: e.first_at), unreadable


class ActionStore(Protocol):
    """Where replays and purges are recorded; `claim` is a compare-and-set."""

    async def claim(self, action: str, entry_id: str, record: dict[str, Any]) -> bool: ...
    async def update(self, action: str, entry_id: str, fields: dict[str, Any]) -> None: ...
    async def release(self, action: str, entry_id: str) -> None: ...
    async def actions(self) -> dict[str, dict[str, Any]]: ...


class MongoActionStore:
    def __init__(self, client: Any, database: str = "fengqiao_ops") -> None:
        self._actions = client[database]["dlq_actions"]

    async def claim(self, action: str, entry_id: str, record: dict[str, Any]) -> bool:
        from pymongo.errors import DuplicateKeyError

        try:
            await self._actions.insert_one(
                {"_id": f"{action}:{entry_id}", "action": action, "entry": entry_id, **record}
            )
        except DuplicateKeyError:
            return False
        return True

    async def update(self, action: str, entry_id: str, fields: dict[str, Any]) -> None:
        await self._actions.update_one({"_id": f"{action}:{entry_id}"}, {"$set": fields})

    async def release(self, action: str, entry_id: str) -> None:
        await self._actions.delete_one({"_id": f"{action}:{entry_id}"})

    async def actions(self) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self._actions.find({})}


class InMemoryActionStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def claim(self, action: str, entry_id: str, record: dict[str, Any]) -> bool:
        key = f"{action}:{entry_id}"
        if key in self.docs:
            return False
        self.docs[key] = {"_id": key, "action": action, "entry": entry_id, **record}
        return True

    async def update(self, action: str, entry_id: str, fields: dict[str, Any]) -> None:
        self.docs[f"{action}:{entry_id}"].update(fields)

    async def release(self, action: str, entry_id: str) -> None:
        self.docs.pop(f"{action}:{entry_id}", None)

    async def actions(self) -> dict[str, dict[str, Any]]:
        return dict(self.docs)


async def with_status(entries: list[Entry], store: ActionStore) -> list[Entry]:
    actions = await store.actions()
    for entry in entries:
        purged, replayed = actions.get(f"purge:{entry.id}"), actions.get(f"replay:{entry.id}")
        if purged is not None:
            entry.status, entry.action = "purged", _public(purged)
        elif replayed is not None:
            entry.status, entry.action = "replayed", _public(replayed)
    return entries


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in doc.items() if k != "_id"
    }


def find(entries: list[Entry], wanted: str) -> Entry:
    """The entry `wanted` names: its id, or a dead letter's `<dlq topic>:<partition>:<offset>`."""
    for entry in entries:
        if wanted == entry.id or wanted in entry.letters:
            return entry
    raise DeadLetterError(f"no dead letter {wanted!r} (see `fengqiao ops dlq list --all`)")


class Publisher(Protocol):
    async def __call__(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]: ...


def kafka_publisher(producer: AIOKafkaProducer) -> Publisher:
    async def publish(
        topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        sent = await producer.send_and_wait(topic, value, key=key, headers=headers)
        return sent.partition, sent.offset

    return publish


async def replay(
    entry: Entry, store: ActionStore, publish: Publisher, *, by: str | None = None
) -> dict[str, Any]:
    """Publish `entry`'s message back to its origin topic, unless it was replayed or purged.

    Returns what happened: {"id", "outcome": "replayed" | "already replayed", ...}. Raises
    DeadLetterError for a purged entry. `by`: who replays it (the operator's person on the
    HTTP API; the login name of the shell otherwise)."""
    if entry.status == "purged":
        raise DeadLetterError(f"dead letter {entry.id} was purged; it is not replayed")
    record = {"at": datetime.now(UTC), "by": by or _operator(), "state": "claimed"}
    if not await store.claim("replay", entry.id, record):
        done = (await store.actions()).get(f"replay:{entry.id}", {})
        return {"id": entry.id, "outcome": "already replayed", **_public(done)}
    try:
        partition, offset = await publish(
            entry.origin_topic,
            entry.payload.encode("utf-8"),
            entry.origin_key.encode("utf-8") if entry.origin_key is not None else None,
            [(REPLAY_HEADER, entry.id.encode())],
        )
    except BaseException:
        await store.release("replay", entry.id)  # not published: may be replayed again
        raise
    published = {"state": "published", "partition": partition, "offset": offset}
    await store.update("replay", entry.id, published)
    return {"id": entry.id, "outcome": "replayed", "topic": entry.origin_topic, **published}


async def purge(
    entry: Entry, store: ActionStore, *, reason: str | None, by: str | None = None
) -> dict[str, Any]:
    """Record that `entry` is dealt with: it leaves `dlq list` and cannot be replayed."""
    record = {"at": datetime.now(UTC), "by": by or _operator(), "reason": reason}
    if not await store.claim("purge", entry.id, record):
        return {"id": entry.id, "outcome": "already purged"}
    return {"id": entry.id, "outcome": "purged"}


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without passwd entry
        return "unknown"
