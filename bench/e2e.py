"""Benchmark the whole fleet end to end: signed Weibo pushes → intake → router → tracker →
notifier → the platform simulator, every service a process of its own on the local stack.

    source env.sh   # a throwaway stack: FENGQIAO_CACHE_DIR, _KAFKA_BOOTSTRAP, _MONGO_URI
    .venv/bin/fengqiao stack up
    .venv/bin/python bench/e2e.py --rate 50 --seconds 60
    .venv/bin/python bench/e2e.py --find                # the highest rate with p99 < 2 s
    .venv/bin/fengqiao stack down

The load is open-loop (`fengqiao.testing.pushes.PushLoad`): `--rate` appeals a second for
`--seconds`, each sent on its own schedule however long the earlier ones take, re-sent after a
503's Retry-After as a platform does. By default every appeal @-mentions the account in a status
(answered by a comment); `--private-every N` makes every N-th a private message (answered by a
private message). Then it waits until every accepted appeal is acknowledged on the platform, or
until nothing has moved for `--settle` seconds, or `--deadline`.

It prints, per rate:
- **acknowledged/s**: appeals acknowledged on the platform, per second from the first push to
  the last acknowledgment (what the fleet carries end to end; when it is below the rate, the
  backlog grows and the latency with it);
- **latency** from the webhook's 2xx to the acknowledgment's arrival at the platform (the
  simulator's `received_at`), p50 / p99 / max, over every accepted appeal (one never
  acknowledged counts as infinitely late);
- **CPU per appeal** of each process (user + system from /proc/<pid>/stat, before and after;
  a service's children included), the stack's Kafka and FerretDB, and this process (the load
  and the counting);
- cases, duplicates, dead letters and consumer lag, as the fault drill counts them
  (`fengqiao.testing.audit`).
- **where each appeal's cost goes** (bench/accounting.py): from each service's /metrics,
  scraped before and after, ÷ appeals acknowledged: store commands, documents written and read
  and store time by service and collection family (costliest first, then per-service totals),
  and Kafka messages produced and handled by service and topic. `--json` prints them too.

`--urgent-every N` makes every N-th appeal an urgent one (in danger, `fengqiao.testing.pushes.
URGENT_TEXTS`) and prints their latency apart: with `--rate 1000 --seconds 10` (a burst of 10,000
as fast as intake accepts them) and `--urgent-every 100`, how long an urgent appeal waits behind
the burst (target: p99 < 10 s).

`--find` runs `--steps` rates from `--start`, each `--factor` times the last, stops at the first
whose p99 is 2 s or more (or that leaves an appeal unacknowledged), and names the highest rate
that held. The services' consumer groups are moved to their topics' ends first, so earlier runs'
messages are not counted; every appeal of a run stays on that stack's topics (use a throwaway
stack, as for bench/webhook.py). It stops the processes it started, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from accounting import Costs, costs, scrape
from machine import machine

from fengqiao import processes, stack
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.audit import Audit, Drained, Outcome
from fengqiao.testing.drill import start_groups_at_end
from fengqiao.testing.pushes import Delivery, PushLoad, intake_env

TARGET_P99 = 2.0  # seconds, from the webhook's 2xx to the acknowledgment on the platform
TARGET_URGENT_P99 = 10.0  # seconds, the same for urgent appeals during a burst
FLEET = ("intake", "router", "tracker", "notifier", "simulator")


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and its descendants; 0 when it is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": utime, stime at 11, 12
        total += (int(fields[11]) + int(fields[12])) / tick
        todo.extend(int(c) for c in children)
    return total


def pids(fleet: processes.Fleet, settings: StackSettings) -> dict[str, int]:
    found = {name: fleet.pid(name) for name in FLEET}
    found.update({s.name: s.pid for s in stack.status(settings) if s.pid is not None})
    return found


def cpu_now(named: dict[str, int]) -> dict[str, float]:
    seconds = {name: cpu_seconds(pid) for name, pid in named.items()}
    seconds["bench"] = time.process_time()
    return seconds


def percentile(values: list[float], q: float) -> float:
    """The `q`-quantile (0..1) by the nearest rank; inf for an empty list."""
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Waits:
    """How long some appeals waited, 2xx → acknowledgment: how many, p50, p99 (seconds)."""

    count: int
    p50: float
    p99: float

    @classmethod
    def of(cls, waits: list[float]) -> Waits:
        return cls(len(waits), percentile(waits, 0.50), percentile(waits, 0.99))

    def line(self) -> str:
        held = "" if self.p99 < TARGET_URGENT_P99 else f"  (p99 < {TARGET_URGENT_P99:g} s not held)"
        return (
            f"  urgent appeals: {self.count}, 2xx → acknowledgment p50 {self.p50:.2f} s, "
            f"p99 {self.p99:.2f} s{held}"
        )


@dataclass
class Result:
    rate: float
    seconds: float
    sent: int
    accepted: int
    acknowledged: int
    per_second: float  # acknowledged appeals a second, first push to last acknowledgment
    p50: float
    p99: float
    worst: float
    cpu_ms: dict[str, float]  # CPU milliseconds per accepted appeal, by process
    drained: Drained
    letters: int
    resent: int  # tries beyond the first (503s, timeouts, refused connections)
    refused: dict[str, int]  # not accepted, by the last answer
    costs: Costs | None = None  # store work and messages per appeal acknowledged
    urgent: Waits | None = None  # the urgent appeals' (`--urgent-every`), when there were some

    @property
    def held(self) -> bool:
        return self.p99 < TARGET_P99 and self.acknowledged == self.accepted

    def lines(self) -> list[str]:
        outcomes = self.drained.outcomes
        duplicates = sum(len(o.cases) > 1 or len(o.acks) > 1 for o in outcomes)
        cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in self.cpu_ms.items())
        return [
            f"rate {self.rate:g}/s for {self.seconds:g} s: {self.sent} sent, {self.accepted} "
            f"accepted, {self.acknowledged} acknowledged "
            f"({sum(len(o.cases) == 1 for o in outcomes)} with one case, {duplicates} "
            f"duplicated, {self.letters} dead letters, lag {sum(self.drained.lag.values())})",
            f"  end to end {self.per_second:.1f} acknowledged/s; 2xx → acknowledgment p50 "
            f"{self.p50:.2f} s, p99 {self.p99:.2f} s, max {self.worst:.2f} s"
            f"{'' if self.held else f'  (p99 < {TARGET_P99:g} s not held)'}",
            *([self.urgent.line()] if self.urgent is not None else []),
            f"  CPU ms per appeal: {cpu}",
            f"  re-sent {self.resent} times; not accepted: {self.sent - self.accepted}"
            + (f" (last answers: {self.refused})" if self.refused else ""),
            *(self.costs.lines() if self.costs is not None else []),
        ]


def result_of(
    rate: float,
    seconds: float,
    deliveries: list[Delivery],
    drained: Drained,
    cpu: dict[str, float],
    letters: int,
) -> Result:
    outcomes = drained.outcomes
    acked = [o for o in outcomes if o.acks and o.first_ack_at is not None]
    waits = [_wait(o) for o in outcomes]
    urgent = [_wait(o) for o in outcomes if o.delivery.push.urgent]
    first = min(d.sent_at for d in deliveries)
    last = max((o.first_ack_at for o in acked), default=first)  # type: ignore[type-var]
    per_second = len(acked) / max(last - first, 1e-9) if acked else 0.0
    accepted = max(len(outcomes), 1)
    return Result(
        rate=rate,
        seconds=seconds,
        sent=len(deliveries),
        accepted=len(outcomes),
        acknowledged=len(acked),
        per_second=per_second,
        p50=percentile(waits, 0.50),
        p99=percentile(waits, 0.99),
        worst=max(waits, default=math.inf),
        cpu_ms={name: used * 1000 / accepted for name, used in cpu.items()},
        drained=drained,
        letters=letters,
        resent=sum(d.tries - 1 for d in deliveries),
        refused=dict(Counter(_answer(d) for d in deliveries if not d.accepted)),
        urgent=Waits.of(urgent) if urgent else None,
    )


def _wait(outcome: Outcome) -> float:
    """Seconds from the webhook's 2xx to the first acknowledgment; inf if none came."""
    if not outcome.acks or outcome.first_ack_at is None or outcome.delivery.accepted_at is None:
        return math.inf
    return outcome.first_ack_at - outcome.delivery.accepted_at


