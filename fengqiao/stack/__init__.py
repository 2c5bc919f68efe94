"""The native local stack: a real single-node Kafka and a real FerretDB, no Docker.

`up` fetches the Kafka jars with mvn and builds FerretDB with go the first time (into
`StackSettings.cache_dir`), then starts both as detached processes and waits until they answer;
`down` stops them; `status` says what runs; `kill` crashes one of them (SIGKILL, for fault
drills; `up` starts it again). With `FENGQIAO_EXTERNAL=true` someone else runs
the cluster: `up` and `down` do nothing and `status` only checks that it answers.
"""

from __future__ import annotations

from fengqiao.stack.crash import kill
from fengqiao.stack.errors import StackError
from fengqiao.stack.lifecycle import ComponentStatus, down, status, up

__all__ = ["ComponentStatus", "StackError", "down", "kill", "status", "up"]
