"""Kafka with SASL/SCRAM-SHA-512 (issue 20, deliver 6): fengqiao's own clients, built from the
settings (`FENGQIAO_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT`, `_SASL_MECHANISM`, `_SASL_USERNAME`,
`_SASL_PASSWORD`), create topics, publish and consume on a broker that accepts SCRAM clients
only; a wrong password stops them with an error that names the settings to fix.

The broker is the test's own (tests/integration/scram_broker.py): the stack's jars, its own
ports and directory, the credential written at storage format time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from fengqiao.contracts import POSTS_RAW, RawPostReceived
from fengqiao.ops import Unreachable
from fengqiao.ops.kafka import connect
from fengqiao.runtime.kafka_security import KafkaAccessRefused
from fengqiao.runtime.messaging import DirectPublisher, ensure_topics, make_broker
from fengqiao.runtime.settings import StackSettings
from tests.integration.scram_broker import ScramKafka, scram_kafka


@pytest.fixture(scope="module")
def scram(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScramKafka]:
    with scram_kafka(StackSettings().cache_dir, tmp_path_factory.mktemp("scram-kafka")) as kafka:
        yield kafka


def settings_for(kafka: ScramKafka, password: str | None = None) -> StackSettings:
    """A service's settings for this broker, as its environment would give them."""
    return StackSettings(
        kafka_bootstrap=kafka.bootstrap,
        external=True,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=kafka.user,
        kafka_sasl_password=password or kafka.password,
    )


def raw_post(delivery: str) -> RawPostReceived:
    return RawPostReceived(
        occurred_at=datetime.now(UTC),
        producer="itest",
        platform="generic",
        channel="webhook",
        account="@新疆检察",
        source_id=f"scram:{delivery}",
        delivery_id=delivery,
        payload={"id": delivery, "text": "博乐市拖欠工资求助"},
    )


async def test_service_clients_create_publish_and_consume_over_scram(scram: ScramKafka) -> None:
    stack = settings_for(scram)
    security = stack.kafka_security()
    # The admin client: every topic, as a service's start creates them.
    assert POSTS_RAW.name in await ensure_topics(stack.kafka_bootstrap, security=security)
    # A service's broker (FastStream) consumes what a DirectPublisher (aiokafka) produced.
    broker = make_broker(stack.kafka_bootstrap, service="scram-test", security=security)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @broker.subscriber(POSTS_RAW.name, group_id="scram-test", auto_offset_reset="earliest")
    async def seen(body: dict[str, Any]) -> None:
        await received.put(body)

    publisher = DirectPublisher(
        stack.kafka_bootstrap, POSTS_RAW, service="scram-test", security=security
    )
    await broker.start()
    await publisher.start()
    try:
        await publisher.publish(raw_post("scram-1"))
        assert (await asyncio.wait_for(received.get(), 60))["delivery_id"] == "scram-1"
        # The broker's own publish, read back by the ops tools' consumer.
        await broker.publish({"probe": "scram-2"}, topic=POSTS_RAW.dlq)
    finally:
        await publisher.stop()
        await broker.stop()
    async with connect(stack.kafka_bootstrap, security=security) as cluster:
        values = [record.value async for record in cluster.read([POSTS_RAW.dlq])]
    assert values == [b'{"probe":"scram-2"}']


async def test_a_wrong_password_is_refused_with_an_error_naming_the_settings(
    scram: ScramKafka,
) -> None:
    wrong = settings_for(scram, password="not-" + scram.password)
    expected = r"refused SASL SCRAM-SHA-512 user 'fengqiao-svc' \(FENGQIAO_KAFKA_SASL_USERNAME"
    # A service's start (its first Kafka step): an error, not an outage waited out forever.
    with pytest.raises(KafkaAccessRefused, match=expected) as refused:
        await ensure_topics(wrong.kafka_bootstrap, security=wrong.kafka_security())
    assert scram.password not in str(refused.value)
    # The operator's tools say the same.
    with pytest.raises(Unreachable, match=expected):
        async with connect(wrong.kafka_bootstrap, security=wrong.kafka_security()):
            pass
    # Without credentials the SCRAM listener lets nothing through.
    with pytest.raises(KafkaError):
        await ensure_topics(scram.bootstrap)
