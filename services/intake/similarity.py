"""Near-duplicates and follow-ups: which case a new appeal belongs to. Pure functions, no I/O.

A post's fingerprint is a bottom-k MinHash sketch of the character bigrams of its author's own
words (mentions, topics, links, emoji and the repost chain removed; punctuation and spaces
dropped; lower case). Bigrams suit Chinese, where most words are two characters and there are no
spaces. A bottom-k sketch keeps the `SKETCH_SIZE` smallest shingle hashes: for a post of up to
about 130 characters it holds every bigram and the resemblance below is the exact Jaccard index;
for longer posts it is MinHash's unbiased estimate.

`decide` then compares a new appeal with the same author's recent ones (same platform):

- **near-duplicate**: resemblance >= `Policy.duplicate_threshold` (0.5) with an appeal posted
  within `Policy.duplicate_window` (7 days) either side → that appeal's case. Measured on the
  pairs in tests/unit/intake/test_similarity.py: copies to other accounts (other mentions, links,
  emoji, punctuation, Traditional characters) score 1.0; re-typed paraphrases of one problem
  0.50–0.53; other problems of one author at most 0.41 (the same kind of problem in another
  place) and unrelated ones under 0.1. Paraphrases further from the original stay new cases: a
  wrong merge hides a problem, a missed one only costs an extra case.
- **follow-up**: the own words refer back ("还没人联系我", lexicon `follow_up`) and the author has
  an earlier appeal within `Policy.follow_up_window` (30 days) → the most similar earlier case if
  one resembles it at least `Policy.related_threshold` (0.1), else the most recent one.
- otherwise a new case.

Ties are broken by time and then by key, so the same inputs always give the same answer.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

__all__ = [
    "SKETCH_SIZE",
    "Decision",
    "Policy",
    "RecentAppeal",
    "decide",
    "fingerprint",
    "resemblance",
]

SKETCH_SIZE = 128
_MASK = (1 << 63) - 1  # 63 bits: stored as a signed 64-bit integer in BSON without overflow
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd (Fibonacci hashing)
_NOT_WORD = re.compile(r"[\W_]+")

Kind = Literal["new", "duplicate", "follow_up"]


def fingerprint(text: str) -> tuple[int, ...]:
    """The bottom-k sketch (ascending hashes) of the character bigrams of `text`."""
    points = list(map(ord, _NOT_WORD.sub("", text.lower())))
    # A bigram is its two code points (21 bits each); multiplying by an odd constant modulo
    # 2^63 is a bijection that scatters them, stable across processes (unlike hash()).
    if len(points) < 2:
        hashes = {p * _MULTIPLIER & _MASK for p in points}
    else:
        hashes = {(a << 21 | b) * _MULTIPLIER & _MASK for a, b in pairwise(points)}
    if len(hashes) <= SKETCH_SIZE:
        return tuple(sorted(hashes))
    return tuple(heapq.nsmallest(SKETCH_SIZE, hashes))


def resemblance(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard index of the shingle sets behind two sketches (0 when either is empty).

    Of the k smallest hashes of the union, the share present in both sketches."""
    if not a or not b:
        return 0.0
    a_set, b_set = set(a), set(b)
    if len(a) < SKETCH_SIZE and len(b) < SKETCH_SIZE:  # both sketches hold their whole sets
        both = len(a_set & b_set)
        return both / (len(a_set) + len(b_set) - both)
    union = heapq.nsmallest(SKETCH_SIZE, a_set | b_set)
    both = sum(1 for h in union if h in a_set and h in b_set)
    return both / len(union)


@dataclass(frozen=True, slots=True)
class RecentAppeal:
    """One appeal as remembered for matching, with the case it was given."""

    key: str  # platform:source_id, the post across re-sends
    platform: str
    author: str
    post_id: str | None
    event_id: str
    case_id: str
    posted_at: datetime
    fingerprint: tuple[int, ...]
    follow_up_of: str | None = None
    duplicate_of: str | None = None  # event id of the appeal this one repeats

    @property
    def kind(self) -> Kind:
        if self.duplicate_of is not None:
            return "duplicate"
        return "follow_up" if self.follow_up_of is not None else "new"


@dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds and windows of `decide` (see the module docstring for how they were set)."""

    duplicate_threshold: float = 0.5
    related_threshold: float = 0.1
    duplicate_window: timedelta = timedelta(days=7)
    follow_up_window: timedelta = timedelta(days=30)
    max_candidates: int = 50

    def lookback(self) -> timedelta:
        """How far back the store must look for candidates."""
        return max(self.duplicate_window, self.follow_up_window)


@dataclass(frozen=True, slots=True)
class Decision:
    """Which case an appeal belongs to, and why."""

    kind: Kind
    case_id: str
    duplicate_of: RecentAppeal | None = None
    follow_up_of: str | None = None
    score: float = 0.0

    def apply(self, appeal: RecentAppeal) -> RecentAppeal:
        """`appeal` with this decision's case, duplicate and follow-up marks."""
        return RecentAppeal(
            key=appeal.key,
            platform=appeal.platform,
            author=appeal.author,
            post_id=appeal.post_id,
            event_id=appeal.event_id,
            case_id=self.case_id,
            posted_at=appeal.posted_at,
            fingerprint=appeal.fingerprint,
            follow_up_of=self.follow_up_of,
            duplicate_of=self.duplicate_of.event_id if self.duplicate_of else None,
        )


def decide(
    appeal: RecentAppeal,
    earlier: Iterable[RecentAppeal],
    *,
    refers_back: bool,
    policy: Policy | None = None,
) -> Decision:
    """The case `appeal` belongs to, given the same author's other recent appeals.

    `appeal.case_id` is its own case id, used when it is new; `refers_back` is True when its
    words point at an earlier report. A duplicate and a follow-up both carry `follow_up_of`
    (the case they add to), so the router does not dispatch the case a second time."""
    policy = policy or Policy()
    others = [
        e
        for e in earlier
        if e.key != appeal.key and e.platform == appeal.platform and e.author == appeal.author
    ]
    if duplicate := _nearest(appeal, others, policy):
        score, prior = duplicate
        return Decision("duplicate", prior.case_id, prior, prior.case_id, score)
    if refers_back and (prior_case := _referred(appeal, others, policy)):
        score, prior = prior_case
        return Decision("follow_up", prior.case_id, None, prior.case_id, score)
    return Decision("new", appeal.case_id)


def _nearest(
    appeal: RecentAppeal, others: list[RecentAppeal], policy: Policy
) -> tuple[float, RecentAppeal] | None:
    scored = [
        (resemblance(appeal.fingerprint, e.fingerprint), e)
        for e in others
        if abs(e.posted_at - appeal.posted_at) <= policy.duplicate_window
    ]
    scored = [(s, e) for s, e in scored if s >= policy.duplicate_threshold]
    if not scored:
        return None
    # Highest score; among equals the earliest appeal (the one the others repeat), then by key.
    return min(scored, key=lambda se: (-se[0], se[1].posted_at, se[1].key))


def _referred(
    appeal: RecentAppeal, others: list[RecentAppeal], policy: Policy
) -> tuple[float, RecentAppeal] | None:
    before = [
        e
        for e in others
        if timedelta(0) <= appeal.posted_at - e.posted_at <= policy.follow_up_window
    ]
    if not before:
        return None
    scored = [(resemblance(appeal.fingerprint, e.fingerprint), e) for e in before]
    related = [(s, e) for s, e in scored if s >= policy.related_threshold]
    if related:
        return min(related, key=lambda se: (-se[0], -se[1].posted_at.timestamp(), se[1].key))
    return min(scored, key=lambda se: (-se[1].posted_at.timestamp(), se[1].key))
