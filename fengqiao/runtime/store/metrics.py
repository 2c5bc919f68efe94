"""What a service asks of its store, counted: commands, documents written and read, and time,
by collection family and command, on the service's Prometheus registry.

One seam: `store_client` builds every service's `AsyncMongoClient` (`Runtime.create`, and the
guard's own client when a service has none) with a `StoreMetrics` listener, PyMongo's public
command monitoring (`pymongo.monitoring.CommandListener`). The counters:

- `fengqiao_store_commands_total{service,collection,command}`: commands answered (failed ones
  included; `command` is PyMongo's name: insert, update, delete, find, getMore, aggregate,
  findAndModify, count, createIndexes, ...);
- `fengqiao_store_documents_total{service,collection,command,direction}`: documents `written`
  (the reply's `n`: inserted, matched by an update (upserts included) or deleted; for
  findAndModify its `lastErrorObject.n`) and `read` (returned: the lengths of a cursor's
  `firstBatch`/`nextBatch`, findAndModify's `value`, distinct's `values`);
- `fengqiao_store_command_seconds_total{service,collection,command}`: time from sending the
  command to its reply, as the client sees it (the store's queue included);
- `fengqiao_store_command_failures_total{service,collection,command}`: commands that failed
  (an exception; a reply with write errors, such as an insert-CAS that lost, is an answer).

`collection` is a family, not a name, so the labels stay bounded: a trailing `_<2 hex digits>`
(the hash shards of `ShardedCollection`: `unit_cases_3f`) or `_<4 or more digits>` (the hourly
buckets, `timer_wake_2026120716`) becomes `_*` (`unit_cases_*`, `timer_wake_*`). A command on no
collection (ping, hello, endSessions, listCollections) has `collection="-"`.

The listener runs in the event loop's thread for every command: it keeps one dict entry per
command in flight and adds to plain numbers per (family, command), which become the counters when
/metrics is scraped (`collect`). Its cost:
docs/performance.md ("What the counting costs").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

SHARD_OR_HOUR = re.compile(r"_(?:[0-9a-f]{2}|[0-9]{4,})$")
NO_COLLECTION = "-"
# Commands whose first value is not a collection name though it is a string.
_NOT_A_COLLECTION = frozenset({"getMore"})
_WRITES = frozenset({"insert", "update", "delete"})
_IN_FLIGHT_AT_MOST = 10_000  # commands never answered (a task cancelled mid-way) are forgotten
_FAMILIES_AT_MOST = 4_096


def family(collection: str) -> str:
    """The label of `collection`: its name with a shard or hour suffix folded into `_*`."""
    return SHARD_OR_HOUR.sub("_*", collection)


def collection_of(command_name: str, command: Any) -> str:
    """The collection a command works on (its first field's value, or getMore's `collection`),
    or "" for a command on none."""
    if command_name in _NOT_A_COLLECTION:
        value = command.get("collection")
    else:
        value = command.get(command_name)
    return value if isinstance(value, str) else ""


def documents_of(command_name: str, reply: Any) -> tuple[int, int]:
    """(written, read) documents of a command's reply."""
    if command_name in _WRITES:
        return int(reply.get("n", 0)), 0
    cursor = reply.get("cursor")
    if isinstance(cursor, dict):
        batch = cursor.get("firstBatch")
        if batch is None:
            batch = cursor.get("nextBatch")
        return 0, len(batch) if isinstance(batch, list) else 0
    if command_name == "findAndModify":
        error = reply.get("lastErrorObject")
        written = error.get("n", 0) if isinstance(error, dict) else 0
        return int(written), int(reply.get("value") is not None)
    if command_name == "distinct":
        values = reply.get("values")
        return 0, len(values) if isinstance(values, list) else 0
    return 0, 0


# The tallies of one (family, command): commands, written, read, seconds, failures. Plain
# numbers, turned into counters at scrape time (`collect`): a Counter's inc takes a lock.
COMMANDS, WRITTEN, READ, SECONDS, FAILURES = range(5)


class StoreMetrics(CommandListener, Collector):
    """A PyMongo command listener counting a service's store work (see the module), and the
    Prometheus collector that reports it."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self._in_flight: dict[tuple[int, Any], list[float]] = {}
        self._families: dict[str, str] = {}
        self._tallies: dict[tuple[str, str], list[float]] = {}
        registry.register(self)

    def started(self, event: CommandStartedEvent) -> None:
        name = event.command_name
        collection = collection_of(name, event.command)
        label = self._families.get(collection)
        if label is None:
            if len(self._families) >= _FAMILIES_AT_MOST:
                self._families.clear()
            label = self._families[collection] = family(collection) or NO_COLLECTION
        tally = self._tallies.get((label, name))
        if tally is None:
            tally = self._tallies[(label, name)] = [0, 0, 0, 0.0, 0]
        in_flight = self._in_flight
        if len(in_flight) >= _IN_FLIGHT_AT_MOST:
            in_flight.clear()
        in_flight[(event.request_id, event.connection_id)] = tally

    def succeeded(self, event: CommandSucceededEvent) -> None:
        tally = self._in_flight.pop((event.request_id, event.connection_id), None)
        if tally is None:
            return
        tally[COMMANDS] += 1
        tally[SECONDS] += event.duration_micros
        written, read = documents_of(event.command_name, event.reply)
        tally[WRITTEN] += written
        tally[READ] += read

    def failed(self, event: CommandFailedEvent) -> None:
        tally = self._in_flight.pop((event.request_id, event.connection_id), None)
        if tally is None:
            return
        tally[COMMANDS] += 1
        tally[SECONDS] += event.duration_micros
        tally[FAILURES] += 1

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "collection", "command"]
        commands = CounterMetricFamily(
            "fengqiao_store_commands", "Store commands answered", labels=labels
        )
        documents = CounterMetricFamily(
            "fengqiao_store_documents",
            "Documents a store command wrote (n of the reply) or read (returned)",
            labels=[*labels, "direction"],
        )
        seconds = CounterMetricFamily(
            "fengqiao_store_command_seconds",
            "Seconds from sending a store command to its reply",
            labels=labels,
        )
        failures = CounterMetricFamily(
            "fengqiao_store_command_failures", "Store commands that failed", labels=labels
        )
        for (label, command), tally in list(self._tallies.items()):
            values = [self.service, label, command]
            commands.add_metric(values, tally[COMMANDS])
            documents.add_metric([*values, "written"], tally[WRITTEN])
            documents.add_metric([*values, "read"], tally[READ])
            seconds.add_metric(values, tally[SECONDS] / 1e6)
            failures.add_metric(values, tally[FAILURES])
        yield from (commands, documents, seconds, failures)


def store_client(
    uri: str, *, service: str, registry: CollectorRegistry | None
) -> AsyncMongoClient[dict[str, Any]]:
    """A service's store client (lazy: building it does no I/O), its commands counted on
    `registry` when given."""
    listeners = [StoreMetrics(service, registry)] if registry is not None else []
    return AsyncMongoClient(
        uri, tz_aware=True, connect=False, appname=service, event_listeners=listeners
    )
