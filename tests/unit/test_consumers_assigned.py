"""Readiness per subscriber: one consumer, or several (`max_workers`), or none yet."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from fengqiao.runtime.messaging import consumers_assigned, subscriber_consumers


def consumer(group: str, partitions: list[int], generation: int = 1) -> Any:
    assigned = {TopicPartition("appeals", p) for p in partitions}
    return SimpleNamespace(
        _group_id=group,
        assignment=lambda: assigned,
        _coordinator=SimpleNamespace(generation=generation),
    )


def broker(*subscribers: Any) -> Any:
    return SimpleNamespace(subscribers=list(subscribers))


def test_a_concurrent_subscriber_is_assigned_the_union_of_its_consumers() -> None:
    many = SimpleNamespace(
        topic_names=["appeals"],
        consumer_subgroup=[consumer("t.appeals", [0, 1]), consumer("t.appeals", [2])],
    )
    assert len(subscriber_consumers(many)) == 2
    assert consumers_assigned(broker(many)) == {"t.appeals": "assigned 3"}


def test_one_consumer_joined_without_partitions_and_one_not_started() -> None:
    joined = SimpleNamespace(topic_names=["a"], consumer=consumer("t.a", []))
    waiting = SimpleNamespace(topic_names=["b"], consumer=None, consumer_subgroup=[])
    unassigned = SimpleNamespace(topic_names=["c"], consumer=consumer("t.c", [], generation=-1))
    assert consumers_assigned(broker(joined, waiting, unassigned)) == {
        "t.a": "joined",
        "b": "not started",
        "t.c": "not assigned",
    }
