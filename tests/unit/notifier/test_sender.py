"""Sending a reply at most once: the outbox claim, retries, reconciliation, held and failed
outcomes, rate-limit queues and operators' decisions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fengqiao.contracts import (
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    derived_event_id,
)
from fengqiao.runtime.clock import FakeClock
from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox
from fengqiao.services.notifier.adapters.platform import (
    CannotReconcile,
    PermanentError,
    RetryableError,
)
from fengqiao.services.notifier.domain import ContentPolicy, Renderer
from fengqiao.services.notifier.limits import Budget, RateLimiter
from fengqiao.services.notifier.queue import Queueing
from fengqiao.services.notifier.sender import UNKNOWN, Origin, Sender, Undecidable

START = datetime(2026, 8, 1, 10, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
KEY = "c-0123456789abcdef:acknowledgment:0"
ORIGIN = Origin("replies.requested", 3, 41, "c-0123456789abcdef")


@dataclass
class FakePlatform:
    """A platform client that records what it posted and raises what it is told to."""

    errors: list[Exception] = field(default_factory=list)
    posted: list[tuple[ReplyChannel, ReplyTarget, str, str]] = field(default_factory=list)
    attempts: int = 0
    lookups: int = 0
    lookup_error: Exception | None = None
    # What the platform took although the client saw an error (by text).
    taken: dict[str, str] = field(default_factory=dict)

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.posted.append((channel, target, text, token))
        return f"m{len(self.posted)}"

    async def find_posted(
        self,
        channel: ReplyChannel,
        target: ReplyTarget,
        text: str,
        *,
        token: str,
        marker: str = "",
        **_: Any,
    ) -> str | None:
        self.lookups += 1
        if self.lookup_error is not None:
            raise self.lookup_error
        by_marker = [i for t, i in self.taken.items() if marker and marker in t]
        return by_marker[0] if by_marker else self.taken.get(text)

    async def aclose(self) -> None:
        return None


@dataclass
class FakeResults:
    sent: list[ReplySent] = field(default_factory=list)
    dead: list[tuple[str, Origin | None, str]] = field(default_factory=list)

    async def sent_result(self, result: ReplySent) -> None:
        self.sent.append(result)

    async def dead_letter(self, request: ReplyRequested, origin: Origin | None, error: str) -> None:
        self.dead.append((request.idempotency_key, origin, error))


class Results:
    def __init__(self, fake: FakeResults) -> None:
        self.fake = fake

    async def sent(self, result: ReplySent) -> None:
        await self.fake.sent_result(result)

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        for result in results:
            await self.fake.sent_result(result)

    async def dead_letter(
        self, request: ReplyRequested, origin: Origin | None, error: str, *_: str
    ) -> None:
        await self.fake.dead_letter(request, origin, error)


class Crash(Exception):
    """The process dies mid-send: nothing after the claim is recorded."""


@dataclass
class Time:
    """A monotonic clock and a sleep that moves it (and the wall clock) instead of waiting."""

    clock: FakeClock
    now: float = 1000.0
    delays: list[float] = field(default_factory=list)
    moving: asyncio.Event | None = None  # while it is not set, time stands still
    steps: int = 1  # how often a sleep lets the other tasks run (a sleep takes that long)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if self.moving is not None:
            await self.moving.wait()
        self.delays.append(delay)
        self.now += delay
        self.clock.advance(timedelta(seconds=delay))
        for _ in range(self.steps):
            await asyncio.sleep(0)


@dataclass
class Notifier:
    sender: Sender
    outbox: InMemoryOutbox
    platform: FakePlatform
    clock: FakeClock
    time: Time
    results: FakeResults

    @property
    def sleeps(self) -> list[float]:
        return self.time.delays


def make(
    tokens: dict[str, str] | None = None,
    max_attempts: int = 3,
    policy: ContentPolicy | None = None,
    limiter: RateLimiter | None = None,
    outbox: InMemoryOutbox | None = None,
    platform: FakePlatform | None = None,
    queueing: Queueing | None = None,
) -> Notifier:
    outbox, platform, clock = (
        outbox or InMemoryOutbox(),
        platform or FakePlatform(),
        FakeClock(START),
    )
    time, results = Time(clock), FakeResults()
    known = {"@新疆检察": "token-xj"} if tokens is None else tokens
    sender = Sender(
        outbox=outbox,
        platform=platform,
        renderer=Renderer(),
        tokens=known.get,
        clock=clock,
        results=Results(results),
        producer="notifier",
        policy=policy,
        limiter=limiter,
        max_attempts=max_attempts,
        base_delay=0.5,
        settle_seconds=12,
        sleep=time.sleep,
        monotonic=time.monotonic,
        queueing=queueing,
    )
    return Notifier(sender, outbox, platform, clock, time, results)


@pytest.fixture
def n() -> Notifier:
    return make()


def request(
    event_id: str = "req-1", case_id: str = "c-0123456789abcdef", **changes: Any
) -> ReplyRequested:
    variables = {"account": "@新疆检察", "case_ref": case_id[-8:], **changes.pop("variables", {})}
    fields: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": START,
        "producer": "tracker",
        "case_id": case_id,
        "purpose": ReplyPurpose.ACKNOWLEDGMENT,
        "channel": ReplyChannel.COMMENT,
        "target": TARGET,
        "template_id": "acknowledgment",
        "variables": variables,
    }
    return ReplyRequested(**{**fields, **changes})


async def test_a_reply_is_posted_once_and_recorded(n: Notifier) -> None:
    result = await n.sender.handle(request(), ORIGIN)
    [(channel, target, text, token)] = n.platform.posted
    assert (channel, target, token) == (ReplyChannel.COMMENT, TARGET, "token-xj")
    assert text.startswith("您好，@新疆检察 已收到您的求助（编号89abcdef）")
    assert result is not None
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
    assert n.results.sent == [result]
    record = n.outbox.records[KEY]
    assert (record["state"], record["platform_message_id"], record["request_event_id"]) == (
        "sent",
        "m1",
        "req-1",
    )
    assert record["claimed_at"] == record["finished_at"] == START
    assert record["origin"] == {
        "topic": "replies.requested",
        "partition": 3,
        "offset": 41,
        "key": "c-0123456789abcdef",
        "replay_of": None,
    }
    sample = n.sender.metrics.replies.labels("acknowledgment", "@新疆检察", "sent")._value.get()
    assert sample == 1


async def test_a_repeated_request_is_not_posted_again_and_gives_the_same_result(
    n: Notifier,
) -> None:
    first = await n.sender.handle(request())
    n.clock.advance(timedelta(minutes=5))  # a redelivery, later
    again = await n.sender.handle(request())
    assert len(n.platform.posted) == 1
    assert again == first
    assert n.results.sent == [first, first]  # published again: the first may not have landed


async def test_another_request_for_the_same_case_purpose_and_hop_is_not_posted(
    n: Notifier,
) -> None:
    first = await n.sender.handle(request())
    other = await n.sender.handle(request("req-2"))
    assert first is not None and other is not None
    assert n.platform.attempts == 1
    assert (other.status, other.platform_message_id, other.event_id) == (
        "sent",
        "m1",
        first.event_id,
    )


async def test_another_hop_is_another_reply(n: Notifier) -> None:
    await n.sender.handle(request())
    await n.sender.handle(request("req-2", hop=2))
    assert n.platform.attempts == 2


# --------------------------------------------------------------------------- retries


async def test_retryable_errors_are_retried_with_growing_delays(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 503"), RetryableError("HTTP 503")]
    result = await n.sender.handle(request())
    assert result is not None and result.status == "sent"
    assert n.platform.attempts == 3
    assert len(n.platform.posted) == 1
    first, second = n.sleeps
    assert 0.5 <= first <= 0.75  # base delay, plus up to 50 % jitter
    assert 1.0 <= second <= 1.5
    assert n.platform.lookups == 0  # a 503 was never taken: nothing to reconcile


async def test_the_platforms_retry_after_is_respected(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 429", retry_after=30)]
    result = await n.sender.handle(request())
    assert result is not None and result.status == "sent"
    [delay] = n.sleeps
    assert 30 <= delay <= 45


async def test_after_the_last_try_the_reply_fails_and_is_dead_lettered(n: Notifier) -> None:
    n.platform.errors = [RetryableError(f"HTTP 503 #{i}") for i in range(3)]
    result = await n.sender.handle(request(), ORIGIN)
    assert result is not None
    assert result.status == "failed"
    assert result.error == "gave up after 3 tries: HTTP 503 #2"
    assert result.platform_message_id is None
    assert result.text is not None
    assert n.platform.attempts == 3
    assert len(n.sleeps) == 2  # no wait after the last try
    assert n.outbox.records[KEY]["state"] == "failed"
    assert n.results.dead == [(KEY, ORIGIN, "gave up after 3 tries: HTTP 503 #2")]


async def test_a_failed_reply_is_not_tried_again(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 503") for _ in range(3)]
    failed = await n.sender.handle(request())
    again = await n.sender.handle(request())
    assert n.platform.attempts == 3
    assert again == failed
    assert len(n.results.dead) == 1


async def test_a_permanent_error_fails_without_retry(n: Notifier) -> None:
    n.platform.errors = [PermanentError("20019: repeat content")]
    result = await n.sender.handle(request())
    assert result is not None
    assert (result.status, result.error) == ("failed", "20019: repeat content")
    assert n.platform.attempts == 1
    assert n.sleeps == []
    assert n.results.dead == []
    assert n.outbox.records[KEY]["state"] == "failed"


# --------------------------------------------------------------------------- unknown outcomes


async def test_a_timeout_after_the_platform_took_the_reply_is_reconciled_not_reposted(
    n: Notifier,
) -> None:
    first = await make().sender.handle(request())
    assert first is not None and first.text is not None
    text = first.text
    n.platform.errors = [RetryableError("ReadTimeout: ", maybe_delivered=True)]
    n.platform.taken[text] = "m-taken"
    result = await n.sender.handle(request())
    assert result is not None
    assert (result.status, result.platform_message_id) == ("sent", "m-taken")
    assert n.platform.attempts == 1 and n.platform.lookups == 1


async def test_a_timeout_when_the_platform_did_not_take_it_is_retried(n: Notifier) -> None:
    n.platform.errors = [RetryableError("HTTP 502: ", maybe_delivered=True)]
    result = await n.sender.handle(request())
    assert result is not None
    assert (result.status, result.platform_message_id) == ("sent", "m1")
    assert (n.platform.attempts, n.platform.lookups, len(n.platform.posted)) == (2, 1, 1)


async def test_a_private_message_of_unknown_outcome_is_held(n: Notifier) -> None:
    n.platform.errors = [RetryableError("ReadTimeout: ", maybe_delivered=True)]
    n.platform.lookup_error = CannotReconcile("no list of sent messages")
    pm = request(channel=ReplyChannel.PRIVATE_MESSAGE)
    result = await n.sender.handle(pm)
    assert result is not None and result.status == "held"
    assert result.error == "ReadTimeout: ; no list of sent messages; held for an operator"
    assert n.platform.attempts == 1
    assert KEY in n.outbox.holds


async def test_a_claim_left_sending_by_a_crash_is_reconciled_found(n: Notifier) -> None:
    n.platform.errors = [Crash("killed mid-send")]
    with pytest.raises(Crash):
        await n.sender.handle(request())
    record = n.outbox.records[KEY]
    assert record["state"] == "sending"
    restarted = make(outbox=n.outbox, platform=n.platform)  # a new process, the same store
    restarted.platform.taken[record["parts"][0]] = "m-before-crash"
    result = await restarted.sender.handle(request())
    assert result is not None
    assert (result.status, result.platform_message_id) == ("sent", "m-before-crash")
    assert n.platform.attempts == 1 and n.platform.posted == []
    # It waited until the interrupted request could no longer be on its way.
    assert restarted.sleeps == [12.0]


async def test_a_claim_left_sending_by_a_crash_is_posted_when_the_platform_lacks_it(
    n: Notifier,
) -> None:
    n.platform.errors = [Crash("killed before the request left")]
    with pytest.raises(Crash):
        await n.sender.handle(request())
    n.clock.advance(timedelta(minutes=1))  # long enough: no wait
    restarted = make(outbox=n.outbox, platform=n.platform)
    restarted.clock.advance(timedelta(minutes=1))
    result = await restarted.sender.handle(request())
    assert result is not None and result.status == "sent"
    assert len(n.platform.posted) == 1 and n.platform.lookups == 1
    assert restarted.sleeps == []


async def test_a_claim_left_sending_is_held_when_the_platform_cannot_tell(n: Notifier) -> None:
    n.platform.errors = [Crash("killed mid-send")]
    with pytest.raises(Crash):
        await n.sender.handle(request())
    n.platform.lookup_error = RetryableError("HTTP 503")
    result = await n.sender.handle(request())
    assert result is not None
    assert (result.status, result.error) == ("held", UNKNOWN)
    assert n.platform.posted == []
    assert n.outbox.records[KEY]["state"] == "held"


# --------------------------------------------------------------------------- refusals


async def test_no_access_token_fails_without_posting() -> None:
    n = make(tokens={})
    result = await n.sender.handle(request())
    assert result is not None
    error = "not sendable: no access token for @新疆检察"
    assert (result.status, result.error) == ("failed", error)
    assert n.platform.attempts == 0
    assert n.outbox.records[KEY]["state"] == "failed"
    # Counted, and dead-lettered: replayed once a token is given, it is sent (test_replay).
    assert n.results.dead == [(KEY, None, error)]
    assert n.sender.metrics.unsendable.labels("@新疆检察")._value.get() == 1


async def test_content_with_private_data_fails_without_posting(n: Notifier) -> None:
    result = await n.sender.handle(request(variables={"case_ref": "电话13812345678"}))
    assert result is not None
    assert result.status == "failed"
    assert result.error == "content refused: reply contains private data: phone"
    assert result.text is None
    assert n.platform.attempts == 0


async def test_a_missing_template_variable_fails_without_posting(n: Notifier) -> None:
    bad = request().model_copy(update={"variables": {"account": "@新疆检察"}})
    result = await n.sender.handle(bad)
    assert result is not None
    assert result.status == "failed"
    assert result.error is not None
    assert "'case_ref' is undefined" in result.error
    assert n.platform.attempts == 0


async def test_results_of_different_outcomes_have_different_event_ids() -> None:
    sent, failed = make(), make(tokens={})
    first, second = await sent.sender.handle(request()), await failed.sender.handle(request())
    assert first is not None and second is not None
    assert first.event_id != second.event_id


async def test_an_overlong_private_message_goes_out_in_parts(n: Notifier) -> None:
    pm = ReplyRequested(
        **{
            **request().model_dump(),
            "purpose": ReplyPurpose.PROGRESS,
            "template_id": "progress",
            "channel": ReplyChannel.PRIVATE_MESSAGE,
            "variables": {
                "account": "@新疆检察",
                "case_ref": "89abcdef",
                "unit_name": "博乐市人民检察院",
                "note": "已经联系用工单位核实情况。" * 30,
            },
        }
    )
    result = await n.sender.handle(pm)
    assert result is not None and result.status == "sent"
    assert len(n.platform.posted) >= 2
    assert all(len(text) <= 300 for _, _, text, _ in n.platform.posted)
    assert result.platform_message_id == ",".join(
        f"m{i + 1}" for i in range(len(n.platform.posted))
    )


# --------------------------------------------------------------------------- rate limits


async def test_replies_beyond_the_budget_wait_in_a_queue_and_all_go_out() -> None:
    limiter = RateLimiter({"comments": Budget(per_hour=60, burst=2)})
    n = make(limiter=limiter)
    results = [await n.sender.handle(request(f"r{i}", f"c-{i:016x}")) for i in range(5)]
    assert [r.status if r else None for r in results] == ["sent", "sent", None, None, None]
    assert n.sender.metrics.queue_depth.labels("@新疆检察:comments")._value.get() == 3
    assert sorted(n.outbox.queue) == [f"c-{i:016x}:acknowledgment:0" for i in range(2, 5)]
    await n.sender.idle()
    assert len(n.platform.posted) == 5
    assert [r.status for r in n.results.sent] == ["sent"] * 5
    assert n.outbox.queue == {}
    assert n.sender.metrics.queue_depth.labels("@新疆检察:comments")._value.get() == 0
    # 58 tokens an hour after a burst of 2: one a little over every minute.
    assert sum(n.sleeps) == pytest.approx(3 * 3600 / 58)


async def test_a_redelivered_queued_request_is_not_queued_twice() -> None:
    n = make(limiter=RateLimiter({"comments": Budget(per_hour=10, burst=1)}))
    await n.sender.handle(request("r0", "c-0000000000000000"))
    assert await n.sender.handle(request("r1", "c-0000000000000001")) is None
    assert await n.sender.handle(request("r1", "c-0000000000000001")) is None
    await n.sender.idle()
    assert len(n.platform.posted) == 2


async def test_queued_replies_are_sent_after_a_restart() -> None:
    n = make(limiter=RateLimiter({"comments": Budget(per_hour=10, burst=1)}))
    await n.sender.handle(request("r0", "c-0000000000000000"))
    await n.sender.handle(request("r1", "c-0000000000000001"))
    await n.sender.stop()  # the process stops with one reply queued
    assert len(n.platform.posted) == 1
    restarted = make(
        limiter=RateLimiter({"comments": Budget(per_hour=10, burst=1)}),
        outbox=n.outbox,
        platform=n.platform,
    )
    await restarted.sender.start()
    await restarted.sender.idle()
    assert len(n.platform.posted) == 2
    assert restarted.results.sent[0].idempotency_key == "c-0000000000000001:acknowledgment:0"
    assert n.outbox.queue == {}


def bucket_gauge(n: Notifier, metric: str, bucket: str = "@新疆检察:comments") -> float:
    value: float = getattr(n.sender.metrics, metric).labels(bucket)._value.get()
    return value


def freeze(n: Notifier) -> None:
    """No token frees until `thaw`: what the queue holds stays there."""
    n.time.moving = asyncio.Event()


def thaw(n: Notifier) -> None:
    assert n.time.moving is not None
    n.time.moving.set()


def bot_acknowledgments(count: int) -> list[tuple[ReplyRequested, Origin | None]]:
    return [(request(f"bot{i}", f"c-b{i:015x}"), ORIGIN) for i in range(count)]


async def test_an_urgent_reply_behind_100_bot_acknowledgments_goes_out_first() -> None:
    n = make(limiter=RateLimiter({"comments": Budget(per_hour=60, burst=1)}))
    freeze(n)  # no token frees before the urgent reply comes
    await n.sender.handle_many(bot_acknowledgments(101))  # the first goes at once
    urgent = request("u1", "c-urgent000000000", urgent=True, purpose=ReplyPurpose.PROGRESS)
    assert await n.sender.handle(urgent) is None  # waits for a token, ahead of the bots
    thaw(n)
    await n.sender.idle()
    keys = [r.idempotency_key for r in n.results.sent]
    assert keys[:3] == [
        "c-b000000000000000:acknowledgment:0",
        urgent.idempotency_key,
        "c-b000000000000001:acknowledgment:0",
    ]
    assert len(keys) == len(set(keys)) == 102


async def test_urgent_replies_go_first_then_acknowledgments_then_the_rest() -> None:
    n = make(limiter=RateLimiter({"comments": Budget(per_hour=60, burst=1)}))
    freeze(n)
    await n.sender.handle(request("first", "c-0000000000000000"))
    progress = request("p", "c-0000000000000001", purpose=ReplyPurpose.PROGRESS)
    ack = request("a", "c-0000000000000002")
    urgent_ack = request("u", "c-0000000000000003", urgent=True)
    resolution = request("r", "c-0000000000000004", purpose=ReplyPurpose.RESOLUTION)
    await n.sender.handle_many([(r, None) for r in (progress, ack, urgent_ack, resolution)])
    thaw(n)
    await n.sender.idle()
    assert [r.request_event_id for r in n.results.sent] == ["first", "u", "a", "p", "r"]


async def test_a_full_queue_keeps_the_best_in_memory_and_the_rest_parked() -> None:
    n = make(
        limiter=RateLimiter({"comments": Budget(per_hour=3600, burst=1)}),
        queueing=Queueing(limit=3),
    )
    freeze(n)
    await n.sender.handle_many(bot_acknowledgments(6))  # 1 sent, 3 queued, 2 only parked
    assert bucket_gauge(n, "queue_depth") == 3 and bucket_gauge(n, "spilled") == 2
    assert len(n.outbox.queue) == 5  # nothing is lost: every one waits in the store
    urgent = request("u1", "c-urgent000000000", urgent=True)
    await n.sender.handle(urgent)  # a full queue takes it, and lets the last bot go
    assert bucket_gauge(n, "queue_depth") == 3 and bucket_gauge(n, "spilled") == 3
    await n.sender.start()  # one sweep: the backlog gauge counts the store's
    assert bucket_gauge(n, "parked") == 6
    thaw(n)
    await n.sender.idle()
    assert len(n.results.sent) == 4 and n.results.sent[1].idempotency_key == urgent.idempotency_key
    await n.sender.start()  # room again: the parked ones come back
    await n.sender.idle()
    keys = [r.idempotency_key for r in n.results.sent]
    assert len(keys) == len(set(keys)) == 7 and n.outbox.queue == {}
    await n.sender.start()
    assert bucket_gauge(n, "parked") == 0 and bucket_gauge(n, "queue_depth") == 0


async def test_a_case_that_turns_urgent_keeps_its_replies_in_order() -> None:
    n = make(limiter=RateLimiter({"comments": Budget(per_hour=60, burst=1)}))
    freeze(n)
    await n.sender.handle_many(bot_acknowledgments(3))
    ack = request("a", "c-0000000000000009")
    announcement = request(
        "d", "c-0000000000000009", purpose=ReplyPurpose.DISPATCH_ANNOUNCEMENT, urgent=True
    )
    await n.sender.handle(ack)
    await n.sender.handle(announcement)  # its case is urgent now: both go before the bots
    n.time.steps = 50  # each reply is sent before the next token frees
    thaw(n)
    await n.sender.idle()
    assert [r.request_event_id for r in n.results.sent][:3] == ["bot0", "a", "d"]


class FlakyOutbox(InMemoryOutbox):
    """The store refuses the first `failures` attempt records (an outage); when each try came."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures, self.tries, self.now = failures, list[float](), lambda: 0.0

    async def attempt(self, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        self.tries.append(self.now())
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the store is away")
        return await super().attempt(key, record)


async def test_a_parked_reply_whose_send_failed_is_retried_on_a_timer_with_backoff() -> None:
    outbox = FlakyOutbox(failures=2)
    n = make(
        limiter=RateLimiter({"comments": Budget(per_hour=3600, burst=1)}),
        outbox=outbox,
        queueing=Queueing(sweep_seconds=10, retry_base_seconds=30, retry_max_seconds=300),
    )

    async def ready() -> bool:
        return True

    outbox.now = n.time.monotonic
    freeze(n)
    n.sender.start_when(ready)  # the timer: a sweep every 10 s (of the fake clock)
    await n.sender.handle(request("r0", "c-0000000000000000"))
    await n.sender.handle(request("r1", "c-0000000000000001"))  # queued: its send fails
    thaw(n)
    for _ in range(10_000):
        if len(n.platform.posted) == 2:
            break
        await asyncio.sleep(0)
    await n.sender.stop()
    assert len(n.platform.posted) == 2 and n.outbox.queue == {}
    assert [r.status for r in n.results.sent] == ["sent", "sent"]
    first, second, third = outbox.tries
    # Not before its backoff, doubling (the fake time's sleepers add up: no upper bound).
    assert second - first >= 30 and third - second >= 60
    assert n.sender.metrics.parked_retries._value.get() == 2


async def test_queued_replies_move_with_their_partition_to_another_replica() -> None:
    budget = {"comments": Budget(per_hour=60, burst=1)}
    a = make(limiter=RateLimiter(budget), queueing=Queueing(partitioned=True))
    freeze(a)
    a.sender.assigned({3})
    await a.sender.handle_many(bot_acknowledgments(4))  # read from partition 3
    assert bucket_gauge(a, "queue_depth") == 3
    a.sender.revoked({3})  # a rebalance gives partition 3 to replica b
    assert bucket_gauge(a, "queue_depth") == 0
    await a.sender.handle_many(bot_acknowledgments(5)[4:])  # a poll handled after the revoke
    assert bucket_gauge(a, "queue_depth") == 0
    thaw(a)
    await a.sender.idle()
    assert len(a.platform.posted) == 1 and len(a.outbox.queue) == 4  # still parked
    b = make(
        limiter=RateLimiter(budget),
        queueing=Queueing(partitioned=True),
        outbox=a.outbox,
        platform=a.platform,
    )
    await b.sender.start()
    assert bucket_gauge(b, "queue_depth") == 0  # not b's: it owns no partition yet
    b.sender.assigned({3})
    await b.sender.start()
    await b.sender.idle()
    assert len(a.platform.posted) == 5 and a.outbox.queue == {}
    assert a.outbox.attempts.keys() == {r.idempotency_key for r in b.results.sent}


async def test_a_rebalance_of_the_topic_keeps_the_replies_read_from_its_urgent_lane() -> None:
    """The lane's consumer is assigned its partitions apart from the topic's: a revoked
    partition of replies.requested says nothing of the lane's partition of the same number."""
    budget = {"comments": Budget(per_hour=60, burst=1)}
    a = make(limiter=RateLimiter(budget), queueing=Queueing(partitioned=True))
    freeze(a)
    a.sender.assigned({3})
    lane = Origin("replies.requested.urgent", 3, 41, "c-0123456789abcdef")
    await a.sender.handle_many([(r, lane) for r, _ in bot_acknowledgments(4)])
    assert bucket_gauge(a, "queue_depth") == 3
    a.sender.revoked({3})
    assert bucket_gauge(a, "queue_depth") == 3
    await a.sender.handle_many([(r, lane) for r, _ in bot_acknowledgments(5)[4:]])
    assert bucket_gauge(a, "queue_depth") == 4  # not taken for a poll of a lost partition
    thaw(a)
    await a.sender.idle()
    assert len(a.platform.posted) == 5


# --------------------------------------------------------------------------- operators


HOLD = ContentPolicy(hold_categories=frozenset({"crime_report"}), hold_urgent=True)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"category": "crime_report"}, "category crime_report needs an operator's approval"),
        ({"urgent": True}, "urgent case: replies need an operator's approval"),
    ],
)
async def test_replies_in_held_categories_and_urgent_ones_wait_for_an_operator(
    changes: dict[str, Any], reason: str
) -> None:
    n = make(policy=HOLD)
    result = await n.sender.handle(request(**changes))
    assert result is not None
    assert (result.status, result.error) == ("held", reason)
    assert result.text is not None and "编号89abcdef" in result.text
    assert n.platform.attempts == 0
    [held] = await n.sender.held()
    assert (held["key"], held["reason"], held["text"]) == (KEY, reason, result.text)


