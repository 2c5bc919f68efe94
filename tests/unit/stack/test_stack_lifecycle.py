"""up / down / status without starting anything: stale pid files, taken ports, external mode."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import StackError, down, status, up
from fengqiao.stack.addresses import HostPort, parse_kafka_bootstrap, parse_mongo_uri
from fengqiao.stack.component import Component, Launched, Progress
from fengqiao.stack.lifecycle import _await_ready, _Wait, components
from fengqiao.stack.process import spawn, write_pid_file


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_status_of_a_stack_never_started(settings: StackSettings) -> None:
    rows = status(settings)
    assert [r.name for r in rows] == ["kafka", "ferretdb"]
    assert [r.state for r in rows] == ["stopped", "stopped"]
    assert all(r.pid is None and not r.reachable for r in rows)
    assert rows[0].address == settings.kafka_bootstrap
    assert rows[0].log_path is not None
    assert rows[0].log_path.name == "server.log"


def test_stale_pid_files_are_reported_then_removed(settings: StackSettings) -> None:
    kafka, ferretdb = components(settings)
    dead = _dead_pid()
    write_pid_file(kafka.pid_file, dead)
    write_pid_file(ferretdb.pid_file, os.getpid())  # alive, but pytest is no FerretDB

    rows = {r.name: r for r in status(settings)}
    assert rows["kafka"].state == "stale"
    assert rows["kafka"].pid == dead
    assert f"pid {dead} is not running" in rows["kafka"].detail
    assert rows["ferretdb"].state == "stale"
    assert "not this stack's ferretdb" in rows["ferretdb"].detail
    assert kafka.pid_file.exists()  # status only looks

    said: list[str] = []
    down(settings, said.append)
    assert not kafka.pid_file.exists()
    assert not ferretdb.pid_file.exists()
    assert any("removing stale pid file" in line and str(dead) in line for line in said)
    assert "kafka: not running" in said
    assert [r.state for r in status(settings)] == ["stopped", "stopped"]


def test_up_refuses_a_kafka_port_taken_by_someone_else(settings: StackSettings) -> None:
    port = parse_kafka_bootstrap(settings.kafka_bootstrap).port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(StackError) as caught:
            up(settings, progress=lambda _: None)
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1" in message
    assert "FENGQIAO_KAFKA_BOOTSTRAP" in message
    assert "\n" not in message
    kafka, ferretdb = components(settings)
    assert not kafka.pid_file.exists()
    assert not ferretdb.pid_file.exists()


def test_up_refuses_the_controller_port_too(settings: StackSettings) -> None:
    port = parse_kafka_bootstrap(settings.kafka_bootstrap).port + 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(StackError, match=f"port {port} .*KRaft controller"):
            up(settings, progress=lambda _: None)
        rows = {r.name: r for r in status(settings)}
        assert f"port {port} is in use" in rows["kafka"].detail


def test_up_refuses_a_mongo_port_taken_by_someone_else(settings: StackSettings) -> None:
    port = parse_mongo_uri(settings.mongo_uri).port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(StackError, match=f"port {port} .*FENGQIAO_MONGO_URI"):
            up(settings, progress=lambda _: None)


def test_external_stack_is_left_alone(settings: StackSettings) -> None:
    external = settings.model_copy(update={"external": True})
    said: list[str] = []
    up(external, said.append)
    down(external, said.append)
    assert len(said) == 2
    assert all("FENGQIAO_EXTERNAL=true" in line for line in said)
    assert "nothing to start" in said[0]
    assert "nothing to stop" in said[1]
    assert not external.cache_dir.exists()
    rows = status(external)
    assert [r.state for r in rows] == ["stopped", "stopped"]
    assert all(r.detail.startswith("external: not reachable") for r in rows)


def test_remote_addresses_need_external(settings: StackSettings) -> None:
    remote = settings.model_copy(update={"kafka_bootstrap": "kafka.example.com:9092"})
    with pytest.raises(StackError, match="FENGQIAO_EXTERNAL=true"):
        up(remote, progress=lambda _: None)


class _Scripted(Component):
    """A stand-in server: a shell command that never answers its probe."""

    name = "scripted"
    env_var = "FENGQIAO_SCRIPTED"
    ready_timeout = 1.0

    def __init__(self, cache_dir: Path, script: str) -> None:
        super().__init__(cache_dir, HostPort("127.0.0.1", 1))
        self.script = script

    @property
    def log_path(self) -> Path:
        return self.logs / "scripted.log"

    @property
    def markers(self) -> tuple[str, ...]:
        return ("/bin/sh", "-c", self.script)

    def port_hint(self) -> str:
        return "no"

    def check_tools(self) -> None:
        pass

    def prepare(self, progress: Progress) -> None:
        pass

    def launch(self, progress: Progress) -> Launched:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("from an earlier run\n")
        offsets = {self.log_path: self.log_path.stat().st_size}
        pid = spawn(["/bin/sh", "-c", self.script], self.log_path)
        return Launched(pid=pid, started=time.monotonic(), log_offsets=offsets)

    async def probe(self, limit: float) -> str | None:
        return "nope"


def _start(c: _Scripted) -> tuple[_Wait, list[str]]:
    launched = c.launch(lambda _: None)
    write_pid_file(c.pid_file, launched.pid)
    return _Wait(c, launched, fresh=True), []


def test_a_server_that_never_answers_is_stopped_and_its_log_shown(tmp_path: Path) -> None:
    server = _Scripted(tmp_path, "echo starting; echo still starting; exec sleep 30")
    wait, said = _start(server)
    with pytest.raises(StackError) as caught:
        _await_ready([wait], said.append)
    assert str(caught.value) == (
        f"scripted did not answer on 127.0.0.1:1 within 1 s (nope); see {server.log_path}"
    )
    assert caught.value.details.splitlines() == [
        f"--- last lines of {server.log_path} ---",
        "starting",
        "still starting",
    ]
    assert not Path(f"/proc/{wait.launched.pid}").exists()
    assert not server.pid_file.exists()


def test_a_server_that_exits_at_start_reports_its_exit_code(tmp_path: Path) -> None:
    server = _Scripted(tmp_path, "echo fatal: bad config; exit 3")
    wait, said = _start(server)
    with pytest.raises(StackError, match=r"^scripted exited during startup with code 3; see "):
        _await_ready([wait], said.append)
    assert not server.pid_file.exists()
