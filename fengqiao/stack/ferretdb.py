"""The local MongoDB: FerretDB 1.24 on SQLite, built from deploy/ferretdb with go."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from fengqiao.stack import process, tools
from fengqiao.stack.addresses import MONGO_ENV, HostPort, format_hostport
from fengqiao.stack.component import DEPLOY_DIR, Component, Launched, Progress
from fengqiao.stack.errors import StackError
from fengqiao.stack.probes import mongo_probe

FERRETDB_DEPLOY = DEPLOY_DIR / "ferretdb"
SOURCES = ("main.go", "go.mod", "go.sum")


class FerretDB(Component):
    """A single FerretDB process; its SQLite files live in the cache."""

    name = "ferretdb"
    env_var = MONGO_ENV
    ready_timeout = 30.0

    def __init__(self, cache_dir: Path, address: HostPort) -> None:
        super().__init__(cache_dir, address)
        self.bin_dir = self.home / "bin"
        self.binary = self.bin_dir / "ferretdb"
        self.data = self.home / "data"

    @property
    def log_path(self) -> Path:
        """FerretDB logs to stderr, which goes here."""
        return self.logs / "ferretdb.log"

    @property
    def markers(self) -> tuple[str, ...]:
        """This cache's binary and data dir."""
        return (str(self.binary), str(self.data))

    def port_hint(self) -> str:
        """The port comes from the MongoDB URI."""
        return f"choose another port with {MONGO_ENV}=mongodb://127.0.0.1:<port>/"

    def build_reason(self) -> str | None:
        """Why the binary must be (re)built, or None when it is up to date."""
        try:
            built = self.binary.stat().st_mtime
        except OSError:
            return "first time only"
        newest = max((FERRETDB_DEPLOY / name).stat().st_mtime for name in SOURCES)
        return "deploy/ferretdb changed" if newest > built else None

    def check_tools(self) -> None:
        """go, only while the binary is missing or older than its sources."""
        if self.build_reason() is not None:
            tools.require_go(tools.go_mod_version(FERRETDB_DEPLOY / "go.mod"))

    def prepare(self, progress: Progress) -> None:
        """Build the binary unless it is up to date."""
        reason = self.build_reason()
        if reason is None:
            return
        go = tools.require_go(tools.go_mod_version(FERRETDB_DEPLOY / "go.mod"))
        progress(f"ferretdb: building with go ({reason})...")
        started = time.monotonic()
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / "build.log"
        partial = self.bin_dir / "ferretdb.partial"
        # FerretDB's SQLite is pure Go: without cgo no C compiler is needed.
        env = {**os.environ, "CGO_ENABLED": "0"}
        with log.open("w") as out:
            done = subprocess.run(
                [go, "build", "-o", str(partial), "."],
                cwd=FERRETDB_DEPLOY,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(
                f"ferretdb: go build failed (exit {done.returncode}); see {log}", process.tail(log)
            )
        # Rename into place so an interrupted build never leaves half a binary behind.
        partial.replace(self.binary)
        progress(f"ferretdb: built in {time.monotonic() - started:.1f} s")

    def launch(self, progress: Progress) -> Launched:
        """Start FerretDB on the address of the MongoDB URI."""
        self.data.mkdir(parents=True, exist_ok=True)
        progress(f"ferretdb: starting on {self.address}...")
        listen = format_hostport(self.address.bind_host, self.address.port)
        argv = [str(self.binary), "-listen-addr", listen, "-data-dir", str(self.data)]
        offsets = {self.log_path: process.file_size(self.log_path)}
        pid = process.spawn(argv, self.log_path)
        return Launched(pid=pid, started=time.monotonic(), log_offsets=offsets)

    async def probe(self, limit: float) -> str | None:
        """FerretDB answers ping."""
        uri = f"mongodb://{format_hostport(self.address.bind_host, self.address.port)}/"
        return await mongo_probe(uri, limit)
