"""The store listener turns PyMongo's command events into counters: commands, documents written
(the reply's n) and read (the batches returned), time, failures, by collection family."""

from __future__ import annotations

import datetime as dt
from itertools import count
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.monitoring import CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent

from fengqiao.runtime.store.metrics import StoreMetrics, family

ADDRESS = ("127.0.0.1", 27017)


class Events:
    """A fake event stream, as PyMongo publishes it to a listener."""

    def __init__(self, listener: StoreMetrics) -> None:
        self.listener = listener
        self.ids = count(1)

    def start(self, command: dict[str, Any]) -> tuple[int, str]:
        request_id = next(self.ids)
        self.listener.started(CommandStartedEvent(command, "db", request_id, ADDRESS, None))
        return request_id, next(iter(command))

    def answer(self, started: tuple[int, str], reply: dict[str, Any], ms: float = 2.0) -> None:
        request_id, name = started
        took = dt.timedelta(milliseconds=ms)
        event = CommandSucceededEvent(took, reply, name, request_id, ADDRESS, None)
        self.listener.succeeded(event)

    def fail(self, started: tuple[int, str]) -> None:
        request_id, name = started
        failure = {"ok": 0, "errmsg": "boom"}
        took = dt.timedelta(milliseconds=1)
        self.listener.failed(CommandFailedEvent(took, failure, name, request_id, ADDRESS, None))

    def run(self, command: dict[str, Any], reply: dict[str, Any], ms: float = 2.0) -> None:
        self.answer(self.start(command), reply, ms)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def events(registry: CollectorRegistry) -> Events:
    return Events(StoreMetrics("svc", registry))


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, {"service": "svc", **labels})
    return found if found is not None else 0.0


def documents(registry: CollectorRegistry, collection: str, command: str, direction: str) -> float:
    labels = {"collection": collection, "command": command, "direction": direction}
    return value(registry, "fengqiao_store_documents_total", **labels)


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("unit_cases_3f", "unit_cases_*"),
        ("unit_cases_00", "unit_cases_*"),
        ("recent_appeals_ab", "recent_appeals_*"),
        ("open311_case_events_0a", "open311_case_events_*"),
        ("timer_wake_2026120716", "timer_wake_*"),
        ("cases", "cases"),
        ("case_versions", "case_versions"),
        ("open311_cases", "open311_cases"),
        ("weibo_push_nonces", "weibo_push_nonces"),
        ("unit_cases_3fa", "unit_cases_3fa"),  # three hex digits: not a shard of ours
        ("routing", "routing"),
    ],
)
def test_shard_and_hour_suffixes_fold_into_one_family(name: str, folded: str) -> None:
    assert family(name) == folded


def test_writes_count_the_documents_the_reply_says(
    events: Events, registry: CollectorRegistry
) -> None:
    events.run({"insert": "unit_cases_3f", "documents": [{}, {}, {}]}, {"n": 3, "ok": 1})
    events.run({"insert": "unit_cases_07", "documents": [{}, {}]}, {"n": 1, "ok": 1})  # 1 taken
    events.run({"update": "cases", "updates": [{}, {}]}, {"n": 2, "nModified": 1, "ok": 1})
    events.run({"delete": "timer_wake_2026120716", "deletes": [{}]}, {"n": 1, "ok": 1})
    events.run(
        {"findAndModify": "cases", "query": {}},
        {"lastErrorObject": {"n": 1, "updatedExisting": True}, "value": {"_id": 1}, "ok": 1},
    )
    assert (
        value(
            registry, "fengqiao_store_commands_total", collection="unit_cases_*", command="insert"
        )
        == 2
    )
    assert documents(registry, "unit_cases_*", "insert", "written") == 4
    assert documents(registry, "cases", "update", "written") == 2
    assert documents(registry, "timer_wake_*", "delete", "written") == 1
    assert documents(registry, "cases", "findAndModify", "written") == 1
    assert documents(registry, "cases", "findAndModify", "read") == 1
    assert documents(registry, "unit_cases_*", "insert", "read") == 0


def test_reads_count_the_documents_each_batch_returns(
    events: Events, registry: CollectorRegistry
) -> None:
    events.run({"find": "cases", "filter": {}}, {"cursor": {"firstBatch": [{}, {}], "id": 7}})
    events.run({"getMore": 7, "collection": "cases"}, {"cursor": {"nextBatch": [{}], "id": 0}})
    events.run({"find": "cases", "filter": {}}, {"cursor": {"firstBatch": [], "id": 0}})
    events.run({"aggregate": "unit_cases_1c", "pipeline": []}, {"cursor": {"firstBatch": [{}]}})
    events.run({"count": "cases"}, {"n": 40, "ok": 1})  # a number, not documents
    events.run({"distinct": "cases", "key": "unit"}, {"values": ["a", "b", "c"], "ok": 1})
    events.run({"ping": 1}, {"ok": 1})
    commands = "fengqiao_store_commands_total"
    assert value(registry, commands, collection="cases", command="find") == 2
    assert documents(registry, "cases", "find", "read") == 2
    assert value(registry, commands, collection="cases", command="getMore") == 1
    assert documents(registry, "cases", "getMore", "read") == 1
    assert documents(registry, "unit_cases_*", "aggregate", "read") == 1
    assert value(registry, commands, collection="cases", command="count") == 1
    assert documents(registry, "cases", "count", "read") == 0
    assert documents(registry, "cases", "distinct", "read") == 3
    assert value(registry, commands, collection="-", command="ping") == 1
    assert documents(registry, "cases", "find", "written") == 0


def test_time_and_failures_are_counted(events: Events, registry: CollectorRegistry) -> None:
    events.run({"find": "cases", "filter": {}}, {"cursor": {"firstBatch": []}}, ms=250)
    events.run({"find": "cases", "filter": {}}, {"cursor": {"firstBatch": []}}, ms=750)
    events.fail(events.start({"insert": "cases", "documents": [{}]}))
    labels = {"collection": "cases"}
    seconds = "fengqiao_store_command_seconds_total"
    assert value(registry, seconds, command="find", **labels) == pytest.approx(1.0)
    assert value(registry, "fengqiao_store_command_failures_total", command="insert", **labels) == 1
    assert value(registry, "fengqiao_store_commands_total", command="insert", **labels) == 1
    assert value(registry, "fengqiao_store_command_failures_total", command="find", **labels) == 0


def test_commands_in_flight_are_matched_by_request(
    events: Events, registry: CollectorRegistry
) -> None:
    """Answers come in any order; each is counted against its own command; an answer to a
    command never seen started is ignored."""
    first = events.start({"find": "cases", "filter": {}})
    second = events.start({"insert": "unit_cases_3f", "documents": [{}]})
    events.answer(second, {"n": 1})
    events.answer(first, {"cursor": {"firstBatch": [{}, {}, {}]}})
    events.answer((999, "find"), {"cursor": {"firstBatch": [{}]}})
    assert documents(registry, "cases", "find", "read") == 3
    assert documents(registry, "unit_cases_*", "insert", "written") == 1
    assert value(registry, "fengqiao_store_commands_total", collection="cases", command="find") == 1