async def test_an_approved_reply_is_posted_once() -> None:
    n = make(policy=HOLD)
    await n.sender.handle(request(category="crime_report"))
    result = await n.sender.decide(KEY, approve=True, operator="ops-1")
    assert result is not None and result.status == "sent"
    assert len(n.platform.posted) == 1
    assert await n.sender.held() == []
    with pytest.raises(Undecidable, match="is not held"):
        await n.sender.decide(KEY, approve=True, operator="ops-2")
    again = await n.sender.handle(request(category="crime_report"))
    assert again == result
    assert len(n.platform.posted) == 1


async def test_a_rejected_reply_is_never_posted() -> None:
    n = make(policy=HOLD)
    await n.sender.handle(request(urgent=True))
    result = await n.sender.decide(KEY, approve=False, operator="ops-1", note="wait for police")
    assert result is not None
    assert (result.status, result.error) == ("failed", "rejected by ops-1: wait for police")
    assert n.platform.attempts == 0
    assert [r.status for r in n.results.sent] == ["held", "failed"]


async def test_two_operators_cannot_both_decide() -> None:
    n = make(policy=HOLD)
    await n.sender.handle(request(urgent=True))
    first, second = await asyncio.gather(
        n.sender.decide(KEY, approve=True, operator="ops-1"),
        n.sender.decide(KEY, approve=False, operator="ops-2"),
        return_exceptions=True,
    )
    assert isinstance(first, ReplySent) and first.status == "sent"
    assert isinstance(second, Undecidable)
    assert len(n.platform.posted) == 1


async def test_an_unknown_reply_cannot_be_decided(n: Notifier) -> None:
    with pytest.raises(Undecidable, match="reply nope is not held"):
        await n.sender.decide("nope", approve=True, operator="ops")


async def test_approval_runs_the_gate_again() -> None:
    n = make(policy=HOLD)
    await n.sender.handle(request(urgent=True))
    n.sender._policy = ContentPolicy(sensitive_words=("求助",))  # the list grew meanwhile
    result = await n.sender.decide(KEY, approve=True, operator="ops-1")
    assert result is not None
    assert (result.status, result.error) == (
        "failed",
        "content refused: reply contains a sensitive word: 求助",
    )
    assert n.platform.attempts == 0
