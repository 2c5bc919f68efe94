"""`up`, `down` and `status` of the local stack: Kafka and FerretDB as plain processes."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import process
from fengqiao.stack.addresses import (
    EXTERNAL_ENV,
    format_hostport,
    parse_kafka_bootstrap,
    parse_mongo_uri,
    redact_uri,
)
from fengqiao.stack.component import Component, Launched, Progress
from fengqiao.stack.errors import StackError
from fengqiao.stack.ferretdb import FerretDB
from fengqiao.stack.kafka import Kafka
from fengqiao.stack.probes import kafka_probe, mongo_probe, run_sync

State = Literal["running", "stopped", "stale"]

STOP_GRACE = 20.0  # Kafka's controlled shutdown takes a few seconds; then SIGKILL
KILL_GRACE = 5.0
PROBE_TIMEOUT = 5.0  # one readiness attempt
STATUS_PROBE_TIMEOUT = 3.0
NOTE_EVERY = 10.0  # progress while waiting for a server


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` knows about one server of the stack."""

    name: str
    state: State
    pid: int | None
    address: str
    log_path: Path | None
    detail: str = ""
    reachable: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "address": self.address,
            "log_path": None if self.log_path is None else str(self.log_path),
            "detail": self.detail,
            "reachable": self.reachable,
        }


@dataclass(frozen=True)
class _Found:
    pid: int | None  # our running server, if any
    recorded: int | None  # what the pid file says
    stale: str | None  # why the pid file is stale; None when it is not


@dataclass(frozen=True)
class _Wait:
    component: Component
    launched: Launched
    fresh: bool  # started by this call (so ours to stop if it never answers)


def components(settings: StackSettings, only: Sequence[str] | None = None) -> list[Component]:
    """The servers of the local stack for `settings` (StackError if the addresses do not fit);
    with `only`, those of these names ("kafka", "ferretdb")."""
    # Absolute, because our processes are recognised by the paths in their arguments.
    cache = settings.cache_dir.expanduser().resolve()
    comps: list[Component] = [
        Kafka(cache, parse_kafka_bootstrap(settings.kafka_bootstrap)),
        FerretDB(cache, parse_mongo_uri(settings.mongo_uri)),
    ]
    return [c for c in comps if only is None or c.name in only]


def _lock_path(comps: Sequence[Component]) -> Path:
    return comps[0].cache_dir / "run" / "stack.lock"


def _serialised(progress: Progress) -> Progress:
    # Kafka and FerretDB are prepared in parallel threads; keep their lines whole.
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)

    return say


def _why_stale(c: Component, pid: int | None) -> str:
    if pid is None:
        return "it holds no pid"
    argv = process.process_argv(pid)
    if argv is None:
        return f"pid {pid} is not running"
    return f"pid {pid} is {Path(argv[0]).name}, not this stack's {c.name}"


def _inspect(c: Component) -> _Found:
    """Read-only: is our server running, and is its pid file stale?"""
    recorded = process.read_pid_file(c.pid_file)
    if recorded is not None and process.owns(recorded, c.markers):
        return _Found(recorded, recorded, None)
    stale = _why_stale(c, recorded) if c.pid_file.exists() else None
    # A server whose pid file was lost is still ours: /proc knows it by its arguments.
    owned = process.find_owned(c.markers)
    return _Found(owned[0] if owned else None, recorded, stale)


def _settle(c: Component, say: Progress) -> int | None:
    """Our running server's pid, after removing a stale pid file and recording a lost one."""
    found = _inspect(c)
    if found.stale is not None:
        say(f"{c.name}: removing stale pid file {c.pid_file} ({found.stale})")
        if found.recorded is not None:
            process.reap(found.recorded)  # our own child that died leaves a zombie until reaped
        process.remove_file(c.pid_file)
    if found.pid is not None and found.recorded != found.pid:
        say(f"{c.name}: pid {found.pid} was running without a pid file; recording it")
        process.write_pid_file(c.pid_file, found.pid)
    return found.pid


def _check_ports(c: Component) -> None:
    host = c.address.bind_host
    for port, role in c.ports():
        where = format_hostport(host, port)
        try:
            taken = process.port_in_use(host, port)
        except OSError as exc:
            raise StackError(
                f"{c.name} cannot listen on {where} ({exc.strerror or exc}): {c.port_hint()}"
            ) from None
        if taken:
            owner = process.port_owner(port)
            by = f"pid {owner[0]} ({owner[1]})" if owner else "another process"
            raise StackError(
                f"port {port} on {host} ({role}) is already in use by {by}: stop it, or "
                f"{c.port_hint()}"
            )


