"""Where an appeal's cost goes: the services' own counters, scraped from each one's /metrics
before and after a run, the difference divided by the appeals acknowledged.

- Store work (`fengqiao.runtime.store.metrics`): commands, documents written and read, and the
  time the client waited, per service and collection family, with the commands' mix;
- Kafka messages produced per service and topic: FastStream's publishers
  (`faststream_published_messages_total{status="success"}`) and the direct producers
  (`fengqiao_direct_published_total{result="ok"}`), and those handled
  (`fengqiao_messages_processed_total`).

Used by bench/e2e.py; `lines()` is its table, `as_json()` the same figures for comparisons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]  # (sample name, labels)
Samples = dict[Key, float]

COMMANDS = "fengqiao_store_commands_total"
DOCUMENTS = "fengqiao_store_documents_total"
SECONDS = "fengqiao_store_command_seconds_total"
FASTSTREAM_PUBLISHED = "faststream_published_messages_total"
DIRECT_PUBLISHED = "fengqiao_direct_published_total"
HANDLED = "fengqiao_messages_processed_total"


async def scrape(urls: Mapping[str, str], timeout: float = 10.0) -> dict[str, Samples]:
    """Every counter sample of each service's /metrics (a service without one: none)."""
    found: dict[str, Samples] = {}
    async with httpx.AsyncClient(timeout=timeout) as client:
        for name, url in urls.items():
            answer = await client.get(f"{url}/metrics")
            if answer.status_code != 200:
                found[name] = {}
                continue
            found[name] = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(answer.text)
                if family.type == "counter"
                for s in family.samples
                if s.name.endswith("_total")
            }
    return found


@dataclass
class StoreRow:
    """One service's work on one collection family, per appeal."""

    service: str
    collection: str
    commands: float = 0.0
    written: float = 0.0
    read: float = 0.0
    ms: float = 0.0  # store time the service waited, milliseconds
    by_command: dict[str, float] = field(default_factory=dict)  # commands, by command

    @property
    def work(self) -> float:
        return self.commands + self.written + self.read


@dataclass
class TopicRow:
    """Messages one service produced on (and handled from) one topic, per appeal."""

    service: str
    topic: str
    produced: float = 0.0
    handled: float = 0.0


@dataclass
class Costs:
    appeals: int
    store: list[StoreRow]
    topics: list[TopicRow]

    def totals(self) -> list[StoreRow]:
        """Per service: its rows summed (collection "all"), and the fleet's."""
        sums: dict[str, StoreRow] = {}
        for row in self.store:
            for service in (row.service, "fleet"):
                total = sums.setdefault(service, StoreRow(service, "all"))
                total.commands += row.commands
                total.written += row.written
                total.read += row.read
                total.ms += row.ms
                for command, n in row.by_command.items():
                    total.by_command[command] = total.by_command.get(command, 0.0) + n
        return sorted(sums.values(), key=lambda r: (r.service == "fleet", -r.work))

    def lines(self) -> list[str]:
        out = [
            f"  store work per appeal ({self.appeals} appeals acknowledged), by service and "
            "collection, costliest first (commands + documents):",
            f"    {'service':<9} {'collection':<26} {'commands':>8} {'written':>8} {'read':>8} "
            f"{'ms':>7}  commands by kind",
        ]
        for row in [*self.store, *self.totals()]:
            mix = ", ".join(f"{c} {n:.2f}" for c, n in _by_size(row.by_command))
            out.append(
                f"    {row.service:<9} {row.collection:<26} {row.commands:>8.2f} "
                f"{row.written:>8.2f} {row.read:>8.2f} {row.ms:>7.2f}  {mix}"
            )
        out.append("  Kafka messages per appeal, by service and topic (produced / handled):")
        for t in self.topics:
            out.append(f"    {t.service:<9} {t.topic:<28} {t.produced:>6.2f} {t.handled:>6.2f}")
        produced = sum(t.produced for t in self.topics)
        handled = sum(t.handled for t in self.topics)
        out.append(f"    {'fleet':<9} {'all':<28} {produced:>6.2f} {handled:>6.2f}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "appeals": self.appeals,
            "store": [asdict(r) for r in self.store],
            "store_totals": [asdict(r) for r in self.totals()],
            "topics": [asdict(t) for t in self.topics],
        }


def costs(before: dict[str, Samples], after: dict[str, Samples], appeals: int) -> Costs:
    """What each service's counters moved by between the scrapes, per appeal."""
    per = 1 / max(appeals, 1)
    store: dict[tuple[str, str], StoreRow] = {}
    topics: dict[tuple[str, str], TopicRow] = {}
    for service, samples in after.items():
        moved = _moved(before.get(service, {}), samples)
        for (name, labels), delta in moved.items():
            label = dict(labels)
            if name in (COMMANDS, DOCUMENTS, SECONDS):
                key = (service, label.get("collection", "?"))
                _add_store(store.setdefault(key, StoreRow(*key)), name, label, delta * per)
            topic = _topic(name, label)
            if topic is not None:
                row = topics.setdefault((service, topic), TopicRow(service, topic))
                if name == HANDLED:
                    row.handled += delta * per
                else:
                    row.produced += delta * per
    return Costs(
        appeals=appeals,
        store=sorted(store.values(), key=lambda r: -r.work),
        topics=sorted(topics.values(), key=lambda t: (t.service, -t.produced, t.topic)),
    )


def _moved(before: Samples, after: Samples) -> Samples:
    moved: Samples = defaultdict(float)
    for key, value in after.items():
        delta = value - before.get(key, 0.0)
        if delta > 0:  # a counter that went down: the service restarted; its count is lost
            moved[key] += delta
    return moved


def _add_store(row: StoreRow, name: str, label: dict[str, str], value: float) -> None:
    if name == COMMANDS:
        row.commands += value
        command = label.get("command", "?")
        row.by_command[command] = row.by_command.get(command, 0.0) + value
    elif name == SECONDS:
        row.ms += value * 1000
    elif label.get("direction") == "written":
        row.written += value
    elif label.get("direction") == "read":
        row.read += value


def _topic(name: str, label: dict[str, str]) -> str | None:
    if name == FASTSTREAM_PUBLISHED and label.get("status") == "success":
        return label.get("destination")
    if name == DIRECT_PUBLISHED and label.get("result") == "ok":
        return label.get("topic")
    if name == HANDLED:
        return label.get("topic")
    return None


def _by_size(counts: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(((c, n) for c, n in counts.items() if n >= 0.005), key=lambda cn: -cn[1])
