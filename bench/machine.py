"""What a benchmark ran on: CPU model, cores, load average, Python, and the store's server."""

from __future__ import annotations

import os
import platform
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
