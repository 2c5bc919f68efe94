"""The services (the workbench too) and the simulator as real processes, for the demo and
end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fengqiao.runner import SERVICES

DEFAULT_PORTS = {
    "intake": 8081,
    "router": 8082,
    "tracker": 8083,
    "notifier": 8084,
    "workbench": 8085,
    "simulator": 8090,
}


def simulator_env(simulator_port: int) -> dict[str, str]:
    """Settings that point the notifier at the platform simulator on `simulator_port`."""
    return {
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{simulator_port}",
        "FENGQIAO_NOTIFIER_DEFAULT_ACCESS_TOKEN": "simulator-token",
        # The simulator has no hourly budget; the platform's (60 comments an hour an account)
        # would hold a demo's or a test's replies for hours.
        "FENGQIAO_NOTIFIER_RATE_LIMITS": "false",
    }


def workbench_env(ports: Mapping[str, int]) -> dict[str, str]:
    """Settings that point the workbench at the fleet's tracker, router and notifier on their
    ports (none for a service the fleet does not run)."""
    return {
        f"FENGQIAO_WORKBENCH_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}"
        for name in ("tracker", "router", "notifier")
        if name in ports
    }


def free_ports(names: tuple[str, ...] = tuple(DEFAULT_PORTS)) -> dict[str, int]:
    """A free loopback port for each name (tests run beside a demo or another checkout's tests)."""
    sockets = [socket.socket() for _ in names]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    finally:
        for sock in sockets:
            sock.close()


class ProcessError(RuntimeError):
    """A process did not start or become ready; the message includes the end of its log."""


@dataclass
class Managed:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path


@dataclass
class Fleet:
    """Running processes by name, with their base URLs; `kill` and `start` one of them again
    (fault drills: `tests/faults/`, `bench/e2e.py`)."""

    members: dict[str, Managed] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path = Path(".")
    ports: Mapping[str, int] = field(default_factory=lambda: DEFAULT_PORTS)

    def url(self, name: str) -> str:
        return self.members[name].url

    def pid(self, name: str) -> int:
        return self.members[name].process.pid

    def spawn(self, name: str) -> Managed:
        """Start `name` (a service or `simulator`) on its port, without waiting for it."""
        port = self.ports[name]
        command = ["simulator"] if name == "simulator" else ["run", name]
        args = [*command, "--port", str(port)]
        self.members[name] = _spawn(name, args, self.env, port, self.log_dir)
        return self.members[name]

    def wait_ready(self, name: str, timeout: float = 60.0) -> None:
        """Until `name` answers `/readyz` (the simulator: `/healthz`); ProcessError if it exits
        or does not in `timeout` seconds."""
        _wait_ready(self.members[name], _ready_path(name), time.monotonic() + timeout)

    def start(self, name: str, timeout: float = 60.0) -> None:
        """Start `name` again (after `kill`) and wait until it is ready."""
        self.spawn(name)
        self.wait_ready(name, timeout)

    def kill(self, name: str) -> None:
        """`kill -9` of `name`'s process group: no shutdown, no flush, no commit; reaped."""
        process = self.members[name].process
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ready_path(name: str) -> str:
    return "/healthz" if name == "simulator" else "/readyz"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(name: str, args: list[str], env: Mapping[str, str], port: int, log_dir: Path) -> Managed:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fengqiao.cli", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Managed(name, process, f"http://127.0.0.1:{port}", log)


def _wait_ready(member: Managed, path: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if member.process.poll() is not None:
            raise ProcessError(
                f"{member.name} exited with {member.process.returncode}; log {member.log}:\n"
                + _tail(member.log)
            )
        try:
            if httpx.get(member.url + path, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ProcessError(f"{member.name} not ready in time; log {member.log}:\n" + _tail(member.log))


def stop(member: Managed, timeout: float = 15.0) -> None:
    if member.process.poll() is None:
        os.killpg(member.process.pid, signal.SIGTERM)
        try:
            member.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(member.process.pid, signal.SIGKILL)
            member.process.wait()


@contextmanager
def running(
    env: Mapping[str, str],
    *,
    log_dir: Path,
    services: tuple[str, ...] = SERVICES,
    simulator: bool = True,
    ports: Mapping[str, int] = DEFAULT_PORTS,
    ready_timeout: float = 60.0,
) -> Iterator[Fleet]:
    """Start the simulator and `services`, wait until each answers `/readyz`; stop all after."""
    fleet = Fleet(env={**workbench_env(ports), **env}, log_dir=log_dir, ports=ports)
    try:
        for name in (("simulator",) if simulator else ()) + tuple(services):
            fleet.spawn(name)
        deadline = time.monotonic() + ready_timeout
        for member in fleet.members.values():
            _wait_ready(member, _ready_path(member.name), deadline)
        yield fleet
    finally:
        for member in reversed(list(fleet.members.values())):
            stop(member)
