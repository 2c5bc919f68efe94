"""Dead letters: a message whose handling failed for good goes to `<topic>.dlq` with its error
and origin, instead of being lost or looping; one that failed because the store or Kafka cannot
be reached is retried until it can (`faults`), never dead-lettered. The middleware also measures
each message."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.middlewares import BaseMiddleware

from fengqiao.contracts import DeadLetter
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.logs import log_context
from fengqiao.runtime.messaging.batches import DECODED, BatchFailures, DecodedBatch, Pipeline
from fengqiao.runtime.messaging.faults import Outages, Unavailable, is_transient
from fengqiao.runtime.messaging.metrics import SubscriberMetrics
from fengqiao.runtime.messaging.publishing import publish

log = logging.getLogger("fengqiao.runtime.messaging")


class DeadLetterMiddleware(BaseMiddleware):
    """Measures each message's handling; retries a handler that failed transiently (the store or
    Kafka is away: `faults.is_transient`) for as long as that lasts, the consumer taking nothing
    new meanwhile; sends a message whose handling failed otherwise to `<topic>.dlq` instead of
    losing or looping on it."""

    service: str = "unknown"
    metrics: SubscriberMetrics | None = None
    outages: Outages = Outages("unknown")

    @classmethod
    def for_service(
        cls, service: str, metrics: SubscriberMetrics | None, outages: Outages | None = None
    ) -> type[DeadLetterMiddleware]:
        return type(
            f"DeadLetterMiddleware_{service}",
            (cls,),
            {"service": service, "metrics": metrics, "outages": outages or Outages(service)},
        )

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        """Every consumed message (or poll) passes here: lines logged while it is handled carry
        its topic, partition and offset (a poll's: its topic), and its `case_id` and `event_id`
        once decoded (`subscribers.bind_message`)."""
        record = msg.raw_message
        if isinstance(record, (list, tuple)):
            with log_context(topic=record[0].topic if record else None):
                return await self._consume_batch(call_next, msg)
        with log_context(topic=record.topic, partition=record.partition, offset=record.offset):
            return await self._consume_one(call_next, msg, record)

    async def _consume_one(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: Any, record: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            # Retried in place: the subscriber takes no other message meanwhile.
            result = await self.outages.retry(lambda: call_next(msg), record.topic)
        except Exception as exc:
            if self.metrics is not None:
                self.metrics.observe(record, time.perf_counter() - started, exc)
            await self._dead_letter(record, exc)
            return None
        if self.metrics is not None:
            self.metrics.observe(record, time.perf_counter() - started, None)
        return result

    async def _consume_batch(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        """A `batch_subscriber`'s poll: the messages its decoder refused and those its handler
        failed (`BatchFailures`) go to dead letters, one by one; the others count as handled. A
        handler that raises fails every message it was given, as it would have failed each.

        A handler that fails transiently (raises so, or returns such failures) is handed the same
        poll again once the wait is over, until it does not: its consumer takes no new poll
        meanwhile (handlers are idempotent, as at-least-once delivery needs).

        The poll is then committed by its consumer's `Pipeline`, in poll order. A handler that
        returns a task of its failures (it carries on with the poll in the background) is handed
        the next poll meanwhile; if the task fails transiently, the pipeline waits and the poll
        comes again (`Pipeline`)."""
        started = time.perf_counter()
        pipeline = Pipeline.of(getattr(msg, "consumer", None), self.outages)
        generation = pipeline.generation if pipeline is not None else 0
        topic = msg.raw_message[0].topic if msg.raw_message else "?"

        async def handle() -> Any:
            try:
                result = await call_next(msg)
            except Exception as raised:
                if is_transient(raised):
                    raise
                return raised
            if isinstance(result, BatchFailures) and (transient := _transient(result)):
                raise transient
            return result

        try:
            result = await self.outages.retry(handle, topic)
        except Exception as raised:
            result = raised
        # Not decoded at all (the handler was not reached): every record is the handler's.
        batch: DecodedBatch = getattr(msg, DECODED, None) or DecodedBatch(msg.raw_message)
        finishing = self._finish_batch(batch, result, started)
        if pipeline is None:  # an in-memory test broker: done before its publish returns
            await finishing
        else:
            await pipeline.add(finishing, msg.raw_message, generation)
        return None

    async def _finish_batch(self, batch: DecodedBatch, result: Any, started: float) -> None:
        if isinstance(result, asyncio.Future):
            try:
                result = await result
            except Exception as raised:
                result = raised
        if isinstance(result, Exception):
            failures = BatchFailures(dict.fromkeys(range(len(batch.records)), result))
        else:
            failures = result if isinstance(result, BatchFailures) else BatchFailures()
        if (transient := _transient(failures)) is not None:
            # Not finished: the pipeline waits the outage out, and the poll comes again.
            raise Unavailable(f"{len(failures)} messages failed transiently") from transient
        seconds = (time.perf_counter() - started) / max(len(batch.records) + len(batch.refused), 1)
        failed = [*batch.refused, *((batch.records[i], exc) for i, exc in failures.items())]
        for record, exc in failed:
            await self._dead_letter(record, exc)
        if self.metrics is not None:
            for record, exc in failed:
                self.metrics.observe(record, seconds, exc)
            for index, record in enumerate(batch.records):
                if index not in failures:
                    self.metrics.observe(record, seconds, None)

    async def _dead_letter(self, record: Any, exc: BaseException) -> None:
        letter = dead_letter_for(record, exc, consumer=self.service)
        broker = self.context.get("broker")
        dlq = f"{record.topic}.dlq"
        await self.outages.retry(lambda: publish(broker, dlq, letter), dlq)
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.service, record.topic).inc()
        with log_context(partition=record.partition, offset=record.offset):
            log.error(
                "dead letter: %s[%s]@%s failed in %s: %s",
                *(record.topic, record.partition, record.offset, self.service, letter.error),
            )


def _transient(failures: BatchFailures) -> Exception | None:
    """The first of `failures` that can pass, if any."""
    return next((exc for exc in failures.values() if is_transient(exc)), None)


def dead_letter_for(record: Any, exc: BaseException, *, consumer: str) -> DeadLetter:
    """The DeadLetter describing `record` (an aiokafka ConsumerRecord) and why it failed."""
    value: bytes = record.value or b""
    key: bytes | None = record.key
    return DeadLetter(
        occurred_at=utcnow(),
        producer=consumer,
        origin_topic=record.topic,
        origin_partition=record.partition,
        origin_offset=record.offset,
        origin_key=key.decode("utf-8", "replace")[:400] if key else None,
        consumer=consumer,
        error_type=type(exc).__name__,
        error=_describe(exc)[:4000],
        payload=value.decode("utf-8", "replace"),
    )


def _describe(exc: BaseException) -> str:
    # pydantic's ValidationError lists every field with the input value; keep field and reason
    # only, since the input may hold private data and the payload is kept separately anyway.
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return "; ".join(_field_error(e) for e in errors())
        except Exception:
            pass
    return str(exc) or type(exc).__name__


def _field_error(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


_DLQ_PUBLISHERS: weakref.WeakKeyDictionary[KafkaBroker, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def dead_letter_publisher(broker: KafkaBroker, topic: str) -> Any:
    """The publisher of `<topic>.dlq` on this broker, declared once (for AsyncAPI): the
    middleware publishes dead letters itself; a service that writes its own (the notifier, after
    its last retry) publishes through this one."""
    publishers = _DLQ_PUBLISHERS.setdefault(broker, {})
    if topic not in publishers:
        publishers[topic] = broker.publisher(
            f"{topic}.dlq",
            title=f"{topic}.dlq:publish",
            description=f"Messages of {topic} this service failed to handle, with the error "
            "and their origin (`fengqiao ops dlq`).",
            schema=DeadLetter,
        )
    return publishers[topic]