def _answer(delivery: Delivery) -> str:
    return delivery.answers[-1].split(" ", 1)[0][:40] if delivery.answers else "none"


async def measure(
    fleet: processes.Fleet,
    settings: StackSettings,
    load: PushLoad,
    rate: float,
    args: argparse.Namespace,
) -> Result:
    """One run at `rate`: the load, the drain, the figures."""
    named = pids(fleet, settings)
    urls = {name: fleet.url(name) for name in FLEET}
    async with Audit(settings.kafka_bootstrap, settings.mongo_uri, fleet.url("simulator")) as audit:
        letters_before, since_ms = await audit.dead_letter_ends(), int(time.time() * 1000)
        counted = await scrape(urls)
        before = cpu_now(named)
        print(f"load: {rate:g} appeals/s for {args.seconds:g} s, starting", flush=True)
        deliveries = await load.send(max(1, round(rate * args.seconds)), rate)
        drained = await audit.drain(
            deliveries, deadline=args.deadline, settle=args.settle, interval=args.interval
        )
        after = cpu_now(named)
        moved = await scrape(urls)
        letters = await audit.dead_letters_since(letters_before, since_ms)
    cpu = {name: after[name] - before[name] for name in before}
    result = result_of(rate, args.seconds, deliveries, drained, cpu, len(letters))
    result.costs = costs(counted, moved, result.acknowledged)
    return result


