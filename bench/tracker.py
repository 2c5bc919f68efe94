"""Case events per second in one tracker process (target: >= 2,000 against the local store).

    .venv/bin/python bench/tracker.py [--cases 400] [--concurrency 64] [--mode both|all|...]

A case event is one message applied to a case: the domain change, the new version written to the
store (compare-and-set by unique insert), the outbox published to Kafka (acks=all) and the
effects carried out (durable timers scheduled or cancelled, unit index entries); the outbox is
recorded as done as the service does it (`settle_seconds` after a burst; the last ones inside the
measured time). Every case lives through seven of them, the common path of an appeal:

    appeal (opens the case, asks for the acknowledgment, starts its clock)
    dispatch hop 1 (xj → 652700) and the final hop 2 (652700 → 652701, announced publicly)
    the acknowledgment sent (stops its clock)
    签收 (accept), progress with a note (told to the citizen), 办结 (resolve, callback clock)

Two ways to measure, both against the real FerretDB and Kafka of the local stack:

- `store`: `UnitOfWork.apply` with the real repositories (MongoCaseRepository, MongoTimers,
  MongoIndexes) and the app's Kafka producer (`DirectProducer`); `--concurrency` cases in
  flight at once, each case's messages one after the other (as the partitions of a Kafka topic
  would hand them over).
- `service`: the whole tracker app (`fengqiao.services.tracker.app.build`) in this process with
  its Kafka consumers (one per topic): the appeals, dispatch orders and acknowledgments of all
  cases are put on their topics first, then the app starts and the time runs from the first message
  applied until the tracker's consumer groups have committed all of them (a poll is committed
  once it is applied); then the units' actions are published (by a process of their own, as the
  unit API or another replica would) and the time runs until they are committed too. (The first
  three kinds may be applied in any order, as they travel on different topics; a unit acts on a
  case that reached it.) The figure is all messages over the two times.

Prints one summary line per mode (`RESULT ...`) with the machine and its load average; the
service mode adds the CPU time per event of this process (also per phase) and of the stack's
servers, and the documents stored per event by collection.

Run it on a stack of its own (`FENGQIAO_KAFKA_BOOTSTRAP`, `FENGQIAO_MONGO_URI`), not beside a demo:
its databases are dropped at the end, but its messages stay on the topics (case events and reply
requests of made-up cases; in the service mode appeals, orders and actions too), where services
and tests using the default consumer groups of that stack would read them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from typing import Any

import uvloop
from machine import CpuMeter, machine
from tracker_service import run_service
from tracker_store import run_store

from fengqiao import stack
from fengqiao.runtime.service import GC_THRESHOLDS
from fengqiao.runtime.settings import StackSettings


def summary(result: dict[str, Any]) -> str:
    extra = ""
    if result.get("p50_ms") is not None:
        extra = f", latency p50 {result['p50_ms']:.0f} ms p99 {result['p99_ms']:.0f} ms"
    if result.get("published") is not None:
        extra += f", {result['published']} messages published"
    verdict = "meets" if result["rate"] >= 2000 else "BELOW"
    return (
        f"RESULT tracker {result['mode']}: {result['rate']:,.0f} case events/s "
        f"({result['events']:,} in {result['seconds']:.1f} s; {verdict} the 2,000/s target; "
        f"{result['detail']}{extra}; {result['wrong_cases']} cases wrong) | "
        f"machine: {machine()}; store: {result['store']}; Kafka acks=all"
    )


async def main_async(args: argparse.Namespace, cpu: CpuMeter) -> int:
    settings = StackSettings()
    failed = 0
    if args.mode in ("store", "both", "all"):
        result = await run_store(settings, args.cases, args.concurrency, batch=args.batch)
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    if args.mode in ("memory", "all"):
        result = await run_store(
            settings, args.cases, args.concurrency, batch=args.batch, in_memory=True
        )
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    if args.mode in ("service", "both", "all"):
        result = await run_service(settings, args.cases, cpu)
        print(summary(result), flush=True)
        failed += result["wrong_cases"]
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=64, help="store mode: cases in flight")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="store mode: messages per UnitOfWork.apply_many (1: UnitOfWork.apply per message)",
    )
    parser.add_argument(
        "--mode",
        choices=("store", "service", "both", "memory", "all"),
        default="both",
        help="both: store and service; memory: UnitOfWork over the in-memory fakes (the process's "
        "ceiling without a store); all: the three",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = StackSettings()
    stack.up(settings)
    cpu = CpuMeter.for_stack(settings, this="tracker")
    gc.set_threshold(*GC_THRESHOLDS)  # as the services run (the service mode's app sets it too)
    # On uvloop, as the services run (uvicorn picks it when it is installed).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(asyncio.wait_for(main_async(args, cpu), timeout=1800))


if __name__ == "__main__":
    sys.exit(main())
