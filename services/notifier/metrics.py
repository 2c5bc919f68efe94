"""The notifier's Prometheus metrics, on the service's registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.replies = Counter(
            "fengqiao_notifier_replies_total",
            "Replies by outcome (sent, failed, held), purpose and account",
            ["purpose", "account", "status"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "fengqiao_notifier_outbox_depth",
            "Replies claimed and not finished: sending (in this process), queued for a rate "
            "limit, held for an operator",
            ["state"],
            registry=registry,
        )
        self._queues(registry)
        self.rate_limited = Counter(
            "fengqiao_notifier_rate_limited_total",
            "Replies that had to wait for their rate limit, by bucket",
            ["bucket"],
            registry=registry,
        )
        self.retries = Counter(
            "fengqiao_notifier_retries_total",
            "Posts tried again after a retryable error",
            ["platform"],
            registry=registry,
        )
        self.reconciled = Counter(
            "fengqiao_notifier_reconciled_total",
            "Replies of unknown outcome checked against the platform: found, absent, unknown",
            ["outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "fengqiao_notifier_dead_letters_total",
            "Replies that failed after the last retry (written to replies.requested.dlq)",
            registry=registry,
        )
        self.unsendable = Counter(
            "fengqiao_notifier_replies_unsendable_total",
            "Replies that cannot be sent as configured (no token for the account, no client for "
            "the platform, a target without the id its channel needs), by account; each is "
            "failed and dead-lettered, and sent once fixed by `fengqiao ops replies retry`",
            ["account"],
            registry=registry,
        )
        self._replies: dict[tuple[str, str, str], Any] = {}

    def _queues(self, registry: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            "fengqiao_notifier_queue_depth",
            "Replies waiting for a token in this process's memory, by bucket (account:kind); at "
            "most FENGQIAO_NOTIFIER_QUEUE_LIMIT each",
            ["bucket"],
            registry=registry,
        )
        self.parked = Gauge(
            "fengqiao_notifier_parked",
            "Replies waiting for a token in the store, by bucket (account:kind), of the accounts "
            "this replica owns: the whole backlog, in memory or not (set by each parking sweep)",
            ["bucket"],
            registry=registry,
        )
        self.spilled = Counter(
            "fengqiao_notifier_queue_spilled_total",
            "Replies that found their bucket's queue full and left memory (the lowest-ranked of "
            "it and the queue): they stay parked in the store, and come back when there is room",
            ["bucket"],
            registry=registry,
        )
        self.parked_retries = Counter(
            "fengqiao_notifier_parked_retries_total",
            "Queued replies whose send failed (the store or broker away): tried again after a "
            "backoff",
            registry=registry,
        )

    def reply(self, purpose: str, account: str, status: str) -> None:
        """Count a reply's outcome (each label set looked up once)."""
        labels = (purpose, account, status)
        child = self._replies.get(labels)
        if child is None:
            child = self._replies[labels] = self.replies.labels(*labels)
        child.inc()
