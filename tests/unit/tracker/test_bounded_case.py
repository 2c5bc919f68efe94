"""A case stays one document of bounded size: repeats of its appeal are counted, not appended to
its timeline; the ids of repeats applied are kept in a window; the timeline has a byte budget;
a case stored before any of this still reads (issue 18, deliver 6)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import bson

from fengqiao.contracts import AppealNormalized, Author, UnitActionKind
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.case_codec import from_document, stored, unpacked
from fengqiao.services.tracker.adapters.case_view import unpack_view, view
from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
from fengqiao.services.tracker.domain import Bounds, Case, Rules, open_case
from fengqiao.testing.factories import appeal_message
from tests.unit.tracker.cases import CASE, PLAIN, T0, action, dispatched

LIMIT = 256 * 1024  # bytes of the newest version as stored (BSON), whatever the repeats


def repeat(n: int, kind: str = "duplicate_of", **fields: Any) -> AppealNormalized:
    """The n-th repost of the case's appeal, by someone else each time."""
    given: dict[str, Any] = {
        "event_id": f"repeat-{n}",
        "post_event_id": f"raw-repeat-{n}",
        "case_id": CASE,
        "occurred_at": T0 + timedelta(seconds=n),
        "author": Author(id=f"reposter-{n}"),
        kind: "appeal-1",
    }
    text = f"转发 //@某某: 博乐市的工地拖欠工资，求助 第{n}次 " + "还是没人管" * 8
    return appeal_message(text, **(given | fields))


def repeated(case: Case, count: int, rules: Rules = PLAIN, start: int = 0) -> Case:
    for n in range(start, start + count):
        case = open_case(case, repeat(n), rules=rules)
    return case


def size(case: Case) -> int:
    return len(bson.encode(stored(case)))


def test_5000_repeats_keep_the_case_under_256_kb_and_are_counted() -> None:
    case = repeated(dispatched(), 5000)
    assert size(case) < LIMIT, size(case)
    assert case.repeats["count"] == case.repeats["duplicates"] == 5000
    assert case.repeats["first_at"] == (T0).isoformat()
    assert case.repeats["last_at"] == (T0 + timedelta(seconds=4999)).isoformat()
    assert [r["author_id"] for r in case.repeats["recent"]] == [
        f"reposter-{n}" for n in range(4995, 5000)
    ]
    on_timeline = [e for e in case.timeline if e.event == "case.follow_up"]
    assert len(on_timeline) == PLAIN.bounds.repeats_on_timeline
    assert len(case.repeat_ids) == PLAIN.bounds.repeat_ids
    assert case.state is domain.S.DISPATCHED and len(case.processed) == 3  # appeal, 2 hops


def test_a_repeat_delivered_again_within_the_window_changes_nothing() -> None:
    case = repeated(dispatched(), 20)
    assert open_case(case, repeat(3), rules=PLAIN) is case
    assert open_case(case, repeat(19), rules=PLAIN) is case
    assert case.has_processed("repeat-7") and not case.has_processed("repeat-20")


def test_a_repeat_delivered_after_the_window_is_only_counted_once_more() -> None:
    rules = replace(PLAIN, bounds=Bounds(repeat_ids=4, repeats_on_timeline=0))
    case = repeated(dispatched(rules), 10, rules)
    assert case.repeat_ids == tuple(f"repeat-{n}" for n in range(6, 10))
    again = open_case(case, repeat(2), rules=rules)
    assert again.repeats["count"] == 11
    changed = {k for k, v in vars(again).items() if v != vars(case)[k]}
    assert changed == {"repeats", "repeat_ids", "version"}  # no reply, clock or state
    assert again.repeats["first_at"] == case.repeats["first_at"]  # still the earliest


def test_follow_ups_and_the_same_words_again_are_counted_apart() -> None:
    case = dispatched()
    case = open_case(case, repeat(1, "follow_up_of"), rules=PLAIN)
    case = open_case(case, appeal_message(event_id="same", case_id=CASE), rules=PLAIN)
    assert case.repeats["count"] == 2
    assert case.repeats["follow_ups"] == 1 and case.repeats["again"] == 1
    assert [e.event for e in case.timeline].count("case.follow_up") == 1  # "again": not shown


def test_the_timeline_keeps_to_its_byte_budget_and_its_first_entry() -> None:
    rules = replace(PLAIN, bounds=Bounds(timeline_bytes=8 * 1024))
    case = dispatched(rules)
    for n in range(200):
        note = action(UnitActionKind.NOTE, minutes=40 + n, note="记录" * 100)
        case = domain.act(case, note, rules=rules)
    assert sum(len(e.json) for e in case.timeline) <= 8 * 1024
    assert case.timeline[0].event == "case.opened"
    assert case.timeline[-1].event_id == case.outbox[-1].message.event_id  # the newest kept
    assert case.timeline_dropped + len(case.timeline) == 3 + 200
    assert len(case.processed) == 3 + 200  # every action's id kept: bounded by people


def test_a_case_stored_before_repeats_were_counted_still_reads_and_counts_on() -> None:
    case = repeated(dispatched(), 3)
    doc = json.loads(stored(case)["packed"])
    for gone in ("repeats", "repeat_ids"):
        del doc[gone]
    old = {k: v for k, v in stored(case).items() if k != "timeline_dropped"}
    old["packed"] = json.dumps(doc)
    read = from_document(unpacked(old))
    assert read.repeats == {} and read.repeat_ids == () and read.timeline_dropped == 0
    assert read.case_id == CASE and read.timeline == case.timeline
    later = open_case(read, repeat(4), rules=PLAIN)
    assert later.repeats["count"] == 1 and later.version == case.version + 1


def test_the_view_shows_the_count_but_not_the_ids() -> None:
    case = repeated(dispatched(), 3)
    shown = unpack_view(view(case))
    assert shown["repeats"]["count"] == 3 and shown["timeline_dropped"] == 0
    assert "repeat_ids" not in shown and "processed" not in shown


def test_repeats_of_a_case_with_other_times_keep_first_and_last_seen() -> None:
    case = dispatched()
    late = repeat(1, occurred_at=datetime(2026, 12, 9, tzinfo=UTC))
    early = repeat(2, occurred_at=datetime(2026, 12, 2, tzinfo=UTC))
    case = open_case(open_case(case, late, rules=PLAIN), early, rules=PLAIN)
    assert case.repeats["first_at"] == early.occurred_at.isoformat()
    assert case.repeats["last_at"] == late.occurred_at.isoformat()


async def test_the_statistics_read_a_summary_of_each_case_not_its_timeline() -> None:
    repo = InMemoryCaseRepository()
    case = repeated(dispatched(), 30)
    repo.views_.written(case)  # its view, as a save writes it
    (read,) = await repo.received(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert read.timeline == () and read.repeats == {} and read.masked_text is None
    assert (read.state, read.chain, read.hops, read.sign_due) == (
        case.state,
        case.chain,
        case.hops,
        case.sign_due,
    )
