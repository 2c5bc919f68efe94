"""The direct producers' partitioner: Kafka's default placement of keys, remembered."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from fengqiao.runtime.messaging import RememberedPartitioner

PARTITIONS = [0, 1, 2, 3, 4, 5]


def test_keys_land_where_the_default_partitioner_puts_them() -> None:
    remembered = RememberedPartitioner()
    keys = [f"case-{i}".encode() for i in range(500)] + ["案件-1".encode(), b"", b"\xff" * 64]
    for _ in range(2):  # hashed, then remembered
        for key in keys:
            assert remembered(key, PARTITIONS, PARTITIONS) == DefaultPartitioner()(
                key, PARTITIONS, PARTITIONS
            )


def test_a_key_is_placed_again_when_the_topic_has_more_partitions() -> None:
    remembered = RememberedPartitioner()
    key = b"case-7"
    assert remembered(key, PARTITIONS, PARTITIONS) == DefaultPartitioner()(key, PARTITIONS, [])
    more = list(range(12))
    assert remembered(key, more, more) == DefaultPartitioner()(key, more, more)


def test_it_forgets_everything_when_full_and_stays_right() -> None:
    remembered = RememberedPartitioner(size=3)
    keys = [f"k{i}".encode() for i in range(10)]
    for key in keys * 2:
        assert remembered(key, PARTITIONS, PARTITIONS) == DefaultPartitioner()(
            key, PARTITIONS, PARTITIONS
        )
    assert len(remembered._known) <= 3


def test_messages_without_key_are_spread_over_available_partitions() -> None:
    remembered = RememberedPartitioner()
    placed = {remembered(None, PARTITIONS, [2, 4]) for _ in range(200)}
    assert placed == {2, 4}
    assert not remembered._known
