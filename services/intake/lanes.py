"""Intake's first look at a post, before triage: danger words anywhere in the platform's payload
put the post in `posts.raw`'s urgent lane (`RawPostReceived.urgent_hint`), so the normalizer
reads it ahead of a backlog of ordinary posts. Triage decides afterwards (the appeal's own lane
follows `triage.urgent`); a hint that triage does not confirm only cost the post its place in
the queue, never a wrong urgency."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fengqiao.contracts import RawPostReceived
from fengqiao.services.intake.triage.danger import Danger

# Words that only add to other evidence (打伤 "beaten", 救命 "help"): alone they mark many
# ordinary appeals (a quarter of bench/e2e.py's), which would crowd the lane.
WEAK = frozenset({"signal"})
SCANNED = 20_000  # characters of a payload's text looked at, at most
_DEPTH = 8  # levels of a payload's nesting looked into


def danger_hint(danger: Danger) -> Callable[[RawPostReceived], bool]:
    """Whether a post's payload holds a live danger word of a strong kind (violence, trapped,
    missing...), a platform's quoted post included."""

    def hint(post: RawPostReceived) -> bool:
        text = " ".join(_strings(post.payload, _DEPTH))[:SCANNED].lower()
        return any(hit.live and hit.kind not in WEAK for hit in danger.find(text))

    return hint


def _strings(value: Any, depth: int) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth > 0 and isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth - 1)
    elif depth > 0 and isinstance(value, list):
        for item in value:
            yield from _strings(item, depth - 1)
