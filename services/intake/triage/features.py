"""What the triage models read of a post: character n-grams of its words, plus danger markers.

`analyze` is the one analyzer: training hands it to scikit-learn's `TfidfVectorizer`, and
`Featurizer` applies the fitted vocabulary and idf at run time with numpy alone, so the service
needs no scikit-learn and both compute the same vector (tests/unit/intake/test_triage_model.py).

Chinese has no spaces and most words are two characters, so character n-grams (1 to 3 by default)
carry the words, their typos and their variants; digits become 0 (an amount's shape, not its
value, says something), @mentions and links go (they name accounts, not matters), emoji stay (😂
says a lot). Each live or quieted hit of the danger lexicon adds one marker token, so the urgency
model learns from data how much a hit counts in its context.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Featurizer", "analyze", "prepare"]

_MENTION = re.compile(r"@[\w\-]{1,30}")
# The matrix's own name says whom a post addresses, not what it is (as an @mention does): both
# a plea ("请检察院督促") and praise ("为检察官点赞") name it. Left in, a corpus with more praise
# than pleas that name it teaches the models that naming it makes a post no appeal.
_ADDRESSEE = re.compile(r"检察(院|机关|官|长|干警|部门|系统)?|检查院|检查官")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_DIGITS = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
MARKER = "\x00"  # marker tokens start with it; no n-gram of a prepared text does


def prepare(text: str) -> str:
    """The text the n-grams are taken from (`text` is already normalized: NFKC, Simplified)."""
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = _ADDRESSEE.sub(" ", text)
    text = _DIGITS.sub("0", text.lower())
    return _SPACE.sub(" ", text).strip()


def analyze(text: str, ngrams: tuple[int, int], markers: Sequence[str] = ()) -> list[str]:
    """The tokens of a prepared text: its character n-grams, then the marker tokens."""
    low, high = ngrams
    grams = [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]
    grams.extend(MARKER + m for m in markers)
    return grams


_BITS = 21  # every code point + 1 fits in 21 bits (the last is U+10FFFF)
_SHIFT = np.uint64(_BITS)


def _codes(text: str, low: int, high: int) -> npt.NDArray[np.uint64]:
    """Every n-gram of `text` (low <= n <= high <= 3) as one integer: its code points, each plus
    one, side by side in 21-bit fields. Exact (no two n-grams share a code, whatever their
    lengths) and computed by numpy, not a Python loop."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + 1
    grams = [points]  # the codes of the 1-grams; each next length extends the last by a point
    for n in range(2, high + 1):
        if len(points) < n:
            break
        grams.append((grams[-1][:-1] << _SHIFT) | points[n - 1 :])
    parts = grams[low - 1 :]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)


@dataclass(frozen=True)
class Featurizer:
    """TF-IDF of `analyze`'s tokens as scikit-learn computes it with `sublinear_tf=True` and
    `norm="l2"`: (1 + ln tf) · idf, scaled to unit length; tokens outside the vocabulary drop.

    N-grams of up to three characters are looked up by their codes (`_codes`) in a sorted
    array, which costs a post a handful of numpy calls instead of a dictionary lookup per
    n-gram; markers and longer n-grams go through the dictionary."""

    vocabulary: dict[str, int]
    idf: npt.NDArray[np.float64]
    ngrams: tuple[int, int]
    _codes: npt.NDArray[np.uint64] = field(init=False, repr=False, compare=False)
    _code_index: npt.NDArray[np.intp] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        coded = [
            (int(_codes(token, len(token), len(token))[0]), index)
            for token, index in self.vocabulary.items()
            if 1 <= len(token) <= 3 and not token.startswith(MARKER)
        ]
        coded.sort()
        object.__setattr__(self, "_codes", np.array([c for c, _ in coded], dtype=np.uint64))
        object.__setattr__(self, "_code_index", np.array([i for _, i in coded], dtype=np.intp))

    def _indexes(self, text: str, markers: Sequence[str]) -> npt.NDArray[np.intp]:
        """The vocabulary index of every known token of a prepared text, with repeats."""
        low, high = self.ngrams
        codes = _codes(text, low, min(high, 3))
        found = np.searchsorted(self._codes, codes)
        found[found == len(self._codes)] = 0
        known = self._codes[found] == codes if len(self._codes) else np.zeros(0, dtype=bool)
        indexes = self._code_index[found[known]]
        extra = [MARKER + m for m in markers]
        if high > 3:
            extra += [text[i : i + n] for n in range(4, high + 1) for i in range(len(text) - n + 1)]
        if extra:
            more = [i for i in map(self.vocabulary.get, extra) if i is not None]
            indexes = np.concatenate([indexes, np.array(more, dtype=np.intp)])
        return np.asarray(indexes, dtype=np.intp)

    def transform(
        self, text: str, markers: Sequence[str] = ()
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """(feature indexes, weights) of one prepared text; both empty if nothing is known."""
        indexes, tf = np.unique(self._indexes(text, markers), return_counts=True)
        if not len(indexes):
            return np.empty(0, dtype=np.intp), np.empty(0)
        weights = (1.0 + np.log(tf)) * self.idf[indexes]
        norm = float(np.sqrt(weights @ weights))
        return indexes, weights / norm if norm else weights


def cosine(
    a: tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]],
    b: tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]],
) -> float:
    """Cosine of two unit vectors of `Featurizer.transform` (0 when either is empty)."""
    if not len(a[0]) or not len(b[0]):
        return 0.0
    _, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float(a[1][ia] @ b[1][ib])