def fleet_env(settings: StackSettings, ports: dict[str, int], secret: str) -> dict[str, str]:
    return {
        "FENGQIAO_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "FENGQIAO_MONGO_URI": settings.mongo_uri,
        "FENGQIAO_EXTERNAL": "1",
        **processes.simulator_env(ports["simulator"]),
        **intake_env(secret),
    }


def rates(args: argparse.Namespace) -> list[float]:
    if not args.find:
        return [args.rate]
    return [round(args.start * args.factor**i, 1) for i in range(args.steps)]


async def run(args: argparse.Namespace) -> list[Result]:
    settings = StackSettings()
    if any(s.state != "running" for s in stack.status(settings)):
        raise SystemExit("the stack is not running: `fengqiao stack up` (a throwaway one)")
    await start_groups_at_end(settings.kafka_bootstrap)
    secret, ports = "bench-" + secrets.token_hex(8), processes.free_ports()
    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory(prefix="fengqiao-e2e-") as logs,
        processes.running(
            fleet_env(settings, ports, secret), log_dir=Path(logs), ports=ports, ready_timeout=180
        ) as fleet,
    ):
        load = PushLoad(
            fleet.url("intake"),
            secret=secret,
            private_every=args.private_every,
            urgent_every=args.urgent_every,
            retry_for=args.retry_for,
            timeout=args.timeout,
        )
        for rate in rates(args):
            results.append(await measure(fleet, settings, load, rate, args))
            print("\n".join(results[-1].lines()), flush=True)
            if args.find and not results[-1].held:
                break
    return results


def summary(results: list[Result], args: argparse.Namespace) -> str:
    if not args.find:
        return ""
    held = [r for r in results if r.held]
    if not held:
        return f"no rate held p99 < {TARGET_P99:g} s (from {args.start:g}/s)"
    best = max(held, key=lambda r: r.rate)
    return (
        f"highest rate that held p99 < {TARGET_P99:g} s: {best.rate:g}/s "
        f"({best.per_second:.1f} acknowledged/s, p99 {best.p99:.2f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="appeals a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load per rate")
    parser.add_argument("--private-every", type=int, default=0, help="every N-th a private message")
    parser.add_argument(
        "--urgent-every", type=int, default=0, help="every N-th an urgent appeal (timed apart)"
    )
    parser.add_argument("--find", action="store_true", help="find the highest rate, p99 < 2 s")
    parser.add_argument("--start", type=float, default=5.0, help="--find: the first rate")
    parser.add_argument("--factor", type=float, default=1.5, help="--find: each rate's growth")
    parser.add_argument("--steps", type=int, default=6, help="--find: rates at most")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds to drain at most")
    parser.add_argument("--settle", type=float, default=30.0, help="give up after so long idle")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between counts")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a push may take")
    parser.add_argument("--retry-for", type=float, default=600.0, help="re-send a push so long")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    results = asyncio.run(run(args))
    if line := summary(results, args):
        print(line)
    if args.json:
        keep = ("rate", "seconds", "sent", "accepted", "acknowledged", "per_second", "p50", "p99")
        rows = [
            {k: getattr(r, k) for k in keep}
            | {"cpu_ms": r.cpu_ms, "costs": r.costs.as_json() if r.costs else None}
            | {"urgent": dataclasses.asdict(r.urgent) if r.urgent else None}
            for r in results
        ]
        print(json.dumps(rows, indent=2))
    print(f"after: {machine()}")
    return 0 if all(r.acknowledged == r.accepted for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
