"""Pid files, /proc ownership, detached processes, ports, log tails and the stack lock."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fengqiao.stack import process
from fengqiao.stack.probes import run_sync


def _fake_proc(root: Path, processes: dict[int, bytes]) -> Path:
    for pid, cmdline in processes.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes(cmdline)
    (root / "self").mkdir()
    return root


def test_pid_file_round_trip_and_garbage(tmp_path: Path) -> None:
    pid_file = tmp_path / "run" / "kafka.pid"
    assert process.read_pid_file(pid_file) is None
    process.write_pid_file(pid_file, 4242)
    assert process.read_pid_file(pid_file) == 4242
    pid_file.write_text("not a pid\n")
    assert process.read_pid_file(pid_file) is None
    pid_file.write_text("0\n")
    assert process.read_pid_file(pid_file) is None


def test_ownership_is_read_from_the_command_line(tmp_path: Path) -> None:
    conf = "/c/kafka/config/server.properties"
    proc = _fake_proc(
        tmp_path / "proc",
        {
            10: f"java\0-cp\0x\0kafka.Kafka\0{conf}\0".encode(),
            11: b"java\0kafka.Kafka\0/other/cache/server.properties\0",  # another stack's Kafka
            12: b"",  # a zombie
            13: b"/usr/bin/python3\0-m\0http.server\0",
        },
    )
    markers = ("kafka.Kafka", conf)
    assert process.owns(10, markers, proc)
    assert not process.owns(11, markers, proc)
    assert not process.owns(12, markers, proc)
    assert not process.owns(13, markers, proc)
    assert not process.owns(99, markers, proc)  # no such process
    assert process.find_owned(markers, proc) == [10]
    assert process.process_argv(13, proc) == ["/usr/bin/python3", "-m", "http.server"]


def test_a_dead_pid_and_a_foreign_pid_are_not_ours() -> None:
    done = subprocess.run(["true"], check=True)
    assert done.returncode == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not process.owns(dead.pid, ("true",))
    # This very process is alive but is no Kafka.
    import os

    assert not process.owns(os.getpid(), ("kafka.Kafka",))


def test_spawn_detaches_and_stop_leaves_no_process(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    log = tmp_path / "logs" / "sleep.log"
    pid = process.spawn([sleep, "30"], log)
    markers = (sleep, "30")
    assert process.child_running(pid)
    deadline = time.monotonic() + 5
    while not process.owns(pid, markers):  # its cmdline appears once exec is done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert Path(f"/proc/{pid}/stat").read_text().split()[5] == str(pid)  # own session
    process.send_signal(pid, signal.SIGTERM)
    assert process.wait_gone(pid, markers, timeout=5)
    assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie
    assert log.exists()


def test_child_running_keeps_the_exit_code_for_reap(tmp_path: Path) -> None:
    pid = process.spawn(["/bin/sh", "-c", "exit 3"], tmp_path / "sh.log")
    deadline = time.monotonic() + 5
    while process.child_running(pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert process.reap(pid) == 3


def test_port_taken_by_a_bound_socket() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert process.port_in_use("127.0.0.1", port)
        owner = process.port_owner(port)
        assert owner is not None
        import os

        assert owner[0] == os.getpid()
    assert not process.port_in_use("127.0.0.1", port)


def test_tail_shows_only_what_was_written_since_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    assert process.tail(log) == ""
    log.write_text("".join(f"old {i}\n" for i in range(5)))
    offset = process.file_size(log)
    with log.open("a") as out:
        out.write("".join(f"new {i}\n" for i in range(30)))
    lines = process.tail(log, lines=20, since=offset).splitlines()
    assert lines == [f"new {i}" for i in range(10, 30)]
    assert process.tail(log, lines=3, since=10**9).splitlines() == ["new 27", "new 28", "new 29"]


def test_exclusive_waits_for_the_other_holder(tmp_path: Path) -> None:
    lock = tmp_path / "run" / "stack.lock"
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with process.exclusive(lock, on_wait=lambda: None):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    waited: list[str] = []

    def on_wait() -> None:
        waited.append("waiting")
        release.set()

    with process.exclusive(lock, on_wait):
        pass
    thread.join(5)
    assert waited == ["waiting"]


async def test_run_sync_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        return 42

    assert run_sync(answer) == 42


def test_run_sync_works_without_a_loop() -> None:
    async def answer() -> str:
        return "ok"

    assert run_sync(answer) == "ok"


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_send_signal_to_a_gone_process_is_fine(sig: signal.Signals) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    process.send_signal(gone.pid, sig)