def _prepare(pending: Sequence[Component], say: Progress) -> None:
    # The jar fetch waits on the network and the go build on the CPU: side by side the cold
    # start costs the slower of the two, not their sum.
    with ThreadPoolExecutor(max_workers=max(1, len(pending)), thread_name_prefix="stack") as pool:
        futures = [pool.submit(c.prepare, say) for c in pending]
    for future in futures:
        future.result()  # re-raises the first failure, once both have finished


def _startup_failure(c: Component, launched: Launched, message: str) -> StackError:
    sections: list[str] = []
    named: Path | None = None
    for log in c.failure_logs():
        text = process.tail(log, 20, launched.log_offsets.get(log, 0))
        if text:
            sections.append(f"--- last lines of {log} ---\n{text}")
            named = named or log
    return StackError(f"{message}; see {named or c.log_path}", "\n".join(sections))


def _alive(w: _Wait) -> bool:
    if w.fresh:
        # Our own child: waitpid is the authority. Its cmdline is no use in the first
        # milliseconds: posix_spawn returns while the kernel still loads the binary, and until
        # then /proc/<pid>/cmdline reads empty.
        return process.child_running(w.launched.pid)
    return process.owns(w.launched.pid, w.component.markers)


async def _wait_ready(w: _Wait, say: Progress) -> None:
    c, launched = w.component, w.launched
    deadline = launched.started + c.ready_timeout
    next_note = launched.started + NOTE_EVERY
    while True:
        if not _alive(w):
            code = process.reap(launched.pid) if w.fresh else None
            how = f" with code {code}" if code is not None else ""
            raise _startup_failure(c, launched, f"{c.name} exited during startup{how}")
        attempt = min(PROBE_TIMEOUT, max(0.5, deadline - time.monotonic()))
        reason = await c.probe(attempt)
        now = time.monotonic()
        if reason is None:
            if w.fresh:
                took = now - launched.started
                say(f"{c.name}: ready on {c.address} (pid {launched.pid}, {took:.1f} s)")
            return
        if now >= deadline:
            message = f"{c.name} did not answer on {c.address} within {c.ready_timeout:.0f} s"
            raise _startup_failure(c, launched, f"{message} ({reason})")
        if now >= next_note:
            say(f"{c.name}: waiting for {c.address} ({now - launched.started:.0f} s)...")
            next_note += NOTE_EVERY
        await asyncio.sleep(0.25)


def _stop(c: Component, pid: int) -> bool:
    """Wait for `pid` (sent SIGTERM already) to exit, SIGKILL it after STOP_GRACE; True: killed."""
    if process.wait_gone(pid, c.markers, STOP_GRACE):
        return False
    process.send_signal(pid, signal.SIGKILL)
    if process.wait_gone(pid, c.markers, KILL_GRACE):
        return True
    raise StackError(f"{c.name}: pid {pid} is still there after SIGKILL; look at it with ps")


def _await_ready(waits: Sequence[_Wait], say: Progress) -> None:
    async def all_ready() -> list[BaseException | None]:
        return await asyncio.gather(*(_wait_ready(w, say) for w in waits), return_exceptions=True)

    errors: list[BaseException] = []
    for w, result in zip(waits, run_sync(all_ready), strict=True):
        if result is None:
            continue
        errors.append(result)
        if w.fresh:
            # A server that never answered is not left behind half-started.
            process.send_signal(w.launched.pid, signal.SIGTERM)
            _stop(w.component, w.launched.pid)
            process.remove_file(w.component.pid_file)
    if errors:
        raise errors[0]


def _external_note(settings: StackSettings, verb: str) -> str:
    return (
        f"stack: {EXTERNAL_ENV}=true: Kafka ({settings.kafka_bootstrap}) and MongoDB "
        f"({redact_uri(settings.mongo_uri)}) are run by someone else, nothing to {verb}"
    )


def up(
    settings: StackSettings, progress: Progress = print, *, only: Sequence[str] | None = None
) -> None:
    """Start the local Kafka and FerretDB unless they run already; return once both answer.
    With `only` ("kafka", "ferretdb"), only those (the fault tests stop and start the store).

    The first call fetches the Kafka jars (mvn) and builds FerretDB (go) into
    `settings.cache_dir`; later calls only start the processes. Calling it while the stack is
    up is harmless. Raises StackError (one line, plus log tails in `details`) when a tool is
    missing, a port is taken by someone else, or a server does not come up.
    """
    if settings.external:
        progress(_external_note(settings, "start"))
        return
    comps = components(settings, only)
    say = _serialised(progress)
    waiting = "stack: waiting for another `fengqiao stack` command to finish..."
    with process.exclusive(_lock_path(comps), lambda: say(waiting)):
        waits: list[_Wait] = []
        pending: list[Component] = []
        for c in comps:
            pid = _settle(c, say)
            if pid is None:
                pending.append(c)
                continue
            say(f"{c.name}: already running on {c.address} (pid {pid})")
            waits.append(_Wait(c, Launched(pid=pid, started=time.monotonic()), fresh=False))
        # Everything that can fail fast does, before minutes of fetching and building.
        for c in pending:
            _check_ports(c)
        for c in pending:
            c.check_tools()
        _prepare(pending, say)
        for c in pending:
            _check_ports(c)  # again: the build took a while
            launched = c.launch(say)
            process.write_pid_file(c.pid_file, launched.pid)
            waits.append(_Wait(c, launched, fresh=True))
        _await_ready(waits, say)


