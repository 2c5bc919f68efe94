"""Token buckets per account and per app: the budget holds over any hour; nothing is dropped."""

from __future__ import annotations

import pytest

from fengqiao.contracts import ReplyChannel
from fengqiao.services.notifier.limits import Budget, RateLimiter, TokenBucket

COMMENT, PM = ReplyChannel.COMMENT, ReplyChannel.PRIVATE_MESSAGE


def sends_over(
    limiter: RateLimiter, account: str, seconds: float, start: float = 0.0, step: float = 1.0
) -> int:
    """How many messages pass in [start, start + seconds] when one is tried every `step` s."""
    sent, now = 0, start
    while now <= start + seconds:
        if limiter.wait(account, COMMENT, now) == 0:
            sent += 1
        now += step
    return sent


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=0.5, capacity=2)
    assert bucket.wait(0) == 0
    bucket.take(0)
    bucket.take(0)
    assert bucket.wait(0) == pytest.approx(2.0)
    assert bucket.wait(1) == pytest.approx(1.0)
    assert bucket.wait(2) == 0
    bucket.take(2)
    assert bucket.wait(100) == 0
    assert bucket.tokens == 2  # never more than its capacity


def test_time_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1, capacity=1)
    bucket.take(10)
    assert bucket.wait(5) == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (-1, 1), (1, 0)])
def test_a_bucket_that_could_never_send_is_refused(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="a bucket needs rate > 0 and capacity >= 1"):
        TokenBucket(rate=rate, capacity=capacity)


@pytest.mark.parametrize(("per_hour", "burst"), [(60, 5), (60, 1), (30, 5), (3, 10)])
def test_no_hour_carries_more_than_the_budget(per_hour: float, burst: int) -> None:
    limiter = RateLimiter({"comments": Budget(per_hour, burst)})
    step = 3600 / per_hour / 1000
    # Tried at discrete steps, a message may just miss its token at the end of the hour.
    assert per_hour - 1 <= sends_over(limiter, "@a", 3600, step=step) <= per_hour
    # The next hour, with the bucket drained, no burst: the refill only.
    burst = limiter._buckets["@a:comments"].capacity
    next_hour = sends_over(limiter, "@a", 3600, start=3600 + step, step=step)
    assert per_hour - burst - 1 <= next_hour <= per_hour


def test_the_default_budget_is_the_platforms_normal_tier() -> None:
    from fengqiao.services.notifier.settings import NotifierSettings

    limiter = NotifierSettings().limiter()
    assert 59 <= sends_over(limiter, "@新疆检察", 3600) <= 60
    assert sends_over(limiter, "@新疆检察", 60, start=3601) <= 1  # drained: about one a minute


def test_accounts_have_their_own_buckets_and_kinds_theirs() -> None:
    limiter = RateLimiter({"comments": Budget(10, 1), "messages": Budget(10, 1)})
    assert limiter.wait("@a", COMMENT, 0) == 0
    assert limiter.wait("@a", COMMENT, 0) > 0
    assert limiter.wait("@b", COMMENT, 0) == 0
    assert limiter.wait("@a", PM, 0) == 0


def test_the_app_bucket_spans_every_account() -> None:
    limiter = RateLimiter({"comments": Budget(100, 5)}, per_app=Budget(3, 1))
    assert limiter.wait("@a", COMMENT, 0) == 0
    wait = limiter.wait("@b", COMMENT, 0)
    assert wait == pytest.approx(1800)  # 2 more an hour, after the first


def test_a_refused_wait_takes_no_token() -> None:
    limiter = RateLimiter({"comments": Budget(10, 1)}, per_app=Budget(100, 5))
    limiter.wait("@a", COMMENT, 0)
    assert limiter.wait("@a", COMMENT, 0) > 0
    # the app bucket lost only the one token the first message took
    assert limiter._buckets["app"].tokens == 4


def test_a_token_given_back_can_be_used_again() -> None:
    limiter = RateLimiter({"comments": Budget(10, 1)})
    assert limiter.wait("@a", COMMENT, 0) == 0
    limiter.give_back("@a", COMMENT)
    assert limiter.wait("@a", COMMENT, 0) == 0


def test_a_disabled_limiter_never_waits() -> None:
    limiter = RateLimiter({"comments": Budget(1, 1)}, per_app=Budget(1, 1), enabled=False)
    assert all(limiter.wait("@a", COMMENT, 0) == 0 for _ in range(1000))


def test_a_kind_without_a_budget_is_not_limited() -> None:
    limiter = RateLimiter({"comments": Budget(1, 1)})
    assert all(limiter.wait("@a", ReplyChannel.STATUS, 0) == 0 for _ in range(10))


def test_a_budget_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="per_hour > 0"):
        Budget(0).bucket()
