"""Transient or poison (`faults.is_transient`), and the waiting out of an outage (`Outages`): one
backoff, one log line per wait however many wait, a counter, and readiness."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from fengqiao.runtime.messaging import Outages, Unavailable, is_transient


class Strict(BaseModel):
    n: int


def validation_error() -> ValidationError:
    try:
        Strict.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


def raised_while_handling(first: Exception, then: Exception) -> Exception:
    try:
        try:
            raise first
        except Exception:
            raise then  # noqa: B904 - the context is what is tested
    except Exception as exc:
        return exc
    raise AssertionError("not raised")


TRANSIENT = [
    AutoReconnect("connection closed"),
    ServerSelectionTimeoutError("127.0.0.1:27117: [Errno 111] Connection refused"),
    NetworkTimeout("timed out"),
    NotPrimaryError("not primary"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "reset"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed"),
    TimeoutError(),
    KafkaConnectionError("no connection"),
    NotLeaderForPartitionError(),
    RequestTimedOutError(),
    KafkaTimeoutError(),
    UnknownTopicOrPartitionError(),
    OperationFailure("shutting down", code=91),
    WriteError("not writable primary", code=10107),
    BulkWriteError({"writeErrors": [{"index": 0, "code": 11600, "errmsg": "shutdown"}]}),
    Unavailable("try later"),
    ExceptionGroup("both", [ValueError("x"), AutoReconnect("y")]),
]
POISON = [
    validation_error(),
    ValueError("cannot take this one"),
    KeyError("case"),
    DuplicateKeyError("E11000", code=11000),
    WriteError("document too large", code=10334),
    BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "duplicate"}]}),
    BulkWriteError(
        {"writeErrors": [{"index": 0, "code": 11600}, {"index": 1, "code": 2, "errmsg": "bad"}]}
    ),
    MessageSizeTooLargeError(),
    FileNotFoundError(2, "no such file"),
    PermissionError(13, "denied"),
    OperationFailure("bad value", code=2),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_what_can_pass_is_transient(exc: Exception) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", POISON, ids=lambda e: type(e).__name__)
def test_what_never_will_is_not(exc: Exception) -> None:
    assert not is_transient(exc)


def test_the_cause_and_the_context_are_looked_at() -> None:
    wrapped = RuntimeError("could not save the case")
    wrapped.__cause__ = AutoReconnect("gone")
    assert is_transient(wrapped)
    assert is_transient(raised_while_handling(AutoReconnect("gone"), KeyError("x")))
    assert not is_transient(raised_while_handling(ValueError("bad"), KeyError("x")))
    looped = ValueError("a")
    looped.__context__ = ValueError("b")
    looped.__context__.__context__ = looped  # a cycle ends
    assert not is_transient(looped)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_an_outage_is_waited_out_with_a_doubling_bounded_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    registry = CollectorRegistry()
    outages = Outages(
        "svc", registry, first=0.5, longest=4.0, sleep=clock.sleep, monotonic=clock.monotonic
    )
    failures = 6

    async def step() -> str:
        nonlocal failures
        if failures:
            failures -= 1
            raise AutoReconnect("connection refused")
        return "done"

    assert outages.readiness() == "ok"
    with caplog.at_level(logging.WARNING, "fengqiao.runtime.faults"):
        assert await outages.retry(step, "appeals") == "done"
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    waits = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(waits) == 6 and "attempt 6, trying again in 4.0 s" in waits[-1]
    assert "recovered after 15.5 s and 6 attempts" in caplog.records[-1].getMessage()
    assert outages.readiness() == "ok"
    labels = {"service": "svc", "where": "appeals", "error_type": "AutoReconnect"}
    assert registry.get_sample_value("fengqiao_transient_retries_total", labels) == 6


async def test_many_waiters_share_one_wait_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """500 cases of one poll fail at once: one line per wait, not 500, and readiness says why."""
    gate = asyncio.Event()
    outages = Outages("svc", first=0.01, longest=0.02)
    tries = 0

    async def step() -> None:
        nonlocal tries
        tries += 1
        if not gate.is_set():
            raise ServerSelectionTimeoutError("No servers found")

    with caplog.at_level(logging.WARNING, "fengqiao.runtime.faults"):
        waiting = asyncio.gather(*(outages.retry(step, "case changes") for _ in range(500)))
        await asyncio.sleep(0.05)
        assert outages.readiness().startswith("waiting out an outage for 0 s (attempt ")
        assert "case changes: ServerSelectionTimeoutError: No servers found" in outages.readiness()
        gate.set()
        await waiting
    lines = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert tries > 1000  # every case tried again after each wait
    assert 1 <= len(lines) <= 10, lines  # one per wait (about 3 waits of 0.01–0.02 s)
    assert outages.readiness() == "ok"


async def test_a_failure_that_never_passes_is_raised_at_once() -> None:
    outages = Outages("svc", first=10.0)
    tries = 0

    async def step() -> None:
        nonlocal tries
        tries += 1
        raise validation_error()

    with pytest.raises(ValidationError):
        await outages.retry(step, "appeals")
    assert tries == 1 and outages.readiness() == "ok"
