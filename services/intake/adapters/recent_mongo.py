"""Recent appeals in MongoDB (or FerretDB): the store behind `recent.RecentAppeals`.

Everything the normalizer reads is read by `_id`: FerretDB 1.24 on SQLite answers any other
filter by reading the whole collection (deploy/ferretdb/patches.json), which made the cost of
each appeal grow with every appeal stored (issue 21). Time is cut into periods of ten UTC weeks
(`PERIOD`, counted from the epoch), and each period has one collection, `linking_<YYYYMMDD>`
(the period's first day), holding four kinds of documents:

- `author:<platform>\\x1f<author>:<version>`: the author's record for the period, versioned on
  the store seam (`fengqiao.runtime.store.Versions`): the latest version holds the author's
  appeals posted in the period (the newest `KEPT`), as one JSON text (`recent_codec`). Adding an
  appeal inserts the next version: the insert against the unique `_id` is the compare-and-set;
  who loses reads the latest again and adds its appeal to it, unless that post is there already
  (then the other's decision is the post's). A post's decision is thus written once, and a
  re-delivery finds it in the author's record. An author's history over the matching windows is
  one lookup by `_id` per period they touch (one or two for the default windows, 60 + 7 days).
- `claim:<claim key>` (platform, author, digest of the words, week; the week lies in one
  period): two copies of one text sent to several accounts at once race for it, and the loser
  joins the winner's case; `key`, `event_id`, `case_id`.
- `text:<platform>\\x1f<digest of an appeal's own words>`: the case a repost quoting them joins;
  `key`, `event_id`, `case_id`, `urgent`.
- `name:<platform>\\x1f<screen name>`: the author a repost's `//@name:` names; `author`.

Forgetting is dropping a period's collection once it ended before the retention (`prune`):
no scan, no delete. Stores written before this layout are migrated at start
(`recent_migrate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import MongoRecords, Records, Versions
from fengqiao.services.intake.adapters import recent_codec
from fengqiao.services.intake.adapters.recent import Holder
from fengqiao.services.intake.linking import RecentAppeal

__all__ = ["KEPT", "PERIOD", "MongoRecentAppeals", "period_name", "period_of", "version_id"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERIOD = timedelta(weeks=10)  # never change on a live store: collections are named by periods
KEPT = 128  # an author's newest appeals kept per period (`Policy.max_candidates` is 50)
COMPACT_EVERY, KEEP_FULL = 16, 4  # an author's versions in a period below the newest become stubs
REMEMBERED = 10_000  # authors whose latest version (and document) in a period this process keeps
_NAME = re.compile(r"^linking_(\d{8})$")


def period_of(at: datetime) -> int:
    return int((at - EPOCH) // PERIOD)


def period_name(period: int) -> str:
    return f"linking_{EPOCH + period * PERIOD:%Y%m%d}"


def version_id(author: str, version: int) -> str:
    return f"author:{author}:{version:06d}"


class MongoRecentAppeals:
    """The store in MongoDB (or FerretDB): lookups by `_id` only, a collection per period."""

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str,
        *,
        keep: timedelta = timedelta(days=120),
        records: Records | None = None,
    ) -> None:
        """`records`: where the documents are (default: the database, inserts in groups); tests
        give `MemoryRecords` (the same semantics, no server)."""
        self.client, self.database_name, self.keep = client, database, keep
        self._database = client[database]
        self.records: Records = records or MongoRecords(client, database)
        self._periods: dict[int, Versions] = {}

    def versions(self, period: int) -> Versions:
        if (found := self._periods.get(period)) is None:
            found = self._periods[period] = Versions(
                self.records,
                period_name(period),
                id_of=version_id,
                key_field="author",
                remember=REMEMBERED,
                keep_documents=True,
            )
        return found

    async def ensure_indexes(self) -> None:
        """Nothing to index (every read is by `_id`); a store of the old layout is migrated."""
        from fengqiao.services.intake.adapters import recent_migrate

        await recent_migrate.migrate(self)

    async def history(
        self, platform: str, author: str, start: datetime, end: datetime
    ) -> list[RecentAppeal]:
        key = f"{platform}\x1f{author}"
        periods = range(period_of(start), period_of(end) + 1)
        docs = await asyncio.gather(*(self._latest(p, key) for p in periods))
        return [
            a
            for doc in docs
            for a in recent_codec.appeals(doc, platform, author)
            if start <= a.posted_at <= end
        ]

    async def _latest(self, period: int, key: str) -> dict[str, Any] | None:
        return (await self.versions(period).latest_many([key]))[key]

    async def add(self, appeal: RecentAppeal) -> tuple[RecentAppeal, bool]:
        added = await self.add_many(appeal.platform, appeal.author, [appeal])
        return added[appeal.key]

    async def add_many(
        self, platform: str, author: str, appeals: list[RecentAppeal]
    ) -> dict[str, tuple[RecentAppeal, bool]]:
        """Add the appeals of one author (in one period each); for each key, what is remembered
        and whether it is the one given (False: that post was recorded already)."""
        result: dict[str, tuple[RecentAppeal, bool]] = {}
        by_period: dict[int, list[RecentAppeal]] = {}
        for a in appeals:
            by_period.setdefault(period_of(a.posted_at), []).append(a)
        for period, some in by_period.items():
            result |= await self.add_to(period, f"{platform}\x1f{author}", some)
        return result

    async def add_to(
        self,
        period: int,
        key: str,
        appeals: list[RecentAppeal],
        *,
        base: dict[str, Any] | Literal["unread"] | None = "unread",
    ) -> dict[str, tuple[RecentAppeal, bool]]:
        """Insert the next version of the author's record with `appeals` in it; on a conflict,
        read the latest and try again on it (the posts recorded meanwhile keep their decision).
        `base`: the latest version just read (None: no record), the first try's base; without
        it, the one this process knows (read when its document is not kept)."""
        versions = self.versions(period)
        if base != "unread":
            doc = base if isinstance(base, dict) else None
            version = doc["version"] if doc else 0
        else:
            version, doc = versions.known(key)
            if version and doc is None:
                doc = await versions.latest(key)
                version = doc["version"] if doc else 0
        while True:
            entries = recent_codec.entries(doc)
            result = {a.key: (recent_codec.appeal(entries[a.key], a.platform, a.author), False)
                      for a in appeals if a.key in entries}  # fmt: skip
            new = [a for a in appeals if a.key not in entries]
            if not new:
                return result
            kept = recent_codec.kept(entries, new, KEPT)
            written = {"_id": version_id(key, version + 1), "author": key, "version": version + 1}
            written["packed"] = recent_codec.packed(kept)
            if await versions.insert(key, version + 1, written):
                await self.compact_after(versions, key, version + 1)
                return result | {a.key: (a, True) for a in new}
            doc = await versions.latest(key)
            version = doc["version"] if doc else 0

    @staticmethod
    async def compact_after(versions: Versions, key: str, version: int) -> None:
        if version % COMPACT_EVERY == 0:
            below = version - KEEP_FULL
            await versions.compact(key, below, since=below - COMPACT_EVERY)

    async def claim(self, key: str, appeal: RecentAppeal) -> Holder:
        doc = {"_id": f"claim:{key}", **holder_fields(Holder.of(appeal))}
        del doc["urgent"]
        return await self._insert_or_read(claim_period(key, appeal.posted_at), doc)

    async def by_text(self, platform: str, digest: str, at: datetime) -> Holder | None:
        doc = await self._first(f"text:{platform}\x1f{digest}", at)
        return holder_of(doc) if doc else None

    async def remember_text(self, platform: str, digest: str, appeal: RecentAppeal) -> None:
        doc = {"_id": f"text:{platform}\x1f{digest}", **holder_fields(Holder.of(appeal))}
        await self._insert_or_read(period_of(appeal.posted_at), doc)

    async def author_named(self, platform: str, name: str, at: datetime) -> str | None:
        doc = await self._first(f"name:{platform}\x1f{name}", at)
        return str(doc["author"]) if doc else None

    async def remember_name(
        self, platform: str, name: str, author: str, posted_at: datetime
    ) -> None:
        doc = {"_id": f"name:{platform}\x1f{name}", "author": author}
        await self.records.insert(period_name(period_of(posted_at)), doc)

    async def _first(self, doc_id: str, at: datetime) -> dict[str, Any] | None:
        """The document of `doc_id` in the oldest period that has it, among the periods kept up
        to `at` (one lookup by `_id` in each, together)."""
        periods = range(period_of(at - self.keep), period_of(at) + 1)
        found = await asyncio.gather(*(self.records.get(period_name(p), doc_id) for p in periods))
        return next((doc for doc in found if doc is not None), None)

    async def _insert_or_read(self, period: int, doc: dict[str, Any]) -> Holder:
        collection = period_name(period)
        if await self.records.insert(collection, doc):
            return holder_of(doc)
        found = await self.records.get(collection, doc["_id"])
        return holder_of(found or doc)  # none: pruned between the two calls, ours is as good

    async def prune(self, before: datetime) -> int:
        """Drop the periods that ended before `before`; how many."""
        dropped = 0
        for name in await self._database.list_collection_names():
            if (m := _NAME.match(name)) is None:
                continue
            start = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
            if start + PERIOD <= before:
                await self._database.drop_collection(name)
                self._periods.pop(period_of(start), None)
                dropped += 1
        return dropped


def claim_period(key: str, posted_at: datetime) -> int:
    """The period of a claim's week (its key's last part), so that two copies in one week meet."""
    with contextlib.suppress(ValueError):
        return period_of(EPOCH + int(key.rsplit("\x1f", 1)[-1]) * timedelta(weeks=1))
    return period_of(posted_at)


def holder_fields(holder: Holder) -> dict[str, Any]:
    return {"key": holder.key, "event_id": holder.event_id, "case_id": holder.case_id,
            "urgent": holder.urgent}  # fmt: skip


def holder_of(doc: dict[str, Any]) -> Holder:
    return Holder(doc["key"], doc["event_id"], doc["case_id"], bool(doc.get("urgent", False)))
