"""Kafka plumbing every service shares, by concern:

- `broker`: the broker (acks=all, idempotent producers: a publish that returned is stored once),
  topic creation, and whether the consumers have joined;
- `subscribers`: one consumer group per topic; the batch subscriber;
- `batches`: the batch pipeline (polls finished in the background, committed in poll order);
- `faults`: transient or poison (`is_transient`, the one classification), and `Outages`, the
  store or Kafka outage a service waits out (one backoff, one log line per wait, `/readyz`);
- `dead_letters`: a message that fails for good goes to `<topic>.dlq` with its error and origin,
  and the consumer moves on; one that fails transiently is retried until it passes, never
  dead-lettered;
- `metrics`: every subscriber of every service measured the same way;
- `publishing`: publishing through FastStream's declared publishers;
- `direct`: publishing through a plain aiokafka producer, for hot paths.

With tracing on (`fengqiao.runtime.tracing`) every hop carries the W3C `traceparent`: FastStream's
telemetry middleware on the broker, `direct` in its headers, the batch subscriber's decoder
linking each poll to its messages.

Consumers commit only after the handler finished (at-least-once). The names below are the
public ones; import them from here.
"""

from fengqiao.runtime.compat import subscriber_consumers
from fengqiao.runtime.messaging.batches import (
    BATCHES_IN_FLIGHT,
    BatchFailures,
    Pipeline,
    batch_records,
    drain,
)
from fengqiao.runtime.messaging.broker import (
    consumers_assigned,
    ensure_topics,
    make_broker,
    topic_specs,
)
from fengqiao.runtime.messaging.dead_letters import (
    DeadLetterMiddleware,
    dead_letter_for,
    dead_letter_publisher,
)
from fengqiao.runtime.messaging.direct import DirectProducer, DirectPublisher, RememberedPartitioner
from fengqiao.runtime.messaging.faults import Outages, Unavailable, is_transient
from fengqiao.runtime.messaging.metrics import SubscriberMetrics
from fengqiao.runtime.messaging.publishing import (
    DeclaredPublishers,
    Outbox,
    publish,
    publish_all,
    publish_to,
    topic_publisher,
)
from fengqiao.runtime.messaging.subscribers import Handler, batch_subscriber, topic_subscriber

__all__ = [
    "BATCHES_IN_FLIGHT",
    "BatchFailures",
    "DeadLetterMiddleware",
    "DeclaredPublishers",
    "DirectProducer",
    "DirectPublisher",
    "Handler",
    "Outages",
    "Outbox",
    "Pipeline",
    "RememberedPartitioner",
    "SubscriberMetrics",
    "Unavailable",
    "batch_records",
    "batch_subscriber",
    "consumers_assigned",
    "dead_letter_for",
    "dead_letter_publisher",
    "drain",
    "ensure_topics",
    "is_transient",
    "make_broker",
    "publish",
    "publish_all",
    "publish_to",
    "subscriber_consumers",
    "topic_publisher",
    "topic_specs",
    "topic_subscriber",
]
