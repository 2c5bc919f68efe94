"""`fengqiao route`: posts as JSON lines in, routing decisions as JSON lines out.

The same code path as the services: the caller hands in a `Normalizer` that runs intake's
normalizer on each post, with its triage and its linking to earlier lines (fengqiao/cli.py
composes it, since services do not import each other), then `Router.decide` here.

In:  {"id", "channel", "account", "author": "<id>" | {"id", "name"?, "residence"?}, "text",
      "geo"?: {"lat", "lon"}, "created_at"?: ISO 8601 with a time zone}
Out: {"id", "is_appeal", "urgent", "category", "prefecture", "county", "chain", "duplicate_of",
      "follow_up_of", "triage", "reasons", "evidence", "confidence"}. `duplicate_of` and
      `follow_up_of` name the earlier line that opened the case this one joins (a near copy;
      any repeat, follow-up, repost or thanks); a post that joins a case has that case's place.
      `triage` is true when the post goes to the triage queue for a person, `reasons` says why
      and what decided. A malformed line → one error line on stderr naming its number.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TextIO

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from fengqiao.contracts import AppealNormalized
from fengqiao.services.router.domain import Decision, Router

__all__ = ["Linked", "Normalizer", "PostIn", "decision_record", "parse_post", "route_lines"]


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
    created_at: AwareDatetime | None = None


# The normalized appeal, and the earlier lines it is linked to: {"duplicate_of", "follow_up_of"}.
Linked = tuple[AppealNormalized, dict[str, str | None]]
Normalizer = Callable[[PostIn, int], Awaitable[Linked]]


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
    evidence += [{"kind": "triage", "value": r, "weight": 1.0} for r in decision.what.reasons]
    return {
        "id": post_id,
        "is_appeal": decision.is_appeal,
        "urgent": decision.what.urgent,
        "category": decision.what.category if decision.is_appeal else "not_appeal",
        "prefecture": _code(router, prefecture.id if prefecture else None),
        "county": _code(router, target.id) if target.tier == "county" else None,
        "chain": list(decision.chain),
        "duplicate_of": None,
        "follow_up_of": None,
        "triage": bool(decision.review),
        "reasons": [*decision.review, *decision.what.reasons],
        "evidence": evidence,
        "confidence": decision.where.confidence,
    }


_CASE_FIELDS = ("prefecture", "county", "chain", "evidence", "confidence")


async def route_lines(
    lines: Iterable[str], router: Router, normalize: Normalizer, out: TextIO, err: TextIO
) -> int:
    """Route every line; 0 when every line was a post, 1 when some were not (all reported)."""
    opened: dict[str, dict[str, Any]] = {}  # case id → the record of the line that opened it
    status = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            post = parse_post(line)
            appeal, links = await normalize(post, number)
        except (BadLine, ValueError) as exc:
            err.write(f"line {number}: {exc}\n")
            status = 1
            continue
        record = decision_record(router, post.id, router.decide(appeal))
        record.update(links)
        if appeal.triage is not None and appeal.triage.link_reason:
            record["reasons"].append(f"linked: {appeal.triage.link_reason}")
        if appeal.triage is not None and appeal.triage.suggested_reason:
            record["reasons"].append(f"suggested link: {appeal.triage.suggested_reason}")
        if appeal.follow_up_of and (case := opened.get(appeal.case_id)) is not None:
            # It joins a case that is dispatched already: the case's place, not its own.
            record.update({k: case[k] for k in _CASE_FIELDS})
        elif record["is_appeal"]:
            opened.setdefault(appeal.case_id, record)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return status
