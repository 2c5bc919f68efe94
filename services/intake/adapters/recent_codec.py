"""An author's record of recent appeals as stored (`recent_mongo`): its appeals as one JSON text
(`packed`), each an object of the fields linking reads, leaving out those at their default, the
time as milliseconds since the epoch and the sketch as base64 of big-endian 64-bit integers.

One JSON text, not nested documents: FerretDB keeps with each document a description of every
nested field's type, about half of a recent appeal's 1.8 KB when each was its own document.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import from_json, to_json

from fengqiao.services.intake.linking import RecentAppeal

Entry = dict[str, Any]
EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)

_OPTIONAL = ("follow_up_of", "duplicate_of", "category", "link_reason", "suggested",
             "suggested_reason")  # fmt: skip
_FLAGS = ("urgent", "urgent_case")


def entry(appeal: RecentAppeal) -> Entry:
    """The stored form of `appeal` (its platform and author are the record's)."""
    found: Entry = {
        "key": appeal.key,
        "post_id": appeal.post_id,
        "event_id": appeal.event_id,
        "case_id": appeal.case_id,
        "at": (appeal.posted_at - EPOCH) // MICROSECOND,
        "fp": base64.b64encode(
            struct.pack(f">{len(appeal.fingerprint)}Q", *appeal.fingerprint)
        ).decode(),
        "words": appeal.words,
    }
    found |= {name: getattr(appeal, name) for name in _OPTIONAL if getattr(appeal, name)}
    found |= {name: True for name in _FLAGS if getattr(appeal, name)}
    if appeal.amounts:
        found["amounts"] = sorted(appeal.amounts)
    if appeal.phones:
        found["phones"] = sorted(appeal.phones)
    if not appeal.is_appeal:
        found["is_appeal"] = False
    return found


def appeal(found: Entry, platform: str, author: str) -> RecentAppeal:
    """The appeal of a stored entry."""
    packed = base64.b64decode(found["fp"])
    return RecentAppeal(
        key=found["key"],
        platform=platform,
        author=author,
        post_id=found.get("post_id"),
        event_id=found["event_id"],
        case_id=found["case_id"],
        posted_at=EPOCH + found["at"] * MICROSECOND,
        fingerprint=struct.unpack(f">{len(packed) // 8}Q", packed),
        words=found.get("words", ""),
        amounts=frozenset(found.get("amounts", ())),
        phones=frozenset(found.get("phones", ())),
        is_appeal=found.get("is_appeal", True),
        follow_up_of=found.get("follow_up_of"),
        duplicate_of=found.get("duplicate_of"),
        category=found.get("category"),
        link_reason=found.get("link_reason"),
        suggested=found.get("suggested"),
        suggested_reason=found.get("suggested_reason"),
        urgent=found.get("urgent", False),
        urgent_case=found.get("urgent_case", False),
    )


def entries(doc: dict[str, Any] | None) -> dict[str, Entry]:
    """The entries of a record's version, by post key (none for no version)."""
    if doc is None:
        return {}
    return {e["key"]: e for e in from_json(doc.get("packed", "[]"))}


def appeals(doc: dict[str, Any] | None, platform: str, author: str) -> list[RecentAppeal]:
    return [appeal(e, platform, author) for e in entries(doc).values()]


def kept(old: dict[str, Entry], new: Iterable[RecentAppeal], most: int) -> list[Entry]:
    """The entries of the next version: the old and the new, the newest `most` of them."""
    every = list(old.values()) + [entry(a) for a in new]
    every.sort(key=lambda e: (e["at"], e["key"]), reverse=True)
    return every[:most]


def packed(found: list[Entry]) -> str:
    return to_json(found).decode()
