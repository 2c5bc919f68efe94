"""A handler that fails because the store or Kafka is away is handed its message (or its poll)
again until it passes, and nothing is dead-lettered; one that can never pass is dead-lettered at
once. While the service waits, `/readyz` answers 503 and says why; after, the outage check is ok.
"""

from __future__ import annotations

import asyncio

import httpx
from faststream.kafka import TestKafkaBroker
from pydantic import BaseModel
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from fengqiao.contracts import APPEALS, AppealNormalized, DeadLetter
from fengqiao.runtime.messaging import BatchFailures, batch_subscriber, topic_subscriber
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.factories import appeal_message


def service() -> tuple[Runtime, list[DeadLetter]]:
    runtime = Runtime.create("svc", StackSettings(), with_mongo=False)
    runtime.outages.first = runtime.outages.longest = 0.05  # quick waits
    letters: list[DeadLetter] = []

    @runtime.broker.subscriber(APPEALS.dlq)
    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    return runtime, letters


def retries(runtime: Runtime, error_type: str) -> float | None:
    labels = {"service": "svc", "where": APPEALS.name, "error_type": error_type}
    return runtime.registry.get_sample_value("fengqiao_transient_retries_total", labels)


class Strict(BaseModel):
    n: int


async def test_a_message_failing_transiently_is_retried_until_handled_and_never_dead_lettered() -> (
    None
):
    runtime, letters = service()
    tries: list[str] = []
    handled: list[str] = []

    @topic_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeal: AppealNormalized) -> None:
        tries.append(appeal.case_id)
        if appeal.case_id == "c-bad":
            Strict.model_validate({"n": "not a number"})  # a ValidationError: never passes
        if tries.count(appeal.case_id) <= 2:
            raise AutoReconnect("127.0.0.1:27117: connection closed")
        handled.append(appeal.case_id)

    async with TestKafkaBroker(runtime.broker) as broker:
        for case_id in ("c-1", "c-bad"):
            message = appeal_message(case_id=case_id, event_id=f"e-{case_id}")
            await broker.publish(message.model_dump(mode="json"), topic=APPEALS.name)

    assert tries == ["c-1", "c-1", "c-1", "c-bad"]
    assert handled == ["c-1"]
    [letter] = letters
    assert letter.error_type == "ValidationError" and letter.origin_key is None
    assert retries(runtime, "AutoReconnect") == 2
    topic = {"service": "svc", "topic": APPEALS.name}
    assert runtime.registry.get_sample_value("fengqiao_dead_letters_total", topic) == 1
    assert runtime.outages.readiness() == "ok"


async def test_a_poll_failing_transiently_is_handed_over_again_and_never_dead_lettered() -> None:
    """The handler returns the failures of its poll: a transient one (or raising one) gets the
    whole poll again after the wait; a message it can never take is dead-lettered at once."""
    runtime, letters = service()
    polls: list[list[str]] = []

    @batch_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeals: list[AppealNormalized]) -> BatchFailures:
        polls.append([a.case_id for a in appeals])
        if len(polls) == 1:
            raise ServerSelectionTimeoutError("No servers found yet")
        if len(polls) == 2:
            return BatchFailures({1: AutoReconnect("connection closed")})
        return BatchFailures({0: ValueError("the case refuses this")})

    bodies = [appeal_message(case_id=c).model_dump(mode="json") for c in ("c-1", "c-2")]
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish_batch(*bodies, topic=APPEALS.name)

    assert polls == [["c-1", "c-2"]] * 3
    [letter] = letters
    assert letter.error == "the case refuses this"
    assert retries(runtime, "ServerSelectionTimeoutError") == 1
    assert retries(runtime, "AutoReconnect") == 1
    topic = {"service": "svc", "topic": APPEALS.name}
    assert runtime.registry.get_sample_value("fengqiao_messages_processed_total", topic) == 1


async def test_readyz_is_503_while_an_outage_is_waited_out_and_ok_after() -> None:
    runtime, _ = service()
    runtime.outages.first = runtime.outages.longest = 0.5
    store_back = asyncio.Event()

    @topic_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeal: AppealNormalized) -> None:
        if not store_back.is_set():
            raise AutoReconnect("127.0.0.1:27117: [Errno 111] Connection refused")

    app = http_app(runtime, description="a test service")
    transport = httpx.ASGITransport(app=app)  # no lifespan: the in-memory broker only
    async with (
        TestKafkaBroker(runtime.broker) as broker,
        httpx.AsyncClient(transport=transport, base_url="http://svc") as client,
    ):
        message = appeal_message(case_id="c-1").model_dump(mode="json")
        publishing = asyncio.ensure_future(broker.publish(message, topic=APPEALS.name))
        await asyncio.sleep(0.2)
        during = await client.get("/readyz")
        store_back.set()
        await publishing
        after = await client.get("/readyz")
    assert during.status_code == 503
    assert during.json()["checks"]["outages"].startswith("waiting out an outage for 0 s")
    assert "appeals: AutoReconnect: 127.0.0.1:27117" in during.json()["checks"]["outages"]
    assert after.json()["checks"]["outages"] == "ok"


async def test_an_endpoint_that_meets_an_outage_answers_503_with_retry_after() -> None:
    runtime = Runtime.create("svc", StackSettings(), with_mongo=False)
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/cases/{case_id}")
    async def get_case(case_id: str) -> dict[str, str]:
        if case_id == "down":
            raise ServerSelectionTimeoutError("No servers found")
        raise ValueError("a bug")

    app = http_app(runtime, description="a test service", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        down = await client.get("/cases/down")
        bug = await client.get("/cases/bug")
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    assert bug.status_code == 500
