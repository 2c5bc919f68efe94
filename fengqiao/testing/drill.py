"""A fault drill: the whole fleet as processes on the local stack, a steady load of Weibo pushes,
and one fault after another, each followed by a count per accepted appeal (`tests/faults/`).

Each phase sends its share of the appeals at the drill's rate; `lead_in` seconds after the load
starts, the fault strikes (`Fault.act` returns once it is healed: the process restarted and
ready, the server back); the load goes on to the end of its share, then `Audit.drain` waits
for every appeal's case and acknowledgment. A phase's row: the appeals accepted (2xx, after
re-sends), those with exactly one case, with exactly one acknowledgment on the right channel,
those with more than one of either, those short of one, the dead letters written during the
phase, the consumer lag at its end, and the seconds from the end of the load to complete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fengqiao import processes, stack
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.audit import FLEET_GROUPS, Audit, Drained
from fengqiao.testing.groups import start_group_at_end
from fengqiao.testing.pushes import Delivery, PushLoad

log = logging.getLogger("fengqiao.testing.drill")


@dataclass
class Drill:
    """What a fault acts on: the fleet's processes and the stack's servers."""

    fleet: processes.Fleet
    settings: StackSettings
    ready_timeout: float = 120.0

    async def kill(self, name: str) -> None:
        await asyncio.to_thread(self.fleet.kill, name)

    async def start(self, name: str) -> None:
        await asyncio.to_thread(self.fleet.start, name, self.ready_timeout)

    async def crash_server(self, name: str) -> None:
        pid = await asyncio.to_thread(stack.kill, self.settings, name)
        log.info("killed %s (pid %d)", name, pid)

    async def restart_servers(self) -> None:
        await asyncio.to_thread(stack.up, self.settings, log.info)


Act = Callable[[Drill], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    name: str
    planned: float  # seconds it is expected to last, to spread the load over it
    act: Act


def kill_service(name: str) -> Fault:
    """`kill -9` of a service, started again a second later."""

    async def act(drill: Drill) -> None:
        await drill.kill(name)
        await asyncio.sleep(1.0)
        await drill.start(name)

    return Fault(f"kill -9 {name}", 10.0, act)


def server_down(server: str, seconds: float) -> Fault:
    """`kill -9` of the stack's `kafka` or `ferretdb`, started again after `seconds`."""

    async def act(drill: Drill) -> None:
        await drill.crash_server(server)
        await asyncio.sleep(seconds)
        await drill.restart_servers()

    what = "broker" if server == "kafka" else "store"
    return Fault(f"{what} down {seconds:g} s", seconds + 5.0, act)


def started_while_broker_down(service: str, seconds: float = 20.0) -> Fault:
    """A service stopped, the broker killed, the service started while the broker is down (it
    must wait for it), the broker started again after `seconds`; the service must get ready."""

    async def act(drill: Drill) -> None:
        await asyncio.to_thread(processes.stop, drill.fleet.members[service])
        await drill.crash_server("kafka")
        await asyncio.to_thread(drill.fleet.spawn, service)
        await asyncio.sleep(seconds)
        await drill.restart_servers()
        await asyncio.to_thread(drill.fleet.wait_ready, service, drill.ready_timeout)

    return Fault(f"{service} started, broker down {seconds:g} s", seconds + 10.0, act)


@dataclass
class Row:
    fault: str
    sent: int
    accepted: int
    cases: int  # appeals with exactly one case
    acks: int  # appeals with exactly one acknowledgment, on the right channel
    duplicates: int  # appeals with more than one case or acknowledgment
    missing: int  # appeals short of a case or of an acknowledgment on the right channel
    wrong_channel: int  # appeals acknowledged on another channel
    dead_letters: int
    lag: int
    drain_seconds: float
    drained: bool
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        whole = self.accepted == self.sent == self.cases == self.acks
        return (
            whole
            and not (self.duplicates or self.missing or self.wrong_channel)
            and (not self.dead_letters and not self.lag and self.drained)
        )


