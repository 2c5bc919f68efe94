"""`ops cases` puts a case's messages from every topic on one timeline; `ops metrics` reads the
subscriber metrics every service exposes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest

from fengqiao.contracts import CaseEventRecorded, CaseState
from fengqiao.ops import cases, scrape
from fengqiao.runtime.messaging import SubscriberMetrics
from fengqiao.testing.factories import AT, appeal_message, dispatch_message


def messages() -> list[tuple[str, object]]:
    appeal = appeal_message("博乐市拖欠工资 电话13912345678", case_id="c-1")
    other = appeal_message(
        "米东区打人", case_id="c-2", event_id="appeal-2", account="@乌鲁木齐检察"
    )
    opened = CaseEventRecorded(
        occurred_at=AT,
        producer="tracker",
        case_id="c-1",
        event="case.opened",
        state=CaseState.RECEIVED,
        caused_by="appeal-1",
    )
    hop = dispatch_message(case_id="c-1", occurred_at=AT + timedelta(seconds=1))
    return [
        ("dispatch.orders", hop),
        ("case.events", opened),
        ("appeals", appeal),
        ("appeals", other),
    ]


def test_a_case_is_found_by_id_author_account_or_text() -> None:
    assert [t.case_id for t in cases.timelines(messages(), "c-1")] == ["c-1"]
    assert [t.case_id for t in cases.timelines(messages(), "u1", by="author")] == ["c-1", "c-2"]
    assert [t.case_id for t in cases.timelines(messages(), "@乌鲁木齐检察")] == ["c-2"]
    assert [t.case_id for t in cases.timelines(messages(), "拖欠工资", by="text")] == ["c-1"]
    assert cases.timelines(messages(), "c-1", by="text") == []


def test_the_timeline_is_in_time_order_with_private_data_masked() -> None:
    [timeline] = cases.timelines(messages(), "c-1")
    rows = timeline.as_dict()["timeline"]
    assert [r["topic"] for r in rows] == ["appeals", "case.events", "dispatch.orders"]
    assert "13912345678" not in rows[0]["summary"] and "139****5678" in rows[0]["summary"]
    assert rows[2]["summary"].startswith("hop 1: xj → 652700")


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


def test_the_summary_reads_what_the_subscribers_counted() -> None:
    registry = CollectorRegistry()
    metrics = SubscriberMetrics("tracker", registry)
    for offset in range(19):
        metrics.observe(Record("appeals", 0, offset), 0.004, None)
    metrics.observe(Record("appeals", 0, 19), 0.3, ValueError("bad"))
    metrics.dead_letters.labels("tracker", "appeals").inc()
    metrics.lag.labels("tracker", "tracker.appeals", "appeals", "0").set(3)
    text = generate_latest(registry).decode() + "fengqiao_tracker_overdue_cases 2.0\n"
    summary = scrape.summarize("tracker", "http://t", text).as_dict()
    line = summary["topics"]["appeals"]
    assert (line["processed"], line["failed"], line["dead_letters"]) == (19, 1, 1)
    assert line["handler_p95_seconds"] == 0.005  # 19 of 20 within the 5 ms bucket
    assert summary["consumer_lag"] == 3
    assert summary["gauges"] == {"fengqiao_tracker_overdue_cases": 2.0}
    assert metrics.handled[("appeals", 0)] == 20