def down(
    settings: StackSettings, progress: Progress = print, *, only: Sequence[str] | None = None
) -> None:
    """Stop the local Kafka and FerretDB: SIGTERM, then SIGKILL after 20 s; no process remains.
    With `only` ("kafka", "ferretdb"), only those: the other one keeps running.

    Stale pid files are reported and removed. Stopping a stack that is not running is harmless.
    """
    if settings.external:
        progress(_external_note(settings, "stop"))
        return
    comps = components(settings, only)
    say = _serialised(progress)
    with process.exclusive(_lock_path(comps), lambda: say("stack: waiting for another command...")):
        stopping: list[tuple[Component, int, float]] = []
        for c in comps:
            pid = _settle(c, say)
            if pid is None:
                say(f"{c.name}: not running")
                continue
            # Signal every server first and wait afterwards: they shut down side by side.
            for each in sorted({pid, *process.find_owned(c.markers)}):
                say(f"{c.name}: stopping pid {each}...")
                process.send_signal(each, signal.SIGTERM)
                stopping.append((c, each, time.monotonic()))
        for c, pid, since in stopping:
            killed = _stop(c, pid)
            process.remove_file(c.pid_file)
            how = ", killed after SIGTERM was ignored" if killed else ""
            say(f"{c.name}: stopped (pid {pid}, {time.monotonic() - since:.1f} s{how})")


def _port_detail(c: Component) -> str:
    for port, _ in c.ports():
        try:
            taken = process.port_in_use(c.address.bind_host, port)
        except OSError as exc:
            return f"cannot bind port {port}: {exc.strerror or exc}"
        if taken:
            owner = process.port_owner(port)
            by = f"pid {owner[0]} ({owner[1]})" if owner else "another process"
            return f"port {port} is in use by {by}"
    return ""


def _local_row(c: Component, found: _Found, reason: str | None) -> ComponentStatus:
    answers = reason is None
    stale = f"stale pid file ({found.stale})" if found.stale else ""
    if found.pid is not None:
        detail = "answers" if answers else f"not answering: {reason}"
        if stale:
            detail += f"; {stale}"
        return ComponentStatus(
            c.name, "running", found.pid, str(c.address), c.log_path, detail, answers
        )
    if stale:
        detail = f"{stale}: `fengqiao stack up` or `down` removes it"
        return ComponentStatus(c.name, "stale", found.recorded, str(c.address), c.log_path, detail)
    return ComponentStatus(
        c.name, "stopped", None, str(c.address), c.log_path, _port_detail(c), answers
    )


def _external_status(settings: StackSettings) -> list[ComponentStatus]:
    async def probe_both() -> list[str | None]:
        return list(
            await asyncio.gather(
                kafka_probe(
                    settings.kafka_bootstrap, STATUS_PROBE_TIMEOUT, settings.kafka_security()
                ),
                mongo_probe(settings.mongo_uri, STATUS_PROBE_TIMEOUT),
            )
        )

    kafka_reason, mongo_reason = run_sync(probe_both)
    rows = [("kafka", settings.kafka_bootstrap, kafka_reason)]
    rows.append(("mongodb", redact_uri(settings.mongo_uri), mongo_reason))
    return [
        ComponentStatus(
            name,
            "running" if reason is None else "stopped",
            None,
            address,
            None,
            "external: answers" if reason is None else f"external: not reachable: {reason}",
            reason is None,
        )
        for name, address, reason in rows
    ]


def status(settings: StackSettings) -> list[ComponentStatus]:
    """The state of each server, read-only (stale pid files are reported, not removed).

    With `settings.external` it only checks that the external Kafka and MongoDB answer.
    """
    if settings.external:
        return _external_status(settings)
    comps = components(settings)
    found = [_inspect(c) for c in comps]

    async def probe_all() -> list[str | None]:
        return list(await asyncio.gather(*(c.probe(STATUS_PROBE_TIMEOUT) for c in comps)))

    reasons = run_sync(probe_all)
    return [_local_row(c, f, r) for c, f, r in zip(comps, found, reasons, strict=True)]
