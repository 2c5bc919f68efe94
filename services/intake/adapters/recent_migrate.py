"""Moving a store of the old layout to the periods of `recent_mongo`, once, at start.

Before issue 21 intake kept each recent appeal as its own document in 64 collections split by a
hash of the author (`recent_appeals_00`…`_3f`, before that one `recent_appeals`), each claim in
`appeal_claims_00`…`_3f` (or `appeal_claims`), and `appeal_texts`, `author_names`, every document
a whole appeal. An intake that starts on such a store (`MongoRecentAppeals.ensure_indexes`,
before it consumes) reads each old collection once, writes what it holds into the periods (an
author's appeals of a period in one version; claims, texts and names as small documents: the
inserts keep whatever is there already, so two replicas migrating at once agree), then drops
it. Follow-ups keep linking to the appeals recorded before the change. The old collections'
reads are whole-collection scans, once; nothing afterwards reads them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from fengqiao.services.intake.linking import RecentAppeal

if TYPE_CHECKING:
    from fengqiao.services.intake.adapters.recent_mongo import MongoRecentAppeals

log = logging.getLogger("fengqiao.intake.recent")

APPEALS = re.compile(r"^recent_appeals(_[0-9a-f]{2})?$")
CLAIMS = re.compile(r"^appeal_claims(_[0-9a-f]{2})?$")
TEXTS, NAMES = "appeal_texts", "author_names"
TASKS = 16  # writes in flight while migrating


def old_collections(names: list[str]) -> list[str]:
    """The collections of the old layout among `names`."""
    return sorted(n for n in names if APPEALS.match(n) or CLAIMS.match(n) or n in (TEXTS, NAMES))


async def migrate(store: MongoRecentAppeals) -> int:
    """Move every old collection's records into the periods and drop it; how many records."""
    database = store.client[store.database_name]
    old = old_collections(await database.list_collection_names())
    moved = 0
    for name in old:
        docs = [doc async for doc in database[name].find({})]
        await _each(_writes(store, name, docs))
        await database.drop_collection(name)
        moved += len(docs)
        log.info("migrated %d records of %s to the periods of linking, dropped it", len(docs), name)
    return moved


def _writes(
    store: MongoRecentAppeals, name: str, docs: list[dict[str, Any]]
) -> list[Callable[[], Awaitable[object]]]:
    """One write per author (appeals), or per record (claims, texts, names)."""
    if APPEALS.match(name):
        authors: dict[tuple[str, str], list[RecentAppeal]] = {}
        for doc in docs:
            a = from_document(doc)
            authors.setdefault((a.platform, a.author), []).append(a)
        return [partial(store.add_many, p, a, some) for (p, a), some in authors.items()]
    if CLAIMS.match(name):
        return [partial(store.claim, d["_id"], from_document(d)) for d in docs]
    if name == TEXTS:
        return [
            partial(store.remember_text, d["platform"], _after(d["_id"]), from_document(d))
            for d in docs
        ]
    return [
        partial(
            store.remember_name, _before(d["_id"]), _after(d["_id"]), d["author"], d["posted_at"]
        )
        for d in docs
    ]


def _before(doc_id: str) -> str:
    return doc_id.split("\x1f", 1)[0]


def _after(doc_id: str) -> str:
    return doc_id.split("\x1f", 1)[1]


async def _each(writes: list[Callable[[], Awaitable[object]]]) -> None:
    todo = list(reversed(writes))

    async def worker() -> None:
        while todo:
            await todo.pop()()

    await asyncio.gather(*(worker() for _ in range(TASKS)))


def from_document(doc: dict[str, Any]) -> RecentAppeal:
    """The appeal a document of the old layout holds (its sketch: big-endian 64-bit integers)."""
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
