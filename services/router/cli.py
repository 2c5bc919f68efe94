"""`fengqiao route`: posts as JSON lines in, routing decisions as JSON lines out.

The same code path as the service (`Router.decide`). This module takes already-normalized
appeals: the caller hands in a `Normalizer` (fengqiao/cli.py uses intake's pure functions, since
services do not import each other).

In:  {"id", "channel", "account", "author": "<id>" | {"id", "name"?, "residence"?}, "text",
      "geo"?: {"lat", "lon"}}
Out: {"id", "is_appeal", "urgent", "category", "prefecture", "county", "chain", "duplicate_of",
      "evidence", "confidence"}; a malformed line → one error line on stderr naming its number.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import AppealNormalized
from services.router.domain import Decision, Router

__all__ = ["Duplicates", "Normalizer", "PostIn", "decision_record", "parse_post", "route_lines"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthorIn(_In):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=128)
    residence: str | None = Field(default=None, max_length=128)


class GeoIn(_In):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PostIn(BaseModel):
    """One input line. Unknown keys (an evaluation set's `expect`) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(min_length=1, max_length=128)
    channel: str = Field(default="weibo", min_length=1, max_length=32)
    account: str = Field(min_length=1, max_length=64)
    author: AuthorIn
    text: str = Field(min_length=1, max_length=5000)
    geo: GeoIn | None = None


Normalizer = Callable[[PostIn], AppealNormalized]


class BadLine(ValueError):
    """A line that is not a post; the message says why, without a traceback."""


def parse_post(line: str) -> PostIn:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg} at column {exc.colno}") from None
    if isinstance(raw, dict) and isinstance(raw.get("author"), str):
        raw = {**raw, "author": {"id": raw["author"]}}
    try:
        return PostIn.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(line)"
        raise BadLine(f"{where}: {first['msg']}") from None


_NOISE = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}|[\s\W_]+")


class Duplicates:
    """Near-duplicate posts (并单): the same author saying nearly the same thing again, or
    anyone posting nearly the same long text. Compares character bigrams with recent posts."""

    def __init__(self, window: int = 2000, same_author: float = 0.6, anyone: float = 0.9) -> None:
        self._recent: deque[tuple[str, str, frozenset[str]]] = deque(maxlen=window)
        self._same_author, self._anyone = same_author, anyone

    def check(self, post_id: str, author: str, text: str) -> str | None:
        """The id of an earlier post this one repeats, or None; then remembers this one."""
        grams = _bigrams(_NOISE.sub("", text))
        found = None
        for other_id, other_author, other in self._recent:
            if not grams or not other:
                continue
            similarity = len(grams & other) / len(grams | other)
            limit = self._same_author if other_author == author else self._anyone
            if similarity >= limit and (len(grams) >= 6 or other_author == author):
                found = other_id
                break
        self._recent.append((found or post_id, author, grams))
        return found


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


def _code(router: Router, unit_id: str | None) -> str | None:
    if unit_id is None:
        return None
    codes = router.directory[unit_id].jurisdiction_codes
    return codes[0] if codes else None


def decision_record(router: Router, post_id: str, decision: Decision) -> dict[str, Any]:
    """The output line of one decision."""
    target = router.directory[decision.chain[-1]]
    prefecture = router.directory.prefecture_of(target.id)
    evidence = [e.model_dump(exclude_none=True) for e in decision.where.evidence]
    evidence += [{"kind": "rule", "value": r, "weight": 1.0} for r in decision.what.rules_fired]
    return {
        "id": post_id,
        "is_appeal": decision.is_appeal,
        "urgent": decision.what.urgent,
        "category": decision.what.category if decision.is_appeal else "not_appeal",
        "prefecture": _code(router, prefecture.id if prefecture else None),
        "county": _code(router, target.id) if target.tier == "county" else None,
        "chain": list(decision.chain),
        "duplicate_of": None,
        "evidence": evidence,
        "confidence": decision.where.confidence,
    }


def route_lines(
    lines: Iterable[str], router: Router, normalize: Normalizer, out: TextIO, err: TextIO
) -> int:
    """Route every line; 0 when every line was a post, 1 when some were not (all reported)."""
    duplicates = Duplicates()
    status = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            post = parse_post(line)
            appeal = normalize(post)
        except (BadLine, ValueError) as exc:
            err.write(f"line {number}: {exc}\n")
            status = 1
            continue
        record = decision_record(router, post.id, router.decide(appeal))
        record["duplicate_of"] = duplicates.check(post.id, post.author.id, appeal.text)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return status
