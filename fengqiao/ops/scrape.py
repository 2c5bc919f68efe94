"""`fengqiao ops metrics`: one screen of what the running services' /metrics and /readyz say."""

from __future__ import annotations

import asyncio
import importlib
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fengqiao.runner import SERVICES

# Gauges some services expose; shown when present.
SERVICE_GAUGES = {
    "fengqiao_notifier_outbox_depth": "outbox depth",
    "fengqiao_tracker_pending_timers": "pending timers",
    "fengqiao_tracker_overdue_cases": "overdue cases",
    "fengqiao_notifier_replies_unsendable_total": "replies unsendable",
}
# The notifier's handler does not raise on a reply that failed: it records, reports and (when the
# failure can pass) dead-letters it itself. Its own counters are those of replies.requested.
REPLIES_FAILED, REPLIES_DEAD = (
    "fengqiao_notifier_replies_total",
    "fengqiao_notifier_dead_letters_total",
)
REPLIES_TOPIC = "replies.requested"


def default_targets() -> dict[str, str]:
    """Each service's URL from its settings (`FENGQIAO_<SERVICE>_HTTP_HOST`/`_HTTP_PORT`)."""
    targets = {}
    for name in SERVICES:
        module = importlib.import_module(f"fengqiao.services.{name}.settings")
        settings = getattr(module, f"{name.capitalize()}Settings")()
        host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "") else settings.http_host
        targets[name] = f"http://{host}:{settings.http_port}"
    return targets


@dataclass
class TopicLine:
    processed: float = 0
    failed: float = 0
    dead_letters: float = 0
    count: float = 0
    total_seconds: float = 0
    buckets: dict[float, float] = field(default_factory=dict)

    def quantile(self, q: float) -> float | None:
        """The bucket bound below which `q` of the observations fall (upper estimate)."""
        if not self.count:
            return None
        for bound in sorted(self.buckets):
            if self.buckets[bound] >= q * self.count:
                return bound
        return None


@dataclass
class ServiceSummary:
    name: str
    url: str
    ready: str = "down"
    checks: dict[str, str] = field(default_factory=dict)
    topics: dict[str, TopicLine] = field(default_factory=dict)
    lag: float = 0
    gauges: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "url": self.url,
            "ready": self.ready,
            "checks": self.checks,
            "consumer_lag": self.lag,
            "gauges": self.gauges,
            "error": self.error,
            "topics": {
                topic: {
                    "processed": line.processed,
                    "failed": line.failed,
                    "dead_letters": line.dead_letters,
                    "handler_mean_seconds": (line.total_seconds / line.count)
                    if line.count
                    else None,
                    "handler_p95_seconds": _finite(line.quantile(0.95)),
                }
                for topic, line in sorted(self.topics.items())
            },
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def summarize(name: str, url: str, text: str) -> ServiceSummary:
    """What one service's Prometheus text says."""
    summary = ServiceSummary(name, url)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, sample.value
            topic = labels.get("topic", "")
            if sample.name == "fengqiao_messages_processed_total":
                summary.topics.setdefault(topic, TopicLine()).processed += value
            elif sample.name == "fengqiao_messages_failed_total":
                summary.topics.setdefault(topic, TopicLine()).failed += value
            elif sample.name == "fengqiao_dead_letters_total":
                summary.topics.setdefault(topic, TopicLine()).dead_letters += value
            elif sample.name == "fengqiao_handler_seconds_count":
                summary.topics.setdefault(topic, TopicLine()).count += value
            elif sample.name == "fengqiao_handler_seconds_sum":
                summary.topics.setdefault(topic, TopicLine()).total_seconds += value
            elif sample.name == "fengqiao_handler_seconds_bucket":
                line = summary.topics.setdefault(topic, TopicLine())
                bound = float(labels["le"])
                line.buckets[bound] = line.buckets.get(bound, 0) + value
            elif sample.name == REPLIES_FAILED and labels.get("status") == "failed":
                summary.topics.setdefault(REPLIES_TOPIC, TopicLine()).failed += value
            elif sample.name == REPLIES_DEAD:
                summary.topics.setdefault(REPLIES_TOPIC, TopicLine()).dead_letters += value
            elif sample.name == "fengqiao_consumer_lag":
                summary.lag += value
            elif sample.name in SERVICE_GAUGES:
                summary.gauges[sample.name] = summary.gauges.get(sample.name, 0) + value
    return summary


async def scrape(targets: dict[str, str], *, timeout: float = 3.0) -> list[ServiceSummary]:
    async with httpx.AsyncClient(timeout=timeout) as http:
        return list(await asyncio.gather(*(_one(http, n, u) for n, u in targets.items())))


async def _one(http: httpx.AsyncClient, name: str, url: str) -> ServiceSummary:
    try:
        metrics = await http.get(f"{url}/metrics")
        metrics.raise_for_status()
        summary = summarize(name, url, metrics.text)
    except httpx.HTTPError as exc:
        return ServiceSummary(name, url, error=f"{type(exc).__name__}: {exc}"[:200])
    try:
        ready = await http.get(f"{url}/readyz")
        body = ready.json()
        summary.ready = "ready" if ready.status_code == 200 else "not ready"
        summary.checks = dict(body.get("checks", {}))
    except (httpx.HTTPError, ValueError) as exc:
        summary.ready, summary.error = "unknown", f"/readyz: {exc}"[:200]
    return summary
