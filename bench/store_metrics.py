"""What counting the store's commands costs a service: this process's CPU per store command,
with the store listener (`fengqiao.runtime.store.metrics`) and without, alternating.

    source env.sh && .venv/bin/python bench/store_metrics.py [--commands 4000] [--rounds 2]

Each pass builds a client as the services do (`store_client`, with a registry or without; a
short pass warms up first) and runs the appeal path's kinds of command one after the other
against the local store: an insert
of a new document, a find by `_id`, an update by `_id`, an insert of three at once, a find of
them by `$in`, and a delete. The figure is this process's CPU (user + system) per command: the
client's own work, the listener's included, and not the store's (another process), so it holds
up better on a busy machine than a rate does. Its database is dropped at the end. Then the
listener alone, without I/O: its two calls for one command, and building the two events PyMongo
hands it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
import timeit
import uuid
from typing import Any

import uvloop
from machine import machine
from prometheus_client import CollectorRegistry
from pymongo.monitoring import CommandStartedEvent, CommandSucceededEvent

from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.store.metrics import StoreMetrics, store_client

KINDS = 6  # commands a round


async def one_pass(uri: str, database: str, commands: int, counted: bool) -> float:
    """CPU microseconds per command of `commands` commands."""
    registry = CollectorRegistry() if counted else None
    client = store_client(uri, service="bench", registry=registry)
    docs = client[database][f"docs_{uuid.uuid4().hex[:2]}"]
    try:
        await docs.find_one({"_id": "warm"})  # connect before the clock starts
        started = time.process_time()
        for i in range(commands // KINDS):
            key = f"{uuid.uuid4().hex}-{i}"
            await docs.insert_one({"_id": key, "n": i, "text": "x" * 200})
            await docs.find_one({"_id": key})
            await docs.update_one({"_id": key}, {"$set": {"n": i + 1}})
            await docs.insert_many([{"_id": f"{key}-{j}", "n": j} for j in range(3)])
            await docs.find({"_id": {"$in": [f"{key}-{j}" for j in range(3)]}}).to_list()
            await docs.delete_one({"_id": key})
        used = time.process_time() - started
    finally:
        await client.close()
    if registry is not None:
        counted_commands = sum(
            s.value
            for family in registry.collect()
            for s in family.samples
            if s.name == "fengqiao_store_commands_total"
        )
        assert counted_commands >= commands // KINDS * KINDS, counted_commands
    return used * 1e6 / (commands // KINDS * KINDS)


def listener_alone(times: int = 200_000) -> tuple[float, float]:
    """µs of the listener's started + succeeded for one insert, and of building the two events
    PyMongo hands it (PyMongo's part of the price), without any I/O."""
    listener = StoreMetrics("bench", CollectorRegistry())
    command, reply, address = {"insert": "unit_cases_3f", "documents": [{}]}, {"n": 1}, ("h", 1)
    took = dt.timedelta(microseconds=500)

    def events() -> tuple[CommandStartedEvent, CommandSucceededEvent]:
        started = CommandStartedEvent(command, "db", 1, address, None)
        return started, CommandSucceededEvent(took, reply, "insert", 1, address, None)

    started, succeeded = events()

    def counted() -> None:
        listener.started(started)
        listener.succeeded(succeeded)

    per = 1e6 / times
    return timeit.timeit(counted, number=times) * per, timeit.timeit(events, number=times) * per


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    settings = StackSettings()
    database = f"bench_store_metrics_{uuid.uuid4().hex[:8]}"
    results: dict[str, list[float]] = {"without": [], "with": []}
    try:
        await one_pass(settings.mongo_uri, database, args.commands // 4, True)  # warm up
        for _ in range(args.rounds):
            for name, counted in (("without", False), ("with", True)):
                micros = await one_pass(settings.mongo_uri, database, args.commands, counted)
                results[name].append(micros)
                print(f"  {name:<7} the listener: {micros:.1f} µs CPU per command", flush=True)
    finally:
        cleaner: Any = store_client(settings.mongo_uri, service="bench", registry=None)
        await cleaner.drop_database(database)
        await cleaner.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--commands", type=int, default=4000, help="commands a pass")
    parser.add_argument("--rounds", type=int, default=2, help="passes with and without, each")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(args))
    without, with_ = (sum(v) / len(v) for v in (results["without"], results["with"]))
    listener, events = listener_alone()
    print(
        f"  the listener alone: {listener:.2f} µs a command; PyMongo's two events: {events:.2f} µs"
    )
    print(
        f"RESULT store listener: {with_ - without:+.1f} µs CPU per command "
        f"({without:.1f} without, {with_:.1f} with; mean of {args.rounds} alternating passes "
        f"of {args.commands} commands) | after: {machine()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
