"""A crash of one server of the local stack, for fault drills (`tests/faults/`): `kill` sends
SIGKILL to this stack's Kafka or FerretDB (no shutdown of any kind, as a power cut or the OOM
killer would) and returns once it is gone; `fengqiao.stack.up` starts it again (it finds the
stale pid file, reaps the dead server and starts only what is missing).

    from fengqiao import stack
    stack.kill(settings, "kafka")   # or "ferretdb"
    time.sleep(20)
    stack.up(settings)
"""

from __future__ import annotations

import signal

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import process
from fengqiao.stack.errors import StackError
from fengqiao.stack.lifecycle import components

KILL_WAIT = 10.0


def server_pid(settings: StackSettings, name: str) -> int | None:
    """The pid of this stack's running server `name` (`kafka` or `ferretdb`), or None."""
    if settings.external:
        raise StackError("the stack is external (FENGQIAO_EXTERNAL): its servers are not ours")
    found = [c for c in components(settings) if c.name == name]
    if not found:
        names = ", ".join(c.name for c in components(settings))
        raise StackError(f"no server {name!r} in the local stack (there are {names})")
    [server] = found
    recorded = process.read_pid_file(server.pid_file)
    if recorded is not None and process.owns(recorded, server.markers):
        return recorded
    owned = process.find_owned(server.markers)
    return owned[0] if owned else None


def kill(settings: StackSettings, name: str) -> int:
    """SIGKILL this stack's server `name` and wait until it is gone; its pid.

    Its pid file stays (a crash leaves it too); `up` removes it and starts the server again.
    Raises StackError when the server is not running or survives SIGKILL.
    """
    pid = server_pid(settings, name)
    if pid is None:
        raise StackError(f"{name} is not running: nothing to kill")
    [server] = [c for c in components(settings) if c.name == name]
    process.send_signal(pid, signal.SIGKILL)
    if not process.wait_gone(pid, server.markers, KILL_WAIT):
        raise StackError(f"{name}: pid {pid} is still there after SIGKILL; look at it with ps")
    return pid
