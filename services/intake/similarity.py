"""Near copies: a sketch of a post's words, and the resemblance of two sketches. Pure functions.

A post's fingerprint is a bottom-k MinHash sketch of the character bigrams of its author's own
words (mentions, topics, links, emoji and the repost chain removed; punctuation and spaces
dropped; lower case). Bigrams suit Chinese, where most words are two characters and there are no
spaces. A bottom-k sketch keeps the `SKETCH_SIZE` smallest shingle hashes: for a post of up to
about 130 characters it holds every bigram and the resemblance below is the exact Jaccard index;
for longer posts it is MinHash's unbiased estimate.

`services.intake.linking.decide` uses the resemblance to find near copies (duplicates).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from itertools import pairwise

__all__ = ["SKETCH_SIZE", "fingerprint", "resemblance"]

SKETCH_SIZE = 128
_MASK = (1 << 63) - 1  # 63 bits: stored as a signed 64-bit integer in BSON without overflow
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd (Fibonacci hashing)
_NOT_WORD = re.compile(r"[\W_]+")


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
