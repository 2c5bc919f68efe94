"""Where the triage queue lives: its items and the dispatchers' rulings.

- `triage_queue`, `_id` = the appeal's event id: an item is inserted once (a re-delivered
  appeal finds it there).
- `triage_rulings`, `_id` = the item's id: the first ruling wins. An insert against the unique
  `_id` is the compare-and-set (FerretDB applies no conditional update atomically), so two
  dispatchers ruling at once cannot both win. After its ruling, an item is marked `ruled` so
  that listings skip it; the mark is only a hint for listing, the ruling is what counts.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from fengqiao.services.router.triage import Item, Ruling

__all__ = ["InMemoryTriageQueue", "MongoTriageQueue", "TriageQueue"]


class TriageQueue(Protocol):
    async def add(self, item: Item) -> bool:
        """Queue `item` unless it is queued already; True when added now."""

    async def pending(self, *, limit: int, offset: int, review: str | None) -> list[Item]:
        """Items without a ruling: urgent first, then the oldest; only those with `review`
        among their reasons when it is given."""

    async def get(self, item_id: str) -> Item | None: ...

    async def depth(self) -> dict[bool, int]:
        """How many items wait for a ruling, urgent (True) and not (False)."""

    async def rule(self, ruling: Ruling) -> bool:
        """Record `ruling` unless the item has one; True when this one is recorded."""

    async def ruling(self, item_id: str) -> Ruling | None: ...

    async def corrections(self) -> list[dict[str, Any]]:
        """Every ruling, as the labelled example it is (`fengqiao.triage.corpus.Example`)."""


def _item_doc(item: Item) -> dict[str, Any]:
    doc = asdict(item)
    doc["_id"] = doc.pop("id")
    doc["review"], doc["reasons"] = list(item.review), list(item.reasons)
    doc["evidence"] = list(item.evidence)
    doc["ruled"] = False
    return doc


def _item(doc: dict[str, Any]) -> Item:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "ruled")}
    fields["review"], fields["reasons"] = tuple(doc["review"]), tuple(doc["reasons"])
    fields["evidence"] = tuple(doc.get("evidence") or ())  # none in items queued before it
    return Item(id=doc["_id"], **fields)


def _ruling_doc(ruling: Ruling) -> dict[str, Any]:
    doc = asdict(ruling)
    doc["_id"] = doc["item_id"]
    return doc


def _ruling(doc: dict[str, Any]) -> Ruling:
    return Ruling(**{k: v for k, v in doc.items() if k != "_id"})


def _order(item: Item) -> tuple[bool, Any]:
    return (not item.urgent, item.received_at)


class MongoTriageQueue:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._items = client[database]["triage_queue"]
        self._rulings = client[database]["triage_rulings"]

    async def ensure_indexes(self) -> None:
        await self._items.create_index(
            [("ruled", ASCENDING), ("urgent", DESCENDING), ("received_at", ASCENDING)]
        )

    async def add(self, item: Item) -> bool:
        try:
            await self._items.insert_one(_item_doc(item))
        except DuplicateKeyError:
            return False
        return True

    async def pending(self, *, limit: int, offset: int, review: str | None) -> list[Item]:
        query: dict[str, Any] = {"ruled": False}
        if review:
            query["review"] = review
        cursor = (
            self._items.find(query)
            .sort([("urgent", DESCENDING), ("received_at", ASCENDING), ("_id", ASCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_item(doc) async for doc in cursor]

    async def get(self, item_id: str) -> Item | None:
        doc = await self._items.find_one({"_id": item_id})
        return _item(doc) if doc else None

    async def depth(self) -> dict[bool, int]:
        return {
            urgent: await self._items.count_documents({"ruled": False, "urgent": urgent})
            for urgent in (True, False)
        }

    async def rule(self, ruling: Ruling) -> bool:
        try:
            await self._rulings.insert_one(_ruling_doc(ruling))
        except DuplicateKeyError:
            recorded = False
        else:
            recorded = True
        # The listing hint, set again by a later attempt if this one is lost.
        await self._items.update_one({"_id": ruling.item_id}, {"$set": {"ruled": True}})
        return recorded

    async def ruling(self, item_id: str) -> Ruling | None:
        doc = await self._rulings.find_one({"_id": item_id})
        return _ruling(doc) if doc else None

    async def corrections(self) -> list[dict[str, Any]]:
        return [doc async for doc in self._rulings.find({}).sort("_id", ASCENDING)]


class InMemoryTriageQueue:
    """The fake for tests: the same rules over dicts."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.rulings: dict[str, Ruling] = {}

    async def add(self, item: Item) -> bool:
        if item.id in self.items:
            return False
        self.items[item.id] = item
        return True

    async def pending(self, *, limit: int, offset: int, review: str | None) -> list[Item]:
        waiting = [
            i
            for i in self.items.values()
            if i.id not in self.rulings and (review is None or review in i.review)
        ]
        waiting.sort(key=lambda i: (*_order(i), i.id))
        return waiting[offset : offset + limit]

    async def get(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    async def depth(self) -> dict[bool, int]:
        waiting = [i for i in self.items.values() if i.id not in self.rulings]
        return {urgent: sum(i.urgent == urgent for i in waiting) for urgent in (True, False)}

    async def rule(self, ruling: Ruling) -> bool:
        if ruling.item_id in self.rulings:
            return False
        self.rulings[ruling.item_id] = ruling
        return True

    async def ruling(self, item_id: str) -> Ruling | None:
        return self.rulings.get(item_id)

    async def corrections(self) -> list[dict[str, Any]]:
        return [_ruling_doc(r) for _, r in sorted(self.rulings.items())]
