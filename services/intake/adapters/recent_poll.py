"""Linking the posts of one poll together (issue 21): the store's work grouped across posts.

`assign_cases` decides each post's case exactly as `recent.assign_case` does, one post after
the other in poll order (two posts of one author: the second sees the first; a repost sees the
text of an appeal before it in the poll), but against a view of the store (`PollView`) read
and written in groups:

1. read: the latest version of every author's record the posts' windows touch, one `$in` per
   period's collection (`Versions.latest_many`); and, for reposts, the texts and names they
   quote, one `$in` per period kept;
2. decide every post in memory, in order;
3. claim: the claims of the posts decided new, inserted together (`GroupInsert`: one
   `insert_many(ordered=False)` per collection, each document checked on its own `_id`). A
   claim held by another post (another normalizer sent the same words at the same moment) is
   read back, and every post is decided again knowing it: the loser joins the holder's case,
   and the posts after it see that. Of one author's claims only the first not yet settled goes
   in each round, so no claim is written on a decision an earlier lost claim changes;
4. write: the texts and names remembered, and each author's next version with the poll's
   posts in it, together (one `insert_many` per collection). A version insert that loses (the
   other normalizer wrote the author meanwhile) reads the latest and tries again on it, the
   posts recorded meanwhile keeping their decision (`MongoRecentAppeals.add_to`), as one post
   at a time did: a re-delivery reads its earlier decision back.

A store outage fails the whole poll (nothing is published; the poll comes again). Every write
is an insert against a unique `_id` that keeps the first value, so a poll tried again reads
back what its earlier try wrote (its own claims hold its own posts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fengqiao.services.intake.adapters.recent import (
    Holder,
    Post,
    RecentAppeals,
    assign_case,
)
from fengqiao.services.intake.adapters.recent_codec import appeal as decoded
from fengqiao.services.intake.adapters.recent_codec import appeals as decoded_all
from fengqiao.services.intake.adapters.recent_codec import entries as entries_of
from fengqiao.services.intake.adapters.recent_mongo import (
    MongoRecentAppeals,
    claim_period,
    holder_fields,
    holder_of,
    period_name,
    period_of,
)
from fengqiao.services.intake.linking import Policy, RecentAppeal, Similarity, text_digest

__all__ = ["Assignment", "PollView", "assign_cases"]

Doc = dict[str, Any]
Decided = tuple[RecentAppeal, bool]


@dataclass(frozen=True, slots=True)
class Assignment:
    """One post to link: what linking keeps of it, what else it reads of it, and its claim."""

    appeal: RecentAppeal
    post: Post
    claim: str


async def assign_cases(
    store: RecentAppeals,
    items: Sequence[Assignment],
    *,
    policy: Policy,
    similarity: Similarity,
) -> list[Decided]:
    """Each post's case, as `assign_case` decides it one post after the other (in this order):
    (the appeal as decided, True when decided now). On the MongoDB store, grouped (see the
    module docstring); on another (the in-memory one), one post at a time."""
    if not isinstance(store, MongoRecentAppeals):
        return [
            await assign_case(
                store, i.appeal, i.post, claim=i.claim, policy=policy, similarity=similarity
            )
            for i in items
        ]
    if not items:
        return []
    return await _Poll(store, policy, similarity).assign(items)


class _Poll:
    """What one poll read of the store, and the claims settled so far."""

    def __init__(self, store: MongoRecentAppeals, policy: Policy, similarity: Similarity):
        self.store, self.policy, self.similarity = store, policy, similarity
        self.latest: dict[tuple[int, str], Doc | None] = {}  # (period, author key) → version
        self.refs: dict[tuple[int, str], Doc | None] = {}  # (period, text/name `_id`) → doc
        self.settled: dict[str, Holder] = {}  # claim key → who holds it in the store

    async def assign(self, items: Sequence[Assignment]) -> list[Decided]:
        await self._read(items)
        view, decided = await self._decide(items)
        while pending := view.unsettled(self.settled):
            if await self._claim(pending):  # a claim held by another post: decide again
                view, decided = await self._decide(items)
        return await self._write(view, decided)

    async def _read(self, items: Sequence[Assignment]) -> None:
        authors: dict[int, set[str]] = {}
        refs: dict[int, set[str]] = {}
        for item in items:
            a = item.appeal
            start, end = (
                a.posted_at - self.policy.lookback(),
                a.posted_at + self.policy.duplicate_window,
            )
            for period in range(period_of(start), period_of(end) + 1):
                authors.setdefault(period, set()).add(f"{a.platform}\x1f{a.author}")
            for name, words in item.post.reposted:
                ids = {f"text:{a.platform}\x1f{text_digest(words)}", f"name:{a.platform}\x1f{name}"}
                for period in self._kept_periods(a.posted_at):
                    refs.setdefault(period, set()).update(ids)
        await asyncio.gather(
            *(self._read_authors(p, keys) for p, keys in authors.items()),
            *(self._read_refs(p, ids) for p, ids in refs.items()),
        )

    def _kept_periods(self, at: datetime) -> range:
        return range(period_of(at - self.store.keep), period_of(at) + 1)

    async def _read_authors(self, period: int, keys: set[str]) -> None:
        found = await self.store.versions(period).latest_many(sorted(keys))
        self.latest.update(((period, key), doc) for key, doc in found.items())

    async def _read_refs(self, period: int, ids: set[str]) -> None:
        docs = await self.store.records.get_many(period_name(period), sorted(ids))
        found = {d["_id"]: d for d in docs}
        self.refs.update(((period, i), found.get(i)) for i in ids)

    async def record(self, period: int, key: str) -> Doc | None:
        """The latest version of an author's record in a period (read now if not read yet)."""
        if (period, key) not in self.latest:
            await self._read_authors(period, {key})
        return self.latest[(period, key)]

    async def first(self, doc_id: str, at: datetime) -> Doc | None:
        """The text's or name's document in the oldest period kept up to `at` that has it."""
        periods = self._kept_periods(at)
        missing = [p for p in periods if (p, doc_id) not in self.refs]
        await asyncio.gather(*(self._read_refs(p, {doc_id}) for p in missing))
        return next((d for p in periods if (d := self.refs[(p, doc_id)]) is not None), None)

    async def _decide(self, items: Sequence[Assignment]) -> tuple[PollView, list[Decided]]:
        view = PollView(self)
        decided = [
            await assign_case(
                view,
                i.appeal,
                i.post,
                claim=i.claim,
                policy=self.policy,
                similarity=self.similarity,
            )
            for i in items
        ]
        return view, decided

    async def _claim(self, pending: list[tuple[str, int, Doc]]) -> bool:
        """Insert the claims together; settle each (read back those that existed). True when
        one is held by another post."""
        records = self.store.records
        inserted = await asyncio.gather(
            *(records.insert(period_name(p), doc) for _, p, doc in pending)
        )
        taken: dict[int, list[str]] = {}
        for (_, period, doc), won in zip(pending, inserted, strict=True):
            if not won:
                taken.setdefault(period, []).append(doc["_id"])
        held: dict[str, Doc] = {}
        for docs in await asyncio.gather(
            *(records.get_many(period_name(p), ids) for p, ids in taken.items())
        ):
            held.update((d["_id"], d) for d in docs)
        lost = False
        for claim, _, doc in pending:
            holder = holder_of(held.get(doc["_id"], doc))  # none: pruned meanwhile, ours is good
            self.settled[claim] = holder
            lost = lost or holder.key != doc["key"]
        return lost

    async def _write(self, view: PollView, decided: list[Decided]) -> list[Decided]:
        records = self.store.records
        adds = [
            self.store.add_to(period, key, appeals, base=self.latest.get((period, key)))
            for (period, key), appeals in view.added.items()
        ]
        # Scheduled together: `GroupInsert` writes them as one `insert_many` per collection.
        written, _ = await asyncio.gather(
            asyncio.gather(*adds),
            asyncio.gather(*(records.insert(period_name(p), doc) for p, doc in view.remembered())),
        )
        recorded: dict[str, Decided] = {}
        for found in written:
            recorded.update(found)
        result = []
        for appeal, fresh in decided:
            if (kept := recorded.get(appeal.key)) is not None:
                appeal, fresh = kept[0], fresh and kept[1]  # a later copy of a post: not fresh
            result.append((appeal, fresh))
        return result


