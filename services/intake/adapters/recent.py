"""Recent appeals per (platform, author): what linking reads (repeats, follow-ups, reposts).

The port (`RecentAppeals`), the one routine that uses it (`assign_case`; the matching itself is
`services.intake.linking.decide`), the in-memory fake and the `Pruner`. The store in MongoDB
(or FerretDB) is `recent_mongo.MongoRecentAppeals`. Every write keeps the first value under
its key, so a post keeps its case id across re-deliveries, and of two copies of one text sent
at the same moment (neither sees the other yet) the one whose claim loses joins the other's
case. FerretDB has no TTL indexes: `Pruner` forgets old appeals and claims at start and then
every interval.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from fengqiao.services.intake.adapters import pruning
from fengqiao.services.intake.linking import (
    Cues,
    Decision,
    Policy,
    RecentAppeal,
    Similarity,
    decide,
    text_digest,
)

__all__ = [
    "Holder",
    "InMemoryRecentAppeals",
    "Post",
    "Pruner",
    "RecentAppeals",
    "assign_case",
    "between",
    "claim_key",
]

log = logging.getLogger("fengqiao.intake.recent")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a claim or a text: what linking reads of it (not a whole `RecentAppeal`)."""

    key: str  # the post's key
    event_id: str
    case_id: str
    urgent: bool = False  # the post is urgent, or joined a case an urgent post is in

    @classmethod
    def of(cls, appeal: RecentAppeal) -> Holder:
        return cls(appeal.key, appeal.event_id, appeal.case_id, appeal.urgent or appeal.urgent_case)


class RecentAppeals(Protocol):
    """The port: recent appeals, written once each."""

    async def history(
        self, platform: str, author: str, start: datetime, end: datetime
    ) -> list[RecentAppeal]:
        """The author's appeals posted in [start, end], in no particular order (the store keeps
        at most a bounded number of an author's newest appeals, see `recent_mongo`)."""

    async def add(self, appeal: RecentAppeal) -> tuple[RecentAppeal, bool]:
        """Remember `appeal` unless its key is taken: (what is remembered, True if `appeal`)."""

    async def claim(self, key: str, appeal: RecentAppeal) -> Holder:
        """Claim `key` for `appeal` unless taken; return who holds the claim."""

    async def prune(self, before: datetime) -> int:
        """Forget appeals and claims older than `before`; return how many records went."""

    async def by_text(self, platform: str, digest: str, at: datetime) -> Holder | None:
        """The appeal posted before `at` whose own words have this digest
        (`linking.text_digest`), if any."""

    async def remember_text(self, platform: str, digest: str, appeal: RecentAppeal) -> None:
        """Remember `appeal` under the digest of its words, unless one holds it already."""

    async def author_named(self, platform: str, name: str, at: datetime) -> str | None:
        """The id of the author with this screen name, if one was seen before `at`."""

    async def remember_name(
        self, platform: str, name: str, author: str, posted_at: datetime
    ) -> None:
        """Remember who has this screen name, unless someone holds it already."""


async def between(
    store: RecentAppeals, platform: str, author: str, start: datetime, end: datetime, limit: int
) -> list[RecentAppeal]:
    """The author's appeals posted in [start, end], newest first, at most `limit`."""
    found = await store.history(platform, author, start, end)
    found.sort(key=lambda a: (a.posted_at, a.key), reverse=True)
    return found[:limit]


@dataclass(frozen=True, slots=True)
class Post:
    """What linking needs of a post besides what it remembers (`RecentAppeal`)."""

    cues: Cues
    name: str | None = None  # the author's screen name
    own_words: str = ""  # what a repost of it would quote
    reposted: tuple[tuple[str, str], ...] = ()  # (name, words) of each segment it reposts


async def assign_case(
    store: RecentAppeals,
    appeal: RecentAppeal,
    post: Post,
    *,
    claim: str,
    policy: Policy,
    similarity: Similarity,
) -> tuple[RecentAppeal, bool]:
    """The case `appeal` belongs to, remembered: (the appeal as decided, True when decided now).

    A post already decided keeps that decision (re-deliveries yield the same case). A post that
    is no appeal and joins no case is not remembered. The author's history is read once: it
    holds the post itself when it was decided before."""
    mine = await store.history(
        appeal.platform,
        appeal.author,
        appeal.posted_at - policy.lookback(),
        appeal.posted_at + policy.duplicate_window,
    )
    known = next((a for a in mine if a.key == appeal.key), None)
    if known is not None:
        return known, False
    decision = await _repost_of(store, appeal, post, policy, similarity)
    if decision is None:
        mine.sort(key=lambda a: (a.posted_at, a.key), reverse=True)
        earlier = mine[: policy.max_candidates]
        decision = decide(appeal, earlier, cue=post.cues, similarity=similarity, policy=policy)
    if decision.kind == "new" and not appeal.is_appeal:
        return decision.apply(appeal), True  # joins nothing, opens nothing: not remembered
    if post.name:  # who a repost's //@name: means, for the posts that are remembered
        await store.remember_name(appeal.platform, post.name, appeal.author, appeal.posted_at)
    if decision.kind == "new":
        holder = await store.claim(claim, appeal)
        if holder.key != appeal.key:
            prior = replace(appeal, key=holder.key, event_id=holder.event_id)
            decision = Decision(
                "duplicate", holder.case_id, prior, holder.case_id, "the same words at once"
            )
        elif post.own_words:
            await store.remember_text(appeal.platform, text_digest(post.own_words), appeal)
    return await store.add(decision.apply(appeal))


