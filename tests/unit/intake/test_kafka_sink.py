"""The Kafka sink answers within its timeout: stored, or SinkUnavailable (the webhook's 503)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from fengqiao.contracts import RawPostReceived
from fengqiao.services.intake.adapters.sink import KafkaPostSink, SinkUnavailable


def raw_post() -> RawPostReceived:
    return RawPostReceived(
        occurred_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        producer="test",
        platform="generic",
        channel="webhook",
        account="@新疆检察",
        source_id="src:p1",
        delivery_id="d1",
        payload={"id": "p1"},
    )


class Publisher:
    def __init__(self, *, hang: bool = False, error: Exception | None = None) -> None:
        self.hang, self.error = hang, error
        self.published: list[RawPostReceived] = []

    async def publish(self, message: RawPostReceived) -> None:
        if self.hang:  # Kafka never acknowledges
            await asyncio.sleep(3600)
        if self.error is not None:
            raise self.error
        self.published.append(message)


async def test_an_acknowledged_post_is_stored() -> None:
    publisher, post = Publisher(), raw_post()
    await KafkaPostSink(publisher).put(post)
    assert publisher.published == [post]


async def test_no_acknowledgement_within_the_timeout_is_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(SinkUnavailable, match="TimeoutError"):
        await KafkaPostSink(Publisher(hang=True), timeout=0.05).put(raw_post())
    assert time.monotonic() - started < 1


async def test_a_failed_publish_is_unavailable_naming_the_error() -> None:
    sink = KafkaPostSink(Publisher(error=ConnectionError("broker gone")))
    with pytest.raises(SinkUnavailable, match="ConnectionError: broker gone"):
        await sink.put(raw_post())
