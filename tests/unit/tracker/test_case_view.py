"""A case's readable view (`cases`): plain fields, real dates, the timeline in time order, no
bookkeeping; the statistics read cases back from it; the fake keeps only the newest view."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from fengqiao.runtime.store import pack, unpack
from fengqiao.services.tracker import stats
from fengqiao.services.tracker.adapters.case_view import (
    PACKED,
    InMemoryCaseViews,
    case_of,
    readable,
    unpack_view,
    view,
)
from fengqiao.services.tracker.domain import Case, TimelineEntry
from tests.unit.tracker.test_case_lifecycle import T0, answer, asked


def closed_case() -> Case:
    case = answer(asked(), "满意")
    assert case is not None
    return case


def test_a_view_has_dates_and_no_bookkeeping() -> None:
    case = closed_case()
    doc = view(case)
    assert doc["_id"] == case.case_id and doc["version"] == case.version
    assert isinstance(doc["received_at"], dt.datetime) and doc["received_at"].tzinfo
    assert not {"processed", "outbox", "effects", "clocks", "packed"} & set(doc)
    # Nested values are one JSON text each (FerretDB's type description of nested fields).
    assert all(isinstance(doc[name], str) for name in PACKED if doc.get(name) is not None)
    shown = unpack_view(doc)
    at = [dt.datetime.fromisoformat(e["at"]) for e in shown["timeline"]]
    assert at == sorted(at) and all(a.tzinfo == dt.UTC for a in at)
    assert all(dt.datetime.fromisoformat(h["at"]).tzinfo == dt.UTC for h in shown["hops"])


def test_a_view_written_before_its_values_were_packed_reads_the_same() -> None:
    """Nested values as documents and instants as dates, as views were written before."""
    case = closed_case()
    doc = unpack_view(view(case))
    for entry in (*doc["timeline"], *doc["hops"]):
        entry["at"] = dt.datetime.fromisoformat(entry["at"])
    assert readable(doc) == readable(view(case))
    assert case_of(doc) == case_of(view(case))


def test_the_timeline_is_in_time_order_whatever_order_it_was_written_in() -> None:
    def entry(at: str, event: str) -> TimelineEntry:
        return TimelineEntry(at, event, "received", None, None, event)

    case = replace(
        closed_case(),
        timeline=(
            entry("2026-12-01T03:00:00+00:00", "late"),
            entry("2026-12-01T02:00:00+00:00", "early"),
        ),
    )
    assert [e["event"] for e in unpack_view(view(case))["timeline"]] == ["early", "late"]
    assert [e["at"] for e in readable(view(case))["timeline"]] == [
        "2026-12-01T02:00:00+00:00",
        "2026-12-01T03:00:00+00:00",
    ]


def test_the_statistics_from_views_are_those_from_the_cases() -> None:
    cases = [replace(closed_case(), case_id=f"c-{n}") for n in range(3)]
    since, until = T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=60)
    from_views = stats.compute([case_of(view(c)) for c in cases], since, until)
    assert from_views == stats.compute(cases, since, until)
    assert from_views.total["volume"] == 3


async def test_the_fake_keeps_the_newest_view_and_finds_a_period() -> None:
    views = InMemoryCaseViews()
    case = closed_case()
    views.written(case)
    views.written(replace(case, version=case.version - 1, state=case.state))
    assert (await views.get(case.case_id) or {})["version"] == case.version
    received = view(case)["received_at"]
    assert await views.received(received, received + dt.timedelta(seconds=1)) != []
    assert await views.received(received - dt.timedelta(days=1), received) == []


def test_packed_fields_round_trip_and_kept_fields_stay_fields() -> None:
    record = {"state": "sent", "at": T0, "request": {"text": "已受理 ✓"}, "parts": [1, 2]}
    stored = pack(record, lambda name, value: name == "state" or isinstance(value, dt.datetime))
    assert set(stored) == {"state", "at", "packed"}
    assert unpack(stored) == record
    assert unpack({"state": "held"}) == {"state": "held"}
