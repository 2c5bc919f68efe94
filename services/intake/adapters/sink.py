"""Where accepted posts go: Kafka `posts.raw`, acknowledged by all in-sync replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from fengqiao.contracts import RawPostReceived


class SinkUnavailable(Exception):
    """The post could not be stored; the caller must answer 503 so the platform retries."""


class PostSink(Protocol):
    async def put(self, post: RawPostReceived) -> None:
        """Store `post` durably, or raise SinkUnavailable."""


class Publisher(Protocol):
    async def publish(self, message: RawPostReceived) -> None:
        """Return once Kafka acknowledged `message` (`messaging.DirectPublisher`)."""


class KafkaPostSink:
    """Publishes to `posts.raw` and returns only once Kafka has acknowledged the write.

    Through a `DirectPublisher` (acks=all, idempotent): one publish per webhook request, so
    FastStream's per-message machinery is left out of this path."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        timeout: float = 3.0,
        urgent: Callable[[RawPostReceived], bool] | None = None,
    ) -> None:
        self._publisher = publisher
        self._urgent = urgent  # marks a post for posts.raw's urgent lane (`lanes.danger_hint`)
        # Weibo re-sends after 5 s without an answer: answer 503 before that, not never.
        self._timeout = timeout

    async def put(self, post: RawPostReceived) -> None:
        if self._urgent is not None and not post.urgent_hint and self._urgent(post):
            post = post.model_copy(update={"urgent_hint": True})
        try:
            # wait_for, not asyncio.timeout: the latter cost more CPU per post under load
            # (docs/performance.md, "Intake, router and tools").
            await asyncio.wait_for(self._publisher.publish(post), self._timeout)
        except Exception as exc:
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}") from exc


class InMemoryPostSink:
    """A fake for tests: keeps what it was given; can be made to fail."""

    def __init__(self) -> None:
        self.posts: list[RawPostReceived] = []
        self.fail = False

    async def put(self, post: RawPostReceived) -> None:
        if self.fail:
            raise SinkUnavailable("in-memory sink set to fail")
        self.posts.append(post)
