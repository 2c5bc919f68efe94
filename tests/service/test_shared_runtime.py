"""What every service gets from fengqiao's runtime: each subscriber measured (processed, failed,
latency), failures dead-lettered, readiness that waits for the consumers, AsyncAPI served."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
from aiokafka import TopicPartition
from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import APPEALS, AppealNormalized, DeadLetter
from fengqiao.runtime.messaging import BatchFailures, batch_subscriber, topic_subscriber
from fengqiao.runtime.service import Runtime, _consumers_ready, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.factories import appeal_message


def sample(runtime: Runtime, name: str, **labels: str) -> float | None:
    return runtime.registry.get_sample_value(name, {"service": "svc", **labels})


async def test_every_subscriber_is_measured_and_its_failures_dead_lettered() -> None:
    runtime = Runtime.create("svc", StackSettings(), with_mongo=False)
    letters: list[DeadLetter] = []

    @topic_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeal: AppealNormalized) -> None:
        if appeal.case_id == "c-bad":
            raise ValueError("cannot take this one")

    @runtime.broker.subscriber(APPEALS.dlq)
    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    async with TestKafkaBroker(runtime.broker) as broker:
        for case_id in ("c-1", "c-bad", "c-2"):
            message = appeal_message(case_id=case_id, event_id=f"e-{case_id}")
            await broker.publish(message.model_dump(mode="json"), topic=APPEALS.name)

    topic = {"topic": APPEALS.name}
    assert sample(runtime, "fengqiao_messages_processed_total", **topic) == 2
    failed = {**topic, "error_type": "ValueError"}
    assert sample(runtime, "fengqiao_messages_failed_total", **failed) == 1
    assert sample(runtime, "fengqiao_dead_letters_total", **topic) == 1
    assert sample(runtime, "fengqiao_handler_seconds_count", **topic) == 3
    [letter] = letters
    assert letter.error == "cannot take this one" and letter.consumer == "svc"


async def test_a_batch_subscriber_dead_letters_only_the_messages_it_could_not_take() -> None:
    """One poll: a message off contract and one the handler fails go to dead letters, each on its
    own; the others are handed over together, in order, and counted as processed."""
    runtime = Runtime.create("svc", StackSettings(), with_mongo=False)
    letters: list[DeadLetter] = []
    batches: list[list[str]] = []

    @batch_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeals: list[AppealNormalized]) -> BatchFailures:
        batches.append([a.case_id for a in appeals])
        if any(a.case_id == "c-boom" for a in appeals):
            raise RuntimeError("store gone")
        return BatchFailures(
            {
                i: ValueError("cannot take this one")
                for i, a in enumerate(appeals)
                if a.case_id == "c-bad"
            }
        )

    @runtime.broker.subscriber(APPEALS.dlq)
    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    off_contract = appeal_message(case_id="c-off").model_dump(mode="json") | {"is_appeal": "maybe"}
    bodies = [
        appeal_message(case_id=c, event_id=f"e-{c}").model_dump(mode="json")
        for c in ("c-1", "c-bad", "c-2")
    ]
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish_batch(bodies[0], off_contract, *bodies[1:], topic=APPEALS.name)
        await broker.publish_batch(b"{not json", topic=APPEALS.name)
        # A handler that raises fails each message it was given.
        boom = [appeal_message(case_id=c).model_dump(mode="json") for c in ("c-3", "c-boom")]
        await broker.publish_batch(*boom, topic=APPEALS.name)

    assert batches == [["c-1", "c-bad", "c-2"], [], ["c-3", "c-boom"]]
    assert sorted(letter.error for letter in letters) == [
        "Invalid JSON: key must be a string at line 1 column 2",
        "cannot take this one",
        "is_appeal: Input should be a valid boolean, unable to interpret input",
        "store gone",
        "store gone",
    ]
    topic = {"topic": APPEALS.name}
    assert sample(runtime, "fengqiao_messages_processed_total", **topic) == 2
    assert sample(runtime, "fengqiao_dead_letters_total", **topic) == 5
    assert sample(runtime, "fengqiao_handler_seconds_count", **topic) == 7


class Consumer:
    def __init__(self, group: str, assigned: set[TopicPartition], generation: int) -> None:
        self._group_id = group
        self._assigned = assigned
        self._coordinator = SimpleNamespace(generation=generation)

    def assignment(self) -> set[TopicPartition]:
        return self._assigned


def subscriber(consumer: Consumer | None, topic: str = "appeals") -> Any:
    return SimpleNamespace(consumer=consumer, topic_names=[topic])


async def test_ready_only_when_every_consumer_joined_its_group() -> None:
    joined = Consumer("svc.appeals", {TopicPartition("appeals", 0)}, 1)
    spare = Consumer("svc.case.events", set(), 3)  # more replicas than partitions
    waiting = Consumer("svc.replies.sent", set(), -1)
    ready = SimpleNamespace(subscribers=[subscriber(joined), subscriber(spare)])
    assert await _consumers_ready(ready) == "ok"  # type: ignore[arg-type]
    not_yet = SimpleNamespace(
        subscribers=[subscriber(joined), subscriber(waiting), subscriber(None, "unit.actions")]
    )
    assert await _consumers_ready(not_yet) == (  # type: ignore[arg-type]
        "svc.replies.sent: not assigned; unit.actions: not started"
    )


async def test_readyz_names_what_is_missing_and_asyncapi_is_served() -> None:
    runtime = Runtime.create("svc", StackSettings(kafka_bootstrap="127.0.0.1:1"), with_mongo=False)

    @topic_subscriber(runtime.broker, APPEALS, group_id="svc", action="t", description="t")
    async def handle(appeal: AppealNormalized) -> None:
        pass

    app = http_app(runtime, description="a test service")
    transport = httpx.ASGITransport(app=app)  # no lifespan: nothing started
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        ready = await client.get("/readyz")
        spec = (await client.get("/asyncapi.json")).json()
        page = await client.get("/asyncapi")
    assert ready.status_code == 503
    # The topic's urgent lane is read by a consumer of its own.
    assert (
        ready.json()["checks"]["consumers"] == "appeals.urgent: not started; appeals: not started"
    )
    assert any(c.get("address") == APPEALS.name for c in spec["channels"].values())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "AsyncApiStandalone.render" in page.text and APPEALS.name in page.text


class LagConsumer(Consumer):
    async def committed(self, tp: TopicPartition) -> int | None:
        return {0: 2, 1: 4}.get(tp.partition)

    def highwater(self, tp: TopicPartition) -> int | None:
        return 10 if tp.partition < 2 else None


async def test_consumer_lag_counts_from_what_was_handled_else_from_the_commit() -> None:
    runtime = Runtime.create("svc", StackSettings(), with_mongo=False)
    tps = {TopicPartition("appeals", p) for p in (0, 1, 2)}
    broker = SimpleNamespace(subscribers=[subscriber(LagConsumer("svc.appeals", tps, 1))])
    runtime.metrics.handled.update({("appeals", 0): 9, ("case.events", 0): 5})
    await runtime.metrics.refresh_lag(broker)  # type: ignore[arg-type]

    def lag(partition: int) -> float | None:
        labels = {"group": "svc.appeals", "topic": "appeals", "partition": str(partition)}
        return sample(runtime, "fengqiao_consumer_lag", **labels)

    assert (lag(0), lag(1), lag(2)) == (1, 6, None)  # partition 2: nothing fetched yet
    assert runtime.metrics.handled == {("appeals", 0): 9, ("appeals", 1): 4}


def test_a_service_with_a_store_counts_its_commands_unless_told_not_to() -> None:
    """The store listener is on the client `Runtime.create` builds (`FENGQIAO_STORE_METRICS`)."""

    def families(runtime: Runtime) -> set[str]:
        return {family.name for family in runtime.registry.collect()}

    counted = Runtime.create("svc", StackSettings(), with_mongo=True)
    assert {"fengqiao_store_commands", "fengqiao_store_documents"} <= families(counted)
    for runtime in (
        Runtime.create("svc", StackSettings(store_metrics=False), with_mongo=True),
        Runtime.create("svc", StackSettings(), with_mongo=False),
    ):
        assert not {f for f in families(runtime) if f.startswith("fengqiao_store_")}
