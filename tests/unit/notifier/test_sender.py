"""Sending a reply at most once: the outbox claim, retries, held and failed outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import (
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
    derived_event_id,
)
from fengqiao.clock import FakeClock
from services.notifier.adapters.outbox import InMemoryOutbox
from services.notifier.adapters.platform import PermanentError, RetryableError
from services.notifier.domain import Renderer
from services.notifier.sender import Sender

START = datetime(2026, 8, 1, 10, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
KEY = "c-0123456789abcdef:acknowledgment:0"


@dataclass
class FakePlatform:
    """A platform client that records what it posted and raises what it is told to."""

    errors: list[Exception] = field(default_factory=list)
    posted: list[tuple[ReplyChannel, ReplyTarget, str, str]] = field(default_factory=list)
    attempts: int = 0
    closed: bool = False

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.posted.append((channel, target, text, token))
        return f"m{len(self.posted)}"

    async def aclose(self) -> None:
        self.closed = True


class Crash(Exception):
    """The process dies mid-send: nothing after the claim is recorded."""


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass
class Notifier:
    sender: Sender
    outbox: InMemoryOutbox
    platform: FakePlatform
    clock: FakeClock
    sleeps: Sleeps


def make(tokens: dict[str, str] | None = None, max_attempts: int = 3) -> Notifier:
    outbox, platform, clock, sleeps = InMemoryOutbox(), FakePlatform(), FakeClock(START), Sleeps()
    known = {"@新疆检察": "token-xj"} if tokens is None else tokens
    sender = Sender(
        outbox=outbox,
        platform=platform,
        renderer=Renderer(),
        tokens=known.get,
        clock=clock,
        producer="notifier",
        max_attempts=max_attempts,
        base_delay=0.5,
        sleep=sleeps,
    )
    return Notifier(sender, outbox, platform, clock, sleeps)


@pytest.fixture
def n() -> Notifier:
    return make()


def request(event_id: str = "req-1", **variables: str) -> ReplyRequested:
    return ReplyRequested(
        event_id=event_id,
        occurred_at=START,
        producer="tracker",
        case_id="c-0123456789abcdef",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=TARGET,
        template_id="acknowledgment",
        variables={"account": "@新疆检察", "case_ref": "89abcdef", **variables},
    )


async def test_a_reply_is_posted_once_and_recorded(n: Notifier) -> None:
    result = await n.sender.handle(request())
    [(channel, target, text, token)] = n.platform.posted
    assert (channel, target, token) == (ReplyChannel.COMMENT, TARGET, "token-xj")
    assert text.startswith("您好，@新疆检察 已收到您的求助（编号89abcdef）")
    assert (result.status, result.platform_message_id, result.text, result.error) == (
        "sent",
        "m1",
        text,
        None,
    )
    assert (result.case_id, result.request_event_id, result.idempotency_key) == (
        "c-0123456789abcdef",
        "req-1",
        KEY,
    )
    assert result.purpose is ReplyPurpose.ACKNOWLEDGMENT
    assert result.event_id == derived_event_id("reply.sent", KEY, "sent")
    assert result.occurred_at == START
    record = n.outbox.records[KEY]
    assert (record["state"], record["platform_message_id"], record["request_event_id"]) == (
        "sent",
        "m1",
        "req-1",
    )
    assert record["claimed_at"] == record["finished_at"] == START


async def test_a_repeated_request_is_not_posted_again_and_gives_the_same_result(
    n: Notifier,
) -> None:
    first = await n.sender.handle(request())
    n.clock.advance(timedelta(minutes=5))  # a redelivery, later
    again = await n.sender.handle(request())
    assert len(n.platform.posted) == 1
    assert again == first


async def test_another_request_for_the_same_case_purpose_and_hop_is_not_posted(
    n: Notifier,
) -> None:
    first = await n.sender.handle(request())
    other = await n.sender.handle(request("req-2"))
    assert n.platform.attempts == 1
    assert (other.status, other.platform_message_id, other.event_id) == (
        "sent",
        "m1",
        first.event_id,
    )


async def test_retryable_errors_are_retried_with_growing_delays(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 503"), RetryableError("HTTP 502")]
    result = await n.sender.handle(request())
    assert result.status == "sent"
    assert n.platform.attempts == 3
    assert len(n.platform.posted) == 1
    first, second = n.sleeps.delays
    assert 0.5 <= first <= 0.75  # base delay, plus up to 50 % jitter
    assert 1.0 <= second <= 1.5


async def test_the_platforms_retry_after_is_respected(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 429", retry_after=30)]
    assert (await n.sender.handle(request())).status == "sent"
    [delay] = n.sleeps.delays
    assert 30 <= delay <= 45


async def test_retryable_errors_past_max_attempts_are_held(n: Notifier) -> None:
    n.platform.errors = [RetryableError(f"HTTP 503 #{i}") for i in range(3)]
    result = await n.sender.handle(request())
    assert result.status == "held"
    assert result.error == "gave up: HTTP 503 #2"
    assert result.platform_message_id is None
    assert result.text is not None
    assert n.platform.attempts == 3
    assert len(n.sleeps.delays) == 2
    assert n.outbox.records[KEY]["state"] == "held"


async def test_a_held_reply_is_not_tried_again(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 503") for _ in range(3)]
    held = await n.sender.handle(request())
    again = await n.sender.handle(request())
    assert n.platform.attempts == 3
    assert again == held


async def test_a_permanent_error_fails_without_retry(n: Notifier) -> None:
    n.platform.errors = [PermanentError("20019: repeat content")]
    result = await n.sender.handle(request())
    assert (result.status, result.error) == ("failed", "20019: repeat content")
    assert n.platform.attempts == 1
    assert n.sleeps.delays == []
    assert n.outbox.records[KEY]["state"] == "failed"


async def test_a_claim_left_sending_by_a_crash_is_held_not_posted_again(n: Notifier) -> None:
    n.platform.errors = [Crash("killed mid-send")]
    with pytest.raises(Crash):
        await n.sender.handle(request())
    assert n.outbox.records[KEY]["state"] == "sending"
    result = await n.sender.handle(request())
    assert result.status == "held"
    assert result.error == "outcome of an earlier attempt unknown; held for an operator"
    assert n.platform.attempts == 1
    assert n.platform.posted == []
    assert n.outbox.records[KEY]["state"] == "held"


async def test_no_access_token_fails_without_posting() -> None:
    n = make(tokens={})
    result = await n.sender.handle(request())
    assert (result.status, result.error) == ("failed", "no access token for @新疆检察")
    assert n.platform.attempts == 0
    assert n.outbox.records[KEY]["state"] == "failed"


async def test_content_with_private_data_fails_without_posting(n: Notifier) -> None:
    result = await n.sender.handle(request(account="@新疆检察 电话13812345678"))
    assert result.status == "failed"
    assert result.error == "content refused: reply contains private data: phone"
    assert result.text is None
    assert n.platform.attempts == 0


async def test_a_missing_template_variable_fails_without_posting(n: Notifier) -> None:
    bad = request().model_copy(update={"variables": {"account": "@新疆检察"}})
    result = await n.sender.handle(bad)
    assert result.status == "failed"
    assert result.error is not None
    assert "'case_ref' is undefined" in result.error
    assert n.platform.attempts == 0


async def test_results_of_different_outcomes_have_different_event_ids() -> None:
    sent, failed = make(), make(tokens={})
    ids: set[Any] = {
        (await sent.sender.handle(request())).event_id,
        (await failed.sender.handle(request())).event_id,
    }
    assert len(ids) == 2
