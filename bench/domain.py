"""CPU of the tracker's pure domain per case event: no store, no Kafka, no event loop.

    .venv/bin/python bench/domain.py [--cases 2000] [--rounds 3] [--profile 25]

Every case lives through the seven messages of the common path of `bench/tracker.py` (appeal,
two dispatch hops, the acknowledgment sent, 签收, progress with a note, 办结), each applied by
the function the tracker's subscriber of its topic calls (`change_for`), to a fresh
`domain.new_case`, each case at its own instant. As the store hands a case on, each change gets
the case with the outbox and effects of the change before it done (emptied); emptying them is not
counted. The messages are built before the clock starts.

Prints µs of CPU per event and events/s for the best of `--rounds` rounds (the process's CPU
time, so other processes on the machine count less than in wall time), with the machine; checks
that every case ends resolved with all its messages applied. `--profile N` runs one more round
under cProfile and prints its N most expensive functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from machine import machine
from tracker import EVENTS_PER_CASE, case_messages, change_for

from fengqiao.contracts import CaseMessage
from fengqiao.services.tracker import domain

# Each case at its own instant, 5 min 17 s after the one before (2,000 cases span a week of
# office hours, nights and a weekend): cases do not share instants, so caches keyed on one do
# not flatter the figure.
START = datetime(2026, 11, 30, 0, 0, 0, 123456, tzinfo=UTC)  # Monday 08:00 in Asia/Shanghai
SPACING = timedelta(seconds=317)


def lives(cases: int, run: str) -> list[list[CaseMessage]]:
    return [case_messages(f"bench-{run}-{i:06d}", i, START + SPACING * i) for i in range(cases)]


def run_round(all_messages: Sequence[Sequence[CaseMessage]], rules: domain.Rules) -> float:
    """Apply every case's messages; the CPU seconds spent in the domain. Raises when a case does
    not end as its messages leave it."""
    cpu = 0.0
    clock = time.process_time
    for messages in all_messages:
        case = domain.new_case(messages[0].case_id)
        for message in messages:
            change = change_for(message, rules)
            started = clock()
            case = change(case)
            cpu += clock() - started
            case = replace(case, outbox=(), effects={})  # published and done, as the store does
        if case.state is not domain.S.RESOLVED or not {m.event_id for m in messages} <= (
            case.processed
        ):
            raise AssertionError(f"case {case.case_id} ended {case.state.value}: {case.timeline}")
    return cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="the best round counts")
    parser.add_argument("--profile", type=int, default=0, help="print the N top functions")
    args = parser.parse_args()
    rules = domain.Rules.default("tracker")
    run_round(lives(20, "warm"), rules)  # warm up: imports, caches of the rules' own data
    events = args.cases * EVENTS_PER_CASE
    best = min(run_round(lives(args.cases, f"r{r}"), rules) for r in range(args.rounds))
    per_event = best / events * 1e6
    print(
        f"RESULT tracker domain: {per_event:,.1f} µs CPU per case event, "
        f"{events / best:,.0f} case events/s on one core ({events:,} events: {args.cases:,} "
        f"cases x {EVENTS_PER_CASE}, best of {args.rounds} rounds, {best:.2f} s CPU; "
        f"the domain functions only, no store, no Kafka) | machine: {machine()}",
        flush=True,
    )
    if args.profile:
        messages = lives(args.cases, "profile")
        profiler = cProfile.Profile()
        profiler.enable()
        run_round(messages, rules)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