class PollView:
    """The store as one poll sees it (`recent.RecentAppeals`): what was read at its start and
    what its earlier posts wrote, kept here until `_Poll` writes it."""

    def __init__(self, poll: _Poll) -> None:
        self.poll = poll
        self.added: dict[tuple[int, str], list[RecentAppeal]] = {}  # (period, author key)
        self.claims: dict[str, tuple[int, Doc, str]] = {}  # claim key → (period, doc, author)
        self.texts: dict[str, tuple[int, Doc]] = {}  # `_id` → (period, doc)
        self.names: dict[str, tuple[int, Doc]] = {}

    async def history(
        self, platform: str, author: str, start: datetime, end: datetime
    ) -> list[RecentAppeal]:
        key, found = f"{platform}\x1f{author}", []
        for period in range(period_of(start), period_of(end) + 1):
            found += decoded_all(await self.poll.record(period, key), platform, author)
            found += self.added.get((period, key), [])
        return [a for a in found if start <= a.posted_at <= end]

    async def add(self, appeal: RecentAppeal) -> Decided:
        period, key = period_of(appeal.posted_at), f"{appeal.platform}\x1f{appeal.author}"
        entries = entries_of(await self.poll.record(period, key))
        if (entry := entries.get(appeal.key)) is not None:
            return decoded(entry, appeal.platform, appeal.author), False
        added = self.added.setdefault((period, key), [])
        if (known := next((a for a in added if a.key == appeal.key), None)) is not None:
            return known, False
        added.append(appeal)
        return appeal, True

    async def claim(self, key: str, appeal: RecentAppeal) -> Holder:
        if (held := self.poll.settled.get(key)) is not None:
            return held
        if (mine := self.claims.get(key)) is not None:
            return holder_of(mine[1])
        doc = {"_id": f"claim:{key}", **holder_fields(Holder.of(appeal))}
        del doc["urgent"]
        author = f"{appeal.platform}\x1f{appeal.author}"
        self.claims[key] = (claim_period(key, appeal.posted_at), doc, author)
        return Holder.of(appeal)

    def unsettled(self, settled: dict[str, Holder]) -> list[tuple[str, int, Doc]]:
        """Of each author, the first claim (in poll order) not settled yet."""
        first: dict[str, tuple[str, int, Doc]] = {}
        for claim, (period, doc, author) in self.claims.items():
            if claim not in settled:
                first.setdefault(author, (claim, period, doc))
        return list(first.values())

    async def by_text(self, platform: str, digest: str, at: datetime) -> Holder | None:
        doc_id = f"text:{platform}\x1f{digest}"
        doc = await self.poll.first(doc_id, at) or _written(self.texts, doc_id)
        return holder_of(doc) if doc else None

    async def remember_text(self, platform: str, digest: str, appeal: RecentAppeal) -> None:
        doc = {"_id": f"text:{platform}\x1f{digest}", **holder_fields(Holder.of(appeal))}
        self.texts.setdefault(doc["_id"], (period_of(appeal.posted_at), doc))

    async def author_named(self, platform: str, name: str, at: datetime) -> str | None:
        doc_id = f"name:{platform}\x1f{name}"
        doc = await self.poll.first(doc_id, at) or _written(self.names, doc_id)
        return str(doc["author"]) if doc else None

    async def remember_name(
        self, platform: str, name: str, author: str, posted_at: datetime
    ) -> None:
        doc = {"_id": f"name:{platform}\x1f{name}", "author": author}
        self.names.setdefault(doc["_id"], (period_of(posted_at), doc))

    def remembered(self) -> list[tuple[int, Doc]]:
        """The texts and names to write (each kept unless its `_id` is held already)."""
        return [*self.texts.values(), *self.names.values()]

    async def prune(self, before: datetime) -> int:
        return 0  # a poll forgets nothing


def _written(docs: dict[str, tuple[int, Doc]], doc_id: str) -> Doc | None:
    found = docs.get(doc_id)
    return found[1] if found else None
