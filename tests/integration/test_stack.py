"""`fengqiao stack` for real: a second, isolated Kafka and FerretDB on their own ports and cache.

It reuses the jars and the FerretDB binary of the main cache (<repo>/.cache) when they are
there, so it costs seconds; without them it runs the full first-time `up`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import StackError, down, status, up
from fengqiao.stack.lifecycle import components
from fengqiao.stack.process import process_argv
from tests.integration.stack_cache import share_main_cache

pytestmark = pytest.mark.stack

KAFKA_PORT = 19192
MONGO_PORT = 27217


def _processes_of(cache: Path) -> list[int]:
    """Pids of every process whose command line mentions `cache`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(cache).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _wait_until_dead(pid: int, within: float = 10.0) -> None:
    """SIGKILL is delivered at once but a process takes a moment to die: wait for its end."""
    deadline = time.monotonic() + within
    while process_argv(pid) is not None:
        assert time.monotonic() < deadline, f"pid {pid} still alive {within} s after SIGKILL"
        time.sleep(0.05)


@pytest.fixture
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    """Settings of a throwaway stack; whatever it started is stopped afterwards."""
    cache = tmp_path_factory.mktemp("stack-cache").resolve()
    share_main_cache(cache)
    settings = StackSettings(
        kafka_bootstrap=f"127.0.0.1:{KAFKA_PORT}",
        mongo_uri=f"mongodb://127.0.0.1:{MONGO_PORT}/",
        cache_dir=cache,
        external=False,
    )
    yield settings
    down(settings, progress=lambda _: None)


def test_up_status_up_down(isolated: StackSettings) -> None:
    said: list[str] = []
    up(isolated, said.append)
    assert any(line.startswith("kafka: ready on 127.0.0.1:19192 (pid ") for line in said), said
    assert any(line.startswith("ferretdb: ready on 127.0.0.1:27217 (pid ") for line in said), said

    rows = {r.name: r for r in status(isolated)}
    assert rows["kafka"].state == "running"
    assert rows["kafka"].reachable, rows["kafka"].detail
    assert rows["ferretdb"].state == "running"
    assert rows["ferretdb"].reachable, rows["ferretdb"].detail
    pids = {name: row.pid for name, row in rows.items()}
    assert all(pid is not None and Path(f"/proc/{pid}").exists() for pid in pids.values())
    server_log = rows["kafka"].log_path
    assert server_log is not None
    assert "Kafka Server started" in server_log.read_text()  # log4j2 works, not the NOP logger

    said.clear()
    up(isolated, said.append)  # again: harmless
    assert said == [
        f"kafka: already running on 127.0.0.1:{KAFKA_PORT} (pid {pids['kafka']})",
        f"ferretdb: already running on 127.0.0.1:{MONGO_PORT} (pid {pids['ferretdb']})",
    ]
    assert {r.name: r.pid for r in status(isolated)} == pids

    said.clear()
    down(isolated, said.append)
    assert any(line.startswith("kafka: stopped (pid ") for line in said), said
    assert any(line.startswith("ferretdb: stopped (pid ") for line in said), said
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids.values())
    assert _processes_of(isolated.cache_dir) == []
    assert [r.state for r in status(isolated)] == ["stopped", "stopped"]
    said.clear()
    down(isolated, said.append)  # again: harmless
    assert said == ["kafka: not running", "ferretdb: not running"]


def test_a_crashed_server_is_a_stale_pid_and_up_restarts_it(isolated: StackSettings) -> None:
    up(isolated, progress=lambda _: None)
    _, ferretdb = components(isolated)
    crashed = ferretdb.pid_file.read_text().strip()
    os.kill(int(crashed), signal.SIGKILL)
    _wait_until_dead(int(crashed))

    rows = {r.name: r for r in status(isolated)}
    assert rows["ferretdb"].state == "stale"
    assert rows["kafka"].state == "running"

    said: list[str] = []
    up(isolated, said.append)
    assert any("removing stale pid file" in line and crashed in line for line in said), said
    assert any(line.startswith("ferretdb: ready on") for line in said), said
    assert not Path(f"/proc/{crashed}").exists()  # reaped, no zombie left
    assert all(r.state == "running" and r.reachable for r in status(isolated))


def test_taken_port_is_refused_before_anything_starts(isolated: StackSettings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", MONGO_PORT))
        taken.listen()
        with pytest.raises(StackError) as caught:
            up(isolated, progress=lambda _: None)
    message = str(caught.value)
    assert f"port {MONGO_PORT}" in message
    assert "FENGQIAO_MONGO_URI" in message
    assert _processes_of(isolated.cache_dir) == []
