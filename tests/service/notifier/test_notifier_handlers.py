"""Notifier's subscriber through FastStream's in-memory broker, with a fake platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from faststream.middlewares import AckPolicy

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    DeadLetter,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
)
from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.service import Runtime
from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox
from fengqiao.services.notifier.adapters.platform import NotSendable, PermanentError, RetryableError
from fengqiao.services.notifier.app import build
from fengqiao.services.notifier.settings import NotifierSettings

NOW = datetime(2026, 8, 1, 10, 5, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")


@dataclass
class FakePlatform:
    errors: list[Exception] = field(default_factory=list)
    posted: list[tuple[ReplyChannel, ReplyTarget, str, str]] = field(default_factory=list)

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        if self.errors:
            raise self.errors.pop(0)
        self.posted.append((channel, target, text, token))
        return f"m{len(self.posted)}"

    async def find_posted(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str, **_: Any
    ) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class Notifier:
    runtime: Runtime
    platform: FakePlatform
    outbox: InMemoryOutbox
    app: FastAPI
    results: list[ReplySent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


REVIEWER = Identity("local:gu.min", "顾敏", "xj", frozenset({Role.REVIEWER}), "token")
HANDLER = Identity("local:ma.lan", "马兰", "652701", frozenset({Role.HANDLER}), "token")
PEOPLE = {"token-reviewer-gu-min": REVIEWER, "token-handler-ma-lan": HANDLER}
AS_REVIEWER = {"Authorization": "Bearer token-reviewer-gu-min"}


@pytest.fixture
def notifier() -> Notifier:
    platform, outbox = FakePlatform(), InMemoryOutbox()
    runtime, app, _ = build(
        NotifierSettings(
            default_access_token="t",
            hold_categories=["crime_report"],
            retry_base_seconds=0.001,
            max_attempts=2,
            rate_limits=False,
        ),
        platform=platform,
        outbox=outbox,
        clock=FakeClock(NOW),
        guard=Guard("notifier", [FixedTokens(PEOPLE)]),
    )
    probe = Notifier(runtime, platform, outbox, app)

    @runtime.broker.subscriber(REPLIES_SENT.name, group_id="probe")
    async def on_sent(result: ReplySent) -> None:
        probe.results.append(result)

    @runtime.broker.subscriber(REPLIES_REQUESTED.dlq, group_id="probe")
    async def on_dead(letter: DeadLetter) -> None:
        probe.dead.append(letter)

    return probe


def request(
    case_id: str = "c-0123456789abcdef", category: str | None = None, **variables: str
) -> ReplyRequested:
    return ReplyRequested(
        category=category,
        event_id=f"req-{case_id}",
        occurred_at=datetime(2026, 8, 1, 10, tzinfo=UTC),
        producer="tracker",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=TARGET,
        template_id="acknowledgment",
        variables={"account": "@新疆检察", "case_ref": case_id[-8:], **variables},
    )


async def test_a_reply_request_is_posted_once_and_reported(notifier: Notifier) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name)
    [(channel, target, text, token)] = notifier.platform.posted
    assert (channel, target, token) == (ReplyChannel.COMMENT, TARGET, "t")
    assert "编号89abcdef" in text
    [result] = notifier.results
    assert (result.status, result.platform_message_id, result.text) == ("sent", "m1", text)
    assert (result.case_id, result.request_event_id, result.producer) == (
        "c-0123456789abcdef",
        "req-c-0123456789abcdef",
        "notifier",
    )
    assert result.idempotency_key == "c-0123456789abcdef:acknowledgment:0"
    assert result.occurred_at == NOW
    assert notifier.outbox.records[result.idempotency_key]["state"] == "sent"


async def test_a_redelivered_request_is_not_posted_again(notifier: Notifier) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name)
        await broker.publish(request(), REPLIES_REQUESTED.name)
    assert len(notifier.platform.posted) == 1
    first, again = notifier.results
    assert again == first  # same event id and content: the tracker ignores the repeat


async def test_each_case_gets_its_own_reply(notifier: Notifier) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request("c-1111111111"), REPLIES_REQUESTED.name)
        await broker.publish(request("c-2222222222"), REPLIES_REQUESTED.name)
    assert len(notifier.platform.posted) == 2
    assert [r.case_id for r in notifier.results] == ["c-1111111111", "c-2222222222"]


async def test_a_refused_reply_is_reported_as_failed(notifier: Notifier) -> None:
    notifier.platform.errors = [PermanentError("20012: text too long")]
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name)
    [result] = notifier.results
    assert (result.status, result.error) == ("failed", "20012: text too long")
    assert notifier.platform.posted == []


async def test_private_data_in_a_reply_is_never_posted(notifier: Notifier) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(case_ref="13812345678"), REPLIES_REQUESTED.name)
    assert notifier.platform.posted == []
    [result] = notifier.results
    assert result.status == "failed"
    assert result.error == "content refused: reply contains private data: phone"


async def test_outcomes_are_counted(notifier: Notifier) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name)
    sample = notifier.runtime.registry.get_sample_value(
        "fengqiao_notifier_replies_total",
        {"purpose": "acknowledgment", "account": "@新疆检察", "status": "sent"},
    )
    assert sample == 1.0


async def test_after_the_last_try_the_request_is_dead_lettered_and_reported_failed(
    notifier: Notifier,
) -> None:
    notifier.platform.errors = [RetryableError("HTTP 503: busy"), RetryableError("HTTP 503: busy")]
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name, key=b"c-0123456789abcdef")
    [result] = notifier.results
    assert (result.status, result.error) == ("failed", "gave up after 2 tries: HTTP 503: busy")
    [letter] = notifier.dead
    assert (letter.origin_topic, letter.consumer, letter.error_type) == (
        "replies.requested",
        "notifier",
        "RetriesExhausted",
    )
    assert letter.error == "gave up after 2 tries: HTTP 503: busy"
    assert ReplyRequested.model_validate_json(letter.payload) == request()


async def test_a_reply_not_sendable_as_configured_is_dead_lettered_and_sent_when_replayed(
    notifier: Notifier,
) -> None:
    """No client for the reply's platform: failed, counted, dead-lettered as NotSendable; the
    same request replayed (the header `fengqiao ops dlq replay` puts on it) once the
    configuration is fixed is sent."""
    notifier.platform.errors = [NotSendable("no client for platform 'weibo' (known: none)")]
    replay = {"fengqiao-replay-of": "replies.requested:0:7"}
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(), REPLIES_REQUESTED.name, key=b"c-0123456789abcdef")
        [letter] = notifier.dead
        assert letter.error_type == "NotSendable"
        assert "no client for platform" in letter.error
        transport = httpx.ASGITransport(app=notifier.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as http:
            metrics = (await http.get("/metrics")).text
        assert 'fengqiao_notifier_replies_unsendable_total{account="@新疆检察"} 1.0' in metrics
        await broker.publish(
            request(), REPLIES_REQUESTED.name, key=b"c-0123456789abcdef", headers=replay
        )
    assert [r.status for r in notifier.results] == ["failed", "sent"]
    assert len(notifier.platform.posted) == 1


async def test_an_operator_approves_a_held_reply_over_http(notifier: Notifier) -> None:
    key = "c-0123456789abcdef:acknowledgment:0"
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(category="crime_report"), REPLIES_REQUESTED.name)
        assert notifier.platform.posted == []
        transport = httpx.ASGITransport(app=notifier.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://n", headers=AS_REVIEWER
        ) as http:
            [held] = (await http.get("/ops/replies/held")).json()
            assert (held["key"], held["reason"]) == (
                key,
                "category crime_report needs an operator's approval",
            )
            # Who decides is the caller: a handler may not; an operator in the body is refused.
            handler = {"Authorization": "Bearer token-handler-ma-lan"}
            refused = await http.post(f"/ops/replies/{key}/approve", json={}, headers=handler)
            assert refused.status_code == 403
            named = await http.post(f"/ops/replies/{key}/approve", json={"operator": "ops-1"})
            assert named.status_code == 422
            approved = await http.post(f"/ops/replies/{key}/approve", json={"note": "可以发"})
            assert approved.status_code == 200
            assert approved.json()["status"] == "sent"
            again = await http.post(f"/ops/replies/{key}/reject", json={})
            assert again.status_code == 409
            assert "is not held" in again.json()["detail"]
            unknown = await http.post("/ops/replies/nope/approve")
            assert unknown.status_code == 409
            assert (await http.get("/ops/replies/held")).json() == []
    assert len(notifier.platform.posted) == 1
    assert [r.status for r in notifier.results] == ["held", "sent"]


@pytest.mark.parametrize(
    "bad",
    [
        b"not json at all",
        b'{"type": "reply.requested"}',
        b"[1, 2]",
        "\u0000\ud800".encode("utf-8", "surrogatepass"),
    ],
)
async def test_a_message_that_is_no_reply_request_goes_to_the_dead_letters_alone(
    notifier: Notifier, bad: bytes
) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(bad, REPLIES_REQUESTED.name, key=b"k1")
        await broker.publish(request(), REPLIES_REQUESTED.name)
    [letter] = notifier.dead
    assert (letter.origin_topic, letter.origin_key, letter.consumer) == (
        "replies.requested",
        "k1",
        "notifier",
    )
    assert letter.payload == bad.decode("utf-8", "replace")
    [result] = notifier.results
    assert result.status == "sent"


async def test_a_batch_is_claimed_and_recorded_once_per_key(notifier: Notifier) -> None:
    batch = [request(f"c-{i:016x}") for i in range(20)]
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        for r in [*batch, *batch[:5]]:
            await broker.publish(r, REPLIES_REQUESTED.name)
    assert len(notifier.platform.posted) == 20
    assert sorted(r.case_id for r in notifier.results if r.status == "sent") == sorted(
        [r.case_id for r in batch] + [r.case_id for r in batch[:5]]
    )
    assert len({r.event_id for r in notifier.results}) == 20


def test_requests_are_read_through_the_batch_pipeline(notifier: Notifier) -> None:
    """As the tracker's: a poll is committed by the pipeline once handled, in poll order (its
    explicit offsets), not by FastStream after each handler."""
    [subscriber] = [
        s
        for s in notifier.runtime.broker.subscribers
        if getattr(s, "topic_names", None) == [REPLIES_REQUESTED.name]
    ]
    assert type(subscriber).__name__ == "BatchSubscriber"
    assert subscriber.ack_policy is AckPolicy.MANUAL
