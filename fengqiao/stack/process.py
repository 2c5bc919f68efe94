"""Processes of the local stack: pid files, ownership, detached start, stop, ports and logs.

Linux only: ownership is read from /proc, which is what makes a stale pid file (process gone,
or pid reused by something else) tell itself apart from our own server.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

PROC = Path("/proc")

# Read at most this much of a log to show its tail: logs can be large, tails are short.
_TAIL_BYTES = 64 * 1024

# Exit codes of children that child_running() collected, until reap() asks for them.
_exit_codes: dict[int, int] = {}


def read_pid_file(path: Path) -> int | None:
    """The pid in `path`, or None when the file is missing or does not hold a positive integer."""
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid_file(path: Path, pid: int) -> None:
    """Write `pid` to `path` atomically, so a concurrent reader never sees half a number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{pid}\n")
    partial.replace(path)


def remove_file(path: Path) -> None:
    """Delete `path` if it exists."""
    path.unlink(missing_ok=True)


def process_argv(pid: int, proc: Path = PROC) -> list[str] | None:
    """The command line of live process `pid`; None when there is none or it is a zombie."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    # Zombies (and kernel threads) have an empty cmdline: nothing runs there any more.
    if not raw:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def owns(pid: int, markers: Sequence[str], proc: Path = PROC) -> bool:
    """True when `pid` is alive and every marker is one of its arguments.

    The markers name paths inside one cache directory, so a Kafka of another stack (or any
    other process that inherited a recycled pid) is never mistaken for ours.
    """
    argv = process_argv(pid, proc)
    return argv is not None and all(marker in argv for marker in markers)


def find_owned(markers: Sequence[str], proc: Path = PROC) -> list[int]:
    """Pids of every live process whose arguments hold all `markers`, lowest first."""
    pids = [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]
    return sorted(pid for pid in pids if owns(pid, markers, proc))


def reap(pid: int) -> int | None:
    """The exit code of `pid` if it is an exited child of ours, collecting it so no zombie stays.

    None when it still runs or is not our child (then init collects it).
    """
    if pid in _exit_codes:
        return _exit_codes.pop(pid)
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done else None


def _child_exited(pid: int) -> bool | None:
    """Whether our child `pid` has exited (then it is reaped, its exit code kept for `reap`).

    None when `pid` is not our child: only its parent can tell, so callers look at /proc.
    """
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done:
        _exit_codes[pid] = os.waitstatus_to_exitcode(status)
        return True
    return False


def child_running(pid: int) -> bool:
    """True while our child `pid` has not exited; a pid that is not our child: while it exists."""
    exited = _child_exited(pid)
    return PROC.joinpath(str(pid)).exists() if exited is None else not exited


def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start `argv` detached and return its pid.

    The server gets its own session (a Ctrl-C in the terminal that ran `up` does not reach it),
    stdin from /dev/null and stdout and stderr appended to `log_path`. posix_spawn rather than
    subprocess.Popen: a Popen object for a server that outlives it warns when it is collected.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # Python ignores SIGPIPE and the caller may block signals; the server needs the defaults,
    # SIGTERM above all, since that is how `down` stops it.
    defaults = {signal.SIGPIPE, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    return os.posix_spawn(
        argv[0],
        list(argv),
        dict(os.environ if env is None else env),
        file_actions=actions,
        setsid=True,
        setsigdef=defaults,
        setsigmask=(),
    )


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to `pid`; a process that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(
    pid: int, markers: Sequence[str], timeout: float, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Wait until `pid` is no longer our process; False if it still is after `timeout` seconds."""
    deadline = clock() + timeout
    while True:
        exited = _child_exited(pid)
        # Our child is gone once waitpid collected it (no zombie stays); another process once
        # it no longer runs our command line (its parent reaps it).
        if (not owns(pid, markers)) if exited is None else exited:
            return True
        if clock() >= deadline:
            return False
        time.sleep(0.1)


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on `host:port` (so our server could not bind it).

    SO_REUSEADDR as the servers themselves use it: connections of a previous run still in
    TIME_WAIT are no conflict, a listening socket is.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(fields) < 10 or fields[3] != "0A":
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owner(port: int, proc: Path = PROC) -> tuple[int, str] | None:
    """(pid, program) of the process listening on TCP `port`, when /proc lets us see it."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    argv = process_argv(int(entry.name), proc) or ["?"]
                    return int(entry.name), Path(argv[0]).name
    return None


def file_size(path: Path) -> int:
    """Size of `path` in bytes, 0 when it does not exist yet."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail(path: Path, lines: int = 20, since: int = 0) -> str:
    """The last `lines` lines of `path` written after byte offset `since` ('' if none).

    A file smaller than `since` was rotated or truncated meanwhile; then all of it counts.
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = since if since <= size else 0
            handle.seek(max(start, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def exclusive(lock_path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path`: one `up` or `down` per cache at a time.

    Calls `on_wait` once if another holder makes us wait. The lock dies with its process, so a
    killed `up` never leaves it behind, and the descriptor is close-on-exec, so servers that
    we start do not inherit it.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
