"""Each internal of a library that fengqiao/runtime/compat.py relies on, checked against the
installed version: an upgrade that renames or removes one fails here, not in production."""

from __future__ import annotations

import inspect

from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from prometheus_client import CollectorRegistry, Counter

from fengqiao.runtime import compat


async def test_a_subscribers_consumer_before_start_and_once_set() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    one = broker.subscriber("a", group_id="g.a")
    many = broker.subscriber(
        "b", group_id="g.b", max_workers=2, ack_policy=AckPolicy.NACK_ON_ERROR
    )  # one consumer per worker, as fengqiao's broker builds them (acks after the handler)
    # Built without a consumer; FastStream sets `consumer` (and `consumer_subgroup`) on start.
    assert one.consumer is None
    assert many.consumer_subgroup == []
    assert compat.subscriber_consumers(one) == [] == compat.subscriber_consumers(many)
    assert "self.consumer = " in inspect.getsource(type(one).start)
    assert "self.consumer_subgroup = " in inspect.getsource(type(many).start)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="g.a")
    one.consumer = consumer
    many.consumer_subgroup = [consumer, consumer]
    assert compat.subscriber_consumers(one) == [consumer]
    assert compat.subscriber_consumers(many) == [consumer, consumer]
    await consumer.stop()


async def test_a_consumers_group_and_generation() -> None:
    grouped = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="t.appeals")
    alone = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    assert compat.consumer_group(grouped) == "t.appeals"
    assert compat.consumer_group(alone) is None
    # Not started: no coordinator yet, no generation joined.
    assert grouped._coordinator is None
    assert compat.consumer_generation(grouped) == -1
    # Once started, `_coordinator` is a GroupCoordinator whose `generation` is the one joined.
    assert "self._coordinator = GroupCoordinator(" in inspect.getsource(AIOKafkaConsumer.start)
    assert "self.generation = " in inspect.getsource(GroupCoordinator)
    await grouped.stop()
    await alone.stop()


async def test_a_consumers_client_can_watch_topics_and_refresh_metadata() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    assert isinstance(consumer._client, AIOKafkaClient)
    assert list(inspect.signature(AIOKafkaClient.set_topics).parameters) == ["self", "topics"]
    assert list(inspect.signature(AIOKafkaClient.force_metadata_update).parameters) == ["self"]
    await consumer.stop()


def test_a_registered_collector_is_found_by_its_sample_name() -> None:
    registry = CollectorRegistry()
    counter = Counter("fengqiao_things", "Things", ["kind"], registry=registry)
    assert compat.registered_collector(registry, "fengqiao_things_total") is counter
    assert compat.registered_collector(registry, "fengqiao_other_total") is None
