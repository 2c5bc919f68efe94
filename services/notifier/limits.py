"""Token buckets: per account and channel, and per app, so the platform's budget is never
exceeded. Pure arithmetic on a monotonic `now` the caller passes in."""

from __future__ import annotations

from dataclasses import dataclass, field

from fengqiao.contracts import ReplyChannel

KINDS = {
    ReplyChannel.COMMENT: "comments",
    ReplyChannel.STATUS: "statuses",
    ReplyChannel.PRIVATE_MESSAGE: "messages",
}


@dataclass
class TokenBucket:
    """`capacity` tokens at most, refilled at `rate` per second; one token per message.

    Over any window of T seconds at most `capacity + rate * T` messages pass."""

    rate: float
    capacity: float
    tokens: float = -1.0
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity < 1:
            raise ValueError(f"a bucket needs rate > 0 and capacity >= 1, not {self}")
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now if self.updated is None else max(now, self.updated)

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill(now)
        missing = 1 - self.tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate  # tolerate float rounding

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def give_back(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1)


@dataclass(frozen=True)
class Budget:
    """Messages per hour, and how many may go at once. Over any hour at most `per_hour` pass:
    the bucket holds `burst` and refills at `per_hour - burst` an hour."""

    per_hour: float
    burst: int = 1

    def bucket(self) -> TokenBucket:
        if self.per_hour <= 0:
            raise ValueError(f"a budget needs per_hour > 0, not {self.per_hour}")
        if self.per_hour < 2:  # one message at a time, one an hour
            return TokenBucket(rate=self.per_hour / 3600, capacity=1)
        burst = max(1, min(self.burst, int(self.per_hour) - 1))
        return TokenBucket(rate=(self.per_hour - burst) / 3600, capacity=burst)


@dataclass
class RateLimiter:
    """Buckets per (account, kind of message) and one per app over every account."""

    per_account: dict[str, Budget]
    per_app: Budget | None = None
    enabled: bool = True
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    @staticmethod
    def bucket_name(account: str, channel: ReplyChannel) -> str:
        return f"{account}:{KINDS[channel]}"

    def _pair(self, account: str, channel: ReplyChannel) -> list[TokenBucket]:
        name = self.bucket_name(account, channel)
        buckets = []
        if name not in self._buckets and KINDS[channel] in self.per_account:
            self._buckets[name] = self.per_account[KINDS[channel]].bucket()
        if name in self._buckets:
            buckets.append(self._buckets[name])
        if self.per_app is not None:
            if "app" not in self._buckets:
                self._buckets["app"] = self.per_app.bucket()
            buckets.append(self._buckets["app"])
        return buckets

    def wait(self, account: str, channel: ReplyChannel, now: float) -> float:
        """Seconds until `account` may send on `channel`; 0 means it may now, and the tokens
        are taken."""
        if not self.enabled:
            return 0.0
        buckets = self._pair(account, channel)
        wait = max((b.wait(now) for b in buckets), default=0.0)
        if wait == 0.0:
            for bucket in buckets:
                bucket.take(now)
        return wait

    def give_back(self, account: str, channel: ReplyChannel) -> None:
        """Return the tokens of a message that was not sent after all."""
        if self.enabled:
            for bucket in self._pair(account, channel):
                bucket.give_back()
