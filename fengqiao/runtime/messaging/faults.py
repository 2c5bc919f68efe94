"""Transient or poison: the one place that tells a failure that can pass (the store or Kafka cannot
be reached for a while) from one that never will (a message off contract, an action the case
refuses), and the waiting out of the first kind.

A transient failure is retried, for as long as the outage lasts, and never dead-lettered; every
other failure goes to dead letters at once. `Outages` is what one service waits through: every
retry loop of the service shares its backoff (0.5 s doubling to 15 s), its log (one line per
wait, with the attempt count, however many messages wait), its counter and its readiness
(`/readyz` says "not ready" while an outage is being waited out).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import (
    BrokerNotAvailableError,
    KafkaError,
    KafkaTimeoutError,
    KafkaUnavailableError,
)
from prometheus_client import CollectorRegistry, Counter
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

log = logging.getLogger("fengqiao.runtime.faults")

T = TypeVar("T")

FIRST_WAIT, LONGEST_WAIT = 0.5, 15.0

# MongoDB's codes of errors that pass (pymongo retries the same ones): HostUnreachable,
# HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown, ExceededTimeLimit,
# SocketException, NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
# NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
# Kafka errors that say the cluster is not there now, though aiokafka does not call them retriable.
_KAFKA_AWAY = (KafkaTimeoutError, KafkaUnavailableError, BrokerNotAvailableError)
# An OSError about files is a mistake, not an outage.
_NOT_NETWORK = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)
_NOT_NETWORK_ERRNO = frozenset({errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS})


class Unavailable(Exception):
    """Raise it (from its cause) to say: this can pass, try again later."""


def is_transient(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from or while handling, says the store or
    Kafka cannot be reached now: retry it, never dead-letter it."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _transient_itself(current):
            return True
        pending += [current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return False


def _transient_itself(exc: BaseException) -> bool:
    if isinstance(exc, (Unavailable, ConnectionFailure, TimeoutError, ConnectionError)):
        return True  # pymongo's AutoReconnect, NetworkTimeout, NotPrimaryError, server selection
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, _KAFKA_AWAY)
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        errors = [*details.get("writeErrors", ()), *details.get("writeConcernErrors", ())]
        return bool(errors) and all(e.get("code") in TRANSIENT_CODES for e in errors)
    if isinstance(exc, OperationFailure):
        return exc.code in TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("RetryableWriteError")
    if isinstance(exc, OSError):
        return not isinstance(exc, _NOT_NETWORK) and exc.errno not in _NOT_NETWORK_ERRNO
    return False


class Outages:
    """The outage a service is waiting out now, if any (see the module docstring).

    `retry(step, where)` runs `step` until it does not fail transiently; a failure that is not
    transient is raised at once. A loop of its own calls `wait(exc, where, waiter)` after each
    transient failure and `passed(waiter)` once its step went through. Waiters of one service
    share one backoff: the first failure after a wait ran out starts the next, longer wait and
    logs it; the others wait for the same end. The outage is over (logged, with how long it
    lasted) once no waiter is failing any more."""

    def __init__(
        self,
        service: str,
        registry: CollectorRegistry | None = None,
        *,
        first: float = FIRST_WAIT,
        longest: float = LONGEST_WAIT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service, self.first, self.longest = service, first, longest
        self._sleep, self._monotonic = sleep, monotonic
        self.retries = Counter(
            "fengqiao_transient_retries_total",
            "Steps retried because the store or Kafka could not be reached (never dead-lettered)",
            ["service", "where", "error_type"],
            registry=registry or CollectorRegistry(),
        )
        self.failing: set[object] = set()  # the waiters whose last try failed transiently
        self.since = 0.0  # when the outage began (monotonic)
        self.attempt = 0
        self.until = 0.0  # the current wait ends then
        self.reason = ""

    def readiness(self) -> str:
        """ "ok", or what is being waited out (for `/readyz`)."""
        if not self.failing:
            return "ok"
        lasted = self._monotonic() - self.since
        return f"waiting out an outage for {lasted:.0f} s (attempt {self.attempt}): {self.reason}"

    async def wait(self, exc: BaseException, where: str, waiter: object) -> None:
        """Wait before `waiter` tries `where` again after the transient failure `exc`."""
        now = self._monotonic()
        self.retries.labels(self.service, where, type(exc).__name__).inc()
        if not self.failing:
            self.since, self.attempt, self.until = now, 0, now
        self.failing.add(waiter)
        if now >= self.until:
            self.attempt += 1
            wait = min(self.first * 2 ** (self.attempt - 1), self.longest)
            self.until = now + wait
            self.reason = f"{where}: {type(exc).__name__}: {exc}"[:300]
            log.warning(
                "%s: %s failed (%s: %s); the store or Kafka is away, attempt %d, "
                "trying again in %.1f s",
                *(self.service, where, type(exc).__name__, str(exc)[:200], self.attempt, wait),
            )
        await self._sleep(max(self.until - now, 0.0))

    def passed(self, waiter: object) -> None:
        """`waiter`'s step went through (or it gave up): once no waiter fails, the outage is
        over."""
        if waiter in self.failing:
            self.failing.discard(waiter)
            if not self.failing:
                log.warning(
                    "%s: recovered after %.1f s and %d attempts",
                    *(self.service, self._monotonic() - self.since, self.attempt),
                )

    async def retry(self, step: Callable[[], Awaitable[T]], where: str) -> T:
        """`step()`, tried again after each transient failure for as long as they last."""
        waiter = object()
        try:
            while True:
                try:
                    return await step()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    await self.wait(exc, where, waiter)
        finally:
            self.passed(waiter)
