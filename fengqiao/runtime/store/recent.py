"""A small bounded memory of what this process last saw, for the adapters' hot paths.

What is remembered here is only ever a guess that saves a read: every write it leads to is still
a compare-and-set (an insert against a unique `_id`) that fails when the guess was stale.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `size` entries, each forgotten `ttl` seconds after it was put (None: kept until
    pushed out); the least recently put go first."""

    def __init__(
        self,
        size: int,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError(f"Recent needs room for at least one entry, not {size}")
        self._size, self._ttl, self._clock = size, ttl, clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        put_at, value = found
        if self._ttl is not None and self._clock() - put_at >= self._ttl:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V, *, at: float | None = None) -> None:
        """Remember `value` as of `at` (default: now; pass an earlier instant to age it)."""
        self._entries.pop(key, None)
        if at is None:
            at = 0.0 if self._ttl is None else self._clock()  # without a ttl, nobody asks
        self._entries[key] = (at, value)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