HEADER = (
    "fault",
    "sent",
    "accepted",
    "cases",
    "acks",
    "duplicates",
    "missing",
    "wrong channel",
    "dead letters",
    "lag",
    "s to drain",
)


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table, with a total."""
    cells: list[tuple[str, ...]] = [HEADER]
    for r in [*rows, total(rows)] if rows else []:
        drain = f"{r.drain_seconds:.0f}" if r.drained else f">{r.drain_seconds:.0f} (not)"
        counts = [r.sent, r.accepted, r.cases, r.acks, r.duplicates, r.missing]
        counts += [r.wrong_channel, r.dead_letters, r.lag]
        cells.append((r.fault, *map(str, counts), drain))
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = []
    for row in cells:
        rest = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        lines.append("  ".join([row[0].ljust(widths[0]), *rest]))
    return "\n".join(lines)


def total(rows: Sequence[Row]) -> Row:
    """The rows added up (the lag: the last row's)."""
    return Row(
        "total",
        sent=sum(r.sent for r in rows),
        accepted=sum(r.accepted for r in rows),
        cases=sum(r.cases for r in rows),
        acks=sum(r.acks for r in rows),
        duplicates=sum(r.duplicates for r in rows),
        missing=sum(r.missing for r in rows),
        wrong_channel=sum(r.wrong_channel for r in rows),
        dead_letters=sum(r.dead_letters for r in rows),
        lag=rows[-1].lag,
        drain_seconds=max(r.drain_seconds for r in rows),
        drained=all(r.drained for r in rows),
    )


def row_of(
    fault: str, deliveries: Sequence[Delivery], drained: Drained, letters: Sequence[str]
) -> Row:
    outcomes = drained.outcomes
    refused = [
        f"appeal {d.push.index} not accepted after {d.tries} tries: {d.answers[-1:]}"
        for d in deliveries
        if not d.accepted
    ]
    problems = refused + [p for o in outcomes if (p := o.problem()) is not None] + list(letters)
    problems += [f"consumer group {g}: lag {n}" for g, n in drained.lag.items() if n]
    return Row(
        fault,
        sent=len(deliveries),
        accepted=len(outcomes),
        cases=sum(len(o.cases) == 1 for o in outcomes),
        acks=sum(len(o.acks) == 1 for o in outcomes),
        duplicates=sum(len(o.cases) > 1 or len(o.acks) > 1 for o in outcomes),
        missing=sum(not o.cases or not o.acks for o in outcomes),
        wrong_channel=sum(bool(o.elsewhere) for o in outcomes),
        dead_letters=len(letters),
        lag=sum(drained.lag.values()),
        drain_seconds=drained.seconds,
        drained=drained.complete,
        problems=problems,
    )


async def run_phase(
    drill: Drill,
    audit: Audit,
    load: PushLoad,
    fault: Fault,
    *,
    count: int,
    rate: float,
    lead_in: float,
    deadline: float,
) -> Row:
    """One fault under `count` appeals at `rate`/s, and its count once drained."""
    letters_before, since_ms = await audit.dead_letter_ends(), int(time.time() * 1000)
    sending = asyncio.create_task(load.send(count, rate))
    await asyncio.sleep(lead_in)
    started = time.monotonic()
    try:
        await fault.act(drill)
    finally:
        deliveries = await sending
    log.info("%s: healed after %.0f s", fault.name, time.monotonic() - started)
    drained = await audit.drain(deliveries, deadline=deadline)
    letters = await audit.dead_letters_since(letters_before, since_ms)
    return row_of(fault.name, deliveries, drained, letters)


async def start_groups_at_end(bootstrap: str) -> list[str]:
    """Move the services' consumer groups to the end of their topics, so a drill counts only
    its own messages (not what earlier suites left on the stack's topics); their names."""
    from fengqiao.ops.kafka import connect

    async with connect(bootstrap) as cluster:
        groups = [g for g in await cluster.group_lags() if g.service in FLEET_GROUPS]
    for group in groups:
        await start_group_at_end(bootstrap, group.group, group.topic)
    return [g.group for g in groups]
