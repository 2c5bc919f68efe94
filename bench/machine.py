"""What a benchmark ran on: CPU model, cores, load average, Python, and the store's server."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> str:
    """`<cpu>, <n> cores, load <1> <5> <15>, Python <x.y.z>` (the load when called)."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {load()}, Python {platform.python_version()}"


async def store_name(db: Any) -> str:
    """`FerretDB <version>` or `MongoDB <version>`, from the server's buildInfo (a FerretDB built
    from source reports its version as "unknown": then the version deploy/ferretdb pins)."""
    info = await db.command("buildInfo")
    if "ferretdbVersion" not in info:
        return f"MongoDB {info.get('version', '?')}"
    version = info["ferretdbVersion"]
    if version in ("", "unknown"):
        version = _pinned_ferretdb() + " (SQLite)"
    return f"FerretDB {version}"


def _pinned_ferretdb() -> str:
    go_mod = Path(__file__).resolve().parents[1] / "deploy" / "ferretdb" / "go.mod"
    try:
        for line in go_mod.read_text(encoding="utf-8").splitlines():
            if "github.com/FerretDB/FerretDB " in line:
                return line.split()[-1]
    except OSError:
        pass
    return "?"


class CpuMeter:
    """CPU seconds used by this process and by the local stack's servers between `start` and
    `stop` (from /proc: only servers running on this machine are counted), per event."""

    def __init__(self, servers: dict[str, int], *, this: str = "this process") -> None:
        self.this = this
        self._servers = servers  # name → pid
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}

    @classmethod
    def for_stack(cls, settings: Any, *, this: str) -> CpuMeter:
        """For this process (named `this`) and the stack's servers that run here (call it
        outside an event loop: it asks the stack's status)."""
        from fengqiao import stack

        found = {s.name: s.pid for s in stack.status(settings) if s.pid is not None}
        return cls(found, this=this)

    def _now(self) -> dict[str, float]:
        seconds = {self.this: time.process_time()}
        tick = os.sysconf("SC_CLK_TCK")
        for name, pid in self._servers.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return seconds

    def start(self) -> None:
        self._start = self._now()

    def seconds(self) -> float:
        """CPU seconds of this process since `start`."""
        return time.process_time() - self._start[self.this]

    def stop(self) -> None:
        now = self._now()
        self.used = {name: now[name] - self._start[name] for name in now if name in self._start}

    def per_event(self, events: int) -> str:
        """`CPU per event: tracker 610 µs, ferretdb 480 µs, kafka 70 µs`."""
        parts = [f"{name} {seconds / events * 1e6:,.0f} µs" for name, seconds in self.used.items()]
        return "CPU per event: " + ", ".join(parts)