async def _repost_of(
    store: RecentAppeals,
    appeal: RecentAppeal,
    post: Post,
    policy: Policy,
    similarity: Similarity,
) -> Decision | None:
    """The case of the appeal a repost quotes: by its words, else by the author it names."""
    for name, words in post.reposted:
        holder = await store.by_text(appeal.platform, text_digest(words), appeal.posted_at)
        if holder is not None and holder.key != appeal.key:
            return _joined(holder, f"repost of @{name}'s appeal")
    for name, words in post.reposted:
        author = await store.author_named(appeal.platform, name, appeal.posted_at)
        if author is None or author == appeal.author:
            continue
        start = appeal.posted_at - policy.lookback()
        earlier = await between(
            store, appeal.platform, author, start, appeal.posted_at, policy.max_candidates
        )
        scored = [(similarity(words, e.words), e) for e in earlier if e.is_appeal]
        scored = [(s, e) for s, e in scored if s >= policy.matter_threshold]
        if scored:
            score, original = min(scored, key=lambda se: (-se[0], -se[1].posted_at.timestamp()))
            return _joined(Holder.of(original), f"repost of @{name}'s appeal ({score:.2f})")
    return None


def _joined(original: Holder, reason: str) -> Decision:
    return Decision(
        "follow_up", original.case_id, None, original.case_id, reason, urgent_case=original.urgent
    )


def claim_key(platform: str, author: str, own_words: str, posted_at: datetime) -> str:
    """The claim of one exact text by one author in one week (UTC weeks since the epoch)."""
    digest = hashlib.blake2b(own_words.encode("utf-8", "replace"), digest_size=12).hexdigest()
    week = int(posted_at.timestamp() // timedelta(days=7).total_seconds())
    return f"{platform}\x1f{author}\x1f{digest}\x1f{week}"


class Pruner(pruning.Pruner):
    """Forgets appeals and claims older than `keep`, at start and every `interval_seconds`,
    while the normalizer runs (`pruning.Pruner`)."""

    WHAT = "recent appeals"
    METRIC = "fengqiao_intake_recent_appeals_pruned_total"
    HELP = (
        "Recent appeals forgotten (older than the matching windows need; in the store, "
        "the periods dropped)"
    )


class InMemoryRecentAppeals:
    """The fake for tests, and the store of `fengqiao normalize` (one run, one process)."""

    def __init__(self) -> None:
        self.appeals: dict[str, RecentAppeal] = {}
        self.claims: dict[str, tuple[Holder, datetime]] = {}
        self.texts: dict[tuple[str, str], tuple[Holder, datetime]] = {}
        self.names: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._by_author: dict[tuple[str, str], list[RecentAppeal]] = {}

    async def history(
        self, platform: str, author: str, start: datetime, end: datetime
    ) -> list[RecentAppeal]:
        return [
            a for a in self._by_author.get((platform, author), ()) if start <= a.posted_at <= end
        ]

    async def add(self, appeal: RecentAppeal) -> tuple[RecentAppeal, bool]:
        if (known := self.appeals.get(appeal.key)) is not None:
            return known, False
        self.appeals[appeal.key] = appeal
        self._by_author.setdefault((appeal.platform, appeal.author), []).append(appeal)
        return appeal, True

    async def claim(self, key: str, appeal: RecentAppeal) -> Holder:
        return self.claims.setdefault(key, (Holder.of(appeal), appeal.posted_at))[0]

    async def by_text(self, platform: str, digest: str, at: datetime) -> Holder | None:
        found = self.texts.get((platform, digest))
        return found[0] if found else None

    async def remember_text(self, platform: str, digest: str, appeal: RecentAppeal) -> None:
        self.texts.setdefault((platform, digest), (Holder.of(appeal), appeal.posted_at))

    async def author_named(self, platform: str, name: str, at: datetime) -> str | None:
        found = self.names.get((platform, name))
        return found[0] if found else None

    async def remember_name(
        self, platform: str, name: str, author: str, posted_at: datetime
    ) -> None:
        self.names.setdefault((platform, name), (author, posted_at))

    async def prune(self, before: datetime) -> int:
        old = [k for k, a in self.appeals.items() if a.posted_at < before]
        for key in old:
            del self.appeals[key]
        self.claims = {k: h for k, h in self.claims.items() if h[1] >= before}
        self.texts = {k: h for k, h in self.texts.items() if h[1] >= before}
        self.names = {k: v for k, v in self.names.items() if v[1] >= before}
        self._by_author = {}
        for appeal in self.appeals.values():
            self._by_author.setdefault((appeal.platform, appeal.author), []).append(appeal)
        return len(old)
