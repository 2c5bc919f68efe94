"""Recent appeals in MongoDB (or FerretDB): the store behind `recent.RecentAppeals`.

Every write is an insert with a unique `_id`, the only compare-and-set FerretDB 1.24 applies
atomically (see services/tracker/adapters/cases.py):

- `recent_appeals`, `_id` = the post's key (platform:source_id): the first decision taken for a
  post wins and every re-delivery reads it back, so a post keeps its case id, and a re-delivery
  is never compared with itself.
- `appeal_claims`, `_id` = platform, author, digest of the own words, week: two copies of one text
  sent to several accounts at the same moment (so neither sees the other yet) race for one
  claim; the loser joins the winner's case.

Both are split by a hash of (platform, author) (`fengqiao.runtime.store.ShardedCollection`,
`recent_appeals_00`…`_3f`): FerretDB scans a whole collection for any filter but `_id`, and the
matching asks for one author's appeals, so it reads only the shard holding that author's.

- `appeal_texts`, `_id` = platform, digest of an appeal's own words: a repost quoting those words
  finds the appeal's case (the first appeal with those words keeps them);
- `author_names`, `_id` = platform, screen name: the author a repost's `//@name:` names (Weibo's
  screen names are unique; the first author seen with a name keeps it).
"""

from __future__ import annotations

import contextlib
import struct
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from fengqiao.runtime.store import ShardedCollection
from fengqiao.services.intake.linking import RecentAppeal

__all__ = ["MongoRecentAppeals", "from_document", "to_document"]


class MongoRecentAppeals:
    """The store in MongoDB (or FerretDB): insert-only, unique `_id`s, split by author."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._appeals = ShardedCollection(client[database], "recent_appeals")
        self._claims = ShardedCollection(client[database], "appeal_claims")
        self._texts = client[database]["appeal_texts"]
        self._names = client[database]["author_names"]

    @staticmethod
    def _author(platform: str, author: str) -> str:
        """The shard key: every read and write of the matching concerns one author."""
        return f"{platform}\x1f{author}"

    async def ensure_indexes(self) -> None:
        await self._appeals.create_index(
            [("platform", ASCENDING), ("author", ASCENDING), ("posted_at", DESCENDING)]
        )
        await self._appeals.create_index([("posted_at", ASCENDING)])
        await self._claims.create_index([("posted_at", ASCENDING)])
        await self._texts.create_index([("posted_at", ASCENDING)])
        await self._names.create_index([("posted_at", ASCENDING)])

    async def get(self, key: str, *, platform: str, author: str) -> RecentAppeal | None:
        shard = self._appeals.for_key(self._author(platform, author))
        doc = await shard.find_one({"_id": key})
        return from_document(doc) if doc else None

    async def between(
        self, platform: str, author: str, start: datetime, end: datetime, *, limit: int
    ) -> list[RecentAppeal]:
        shard = self._appeals.for_key(self._author(platform, author))
        cursor = (
            shard.find(
                {"platform": platform, "author": author, "posted_at": {"$gte": start, "$lte": end}}
            )
            .sort([("posted_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [from_document(doc) async for doc in cursor]

    async def add(self, appeal: RecentAppeal) -> tuple[RecentAppeal, bool]:
        shard = self._appeals.for_key(self._author(appeal.platform, appeal.author))
        return await self._insert_or_read(shard, appeal.key, appeal)

    async def claim(self, key: str, appeal: RecentAppeal) -> RecentAppeal:
        shard = self._claims.for_key(self._author(appeal.platform, appeal.author))
        return (await self._insert_or_read(shard, key, appeal))[0]

    async def by_text(self, platform: str, digest: str) -> RecentAppeal | None:
        doc = await self._texts.find_one({"_id": f"{platform}\x1f{digest}"})
        return from_document(doc) if doc else None

    async def remember_text(self, platform: str, digest: str, appeal: RecentAppeal) -> None:
        await self._insert_or_read(self._texts, f"{platform}\x1f{digest}", appeal)

    async def author_named(self, platform: str, name: str) -> str | None:
        doc = await self._names.find_one({"_id": f"{platform}\x1f{name}"})
        return str(doc["author"]) if doc else None

    async def remember_name(
        self, platform: str, name: str, author: str, posted_at: datetime
    ) -> None:
        doc = {"_id": f"{platform}\x1f{name}", "author": author, "posted_at": posted_at}
        with contextlib.suppress(DuplicateKeyError):
            await self._names.insert_one(doc)

    async def prune(self, before: datetime) -> int:
        await self._texts.delete_many({"posted_at": {"$lt": before}})
        await self._names.delete_many({"posted_at": {"$lt": before}})
        deleted = 0
        for claims, appeals in zip(self._claims.all(), self._appeals.all(), strict=True):
            await claims.delete_many({"posted_at": {"$lt": before}})
            result = await appeals.delete_many({"posted_at": {"$lt": before}})
            deleted += int(result.deleted_count)
        return deleted

    @staticmethod
    async def _insert_or_read(
        collection: Any, key: str, appeal: RecentAppeal
    ) -> tuple[RecentAppeal, bool]:
        try:
            await collection.insert_one(to_document(appeal) | {"_id": key})
        except DuplicateKeyError:
            doc = await collection.find_one({"_id": key})
            if doc is None:  # pruned between the two calls: ours is as good as any
                return appeal, False
            return from_document(doc), False
        return appeal, True


def to_document(appeal: RecentAppeal) -> dict[str, Any]:
    """The BSON document of `appeal`; the sketch is packed as big-endian 64-bit integers."""
    return {
        "_id": appeal.key,
        "key": appeal.key,
        "platform": appeal.platform,
        "author": appeal.author,
        "post_id": appeal.post_id,
        "event_id": appeal.event_id,
        "case_id": appeal.case_id,
        "posted_at": appeal.posted_at,
        "fingerprint": struct.pack(f">{len(appeal.fingerprint)}Q", *appeal.fingerprint),
        "follow_up_of": appeal.follow_up_of,
        "duplicate_of": appeal.duplicate_of,
        "words": appeal.words,
        "category": appeal.category,
        "amounts": sorted(appeal.amounts),
        "phones": sorted(appeal.phones),
        "is_appeal": appeal.is_appeal,
        "urgent": appeal.urgent,
        "urgent_case": appeal.urgent_case,
        "link_reason": appeal.link_reason,
        "suggested": appeal.suggested,
        "suggested_reason": appeal.suggested_reason,
    }


def from_document(doc: dict[str, Any]) -> RecentAppeal:
    """The appeal a document of `to_document` holds."""
    packed = bytes(doc["fingerprint"])
    return RecentAppeal(
        key=doc["key"],
        platform=doc["platform"],
        author=doc["author"],
        post_id=doc.get("post_id"),
        event_id=doc["event_id"],
        case_id=doc["case_id"],
        posted_at=doc["posted_at"],
        fingerprint=struct.unpack(f">{len(packed) // 8}Q", packed),
        follow_up_of=doc.get("follow_up_of"),
        duplicate_of=doc.get("duplicate_of"),
        words=doc.get("words", ""),
        category=doc.get("category"),
        amounts=frozenset(doc.get("amounts", ())),
        phones=frozenset(doc.get("phones", ())),
        is_appeal=doc.get("is_appeal", True),
        urgent=doc.get("urgent", False),
        urgent_case=doc.get("urgent_case", False),
        link_reason=doc.get("link_reason"),
        suggested=doc.get("suggested"),
        suggested_reason=doc.get("suggested_reason"),
    )
