"""Repeats of an appeal: counted on the case, not appended to it without end.

A citizen posts about an open case again, a post is reposted thousands of times, the same text
reaches several accounts: intake links each such post to the case (`duplicate_of`, `follow_up_of`,
or the same case id), and each reaches the tracker as an appeal of its own. The first
`Bounds.repeats_on_timeline` go on the timeline (and case.events) as before; every one is counted
in `Case.repeats`: how many, of which kind, first and last seen, and the newest few (which
account, which author, the first words, masked). So a case reposted 5,000 times stays one
document of a few kilobytes, not 5,000 timeline entries in each of its versions.

Idempotency: the ids of the messages a case applied are kept for good (`Case.processed`), but for
repeats, whose number has no bound: only the newest `Bounds.repeat_ids` are kept
(`Case.repeat_ids`, in order). A repeat delivered again (a consumer's restart re-reads what it had
not committed, an operator replays a dead letter) is recognised as long as fewer than that many
later repeats of its case came in between; one delivered again after more is counted once more.
A repeat changes nothing else (no state, no reply, no clock), so that is the whole cost of the
window; every other message keeps its id for good.

The timeline itself is bounded too (`case.with_timeline`): past `Bounds.timeline_bytes` of JSON, the
oldest entries after the first are left out of the case (counted in `Case.timeline_dropped`);
each was published on case.events when it was recorded.
"""

from __future__ import annotations

from typing import Any

from fengqiao.contracts import AppealNormalized
from fengqiao.services.tracker.domain.case import Bounds, Case, Rules, evolve, iso
from fengqiao.services.tracker.domain.outgoing import record

EXCERPT = 140  # characters of a repeat's masked text kept in `recent`


def repeat_kind(appeal: AppealNormalized) -> str:
    if appeal.duplicate_of:
        return "duplicate"
    return "follow-up" if appeal.follow_up_of else "again"


def counted(
    repeats: dict[str, Any], appeal: AppealNormalized, kind: str, bounds: Bounds
) -> dict[str, Any]:
    """`repeats` with `appeal` counted in."""
    at = iso(appeal.occurred_at)
    source = {
        "at": at,
        "kind": kind,
        "account": appeal.account,
        "author_id": appeal.author.id,
        "excerpt": appeal.masked_text[:EXCERPT],
    }
    kinds = {"duplicate": "duplicates", "follow-up": "follow_ups", "again": "again"}
    recent = [*repeats.get("recent", ()), source][-bounds.recent_repeats :]
    return {
        **repeats,
        "count": repeats.get("count", 0) + 1,
        kinds[kind]: repeats.get(kinds[kind], 0) + 1,
        "first_at": min(repeats.get("first_at") or at, at),
        "last_at": max(repeats.get("last_at") or at, at),
        "recent": sorted(recent, key=lambda s: s["at"]),
    }


def repeated(case: Case, appeal: AppealNormalized, rules: Rules) -> Case:
    """The citizen (or someone reposting) posted about the case again: counted; on the timeline
    while the case has had fewer than `repeats_on_timeline` repeats of that kind."""
    bounds = rules.bounds
    kind = repeat_kind(appeal)
    repeats = counted(case.repeats, appeal, kind, bounds)
    if kind != "again" and repeats["count"] <= bounds.repeats_on_timeline:
        detail = f"{kind} via {appeal.account}: {appeal.masked_text}"
        case = record(case, appeal, "case.follow_up", case.state, rules, detail=detail)
    window = bounds.repeat_ids
    return evolve(
        case,
        repeats=repeats,
        repeat_ids=(*case.repeat_ids, appeal.event_id)[-window:] if window else (),
        version=case.version + 1,
    )
