"""The local MongoDB: FerretDB 1.24 on SQLite, built from deploy/ferretdb with go.

The build applies deploy/ferretdb/patches.json to a copy of FerretDB's module source (each entry
replaces one exact line and says why): `go build -modfile` then points the module at that copy.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import IO

from fengqiao.stack import process, tools
from fengqiao.stack.addresses import MONGO_ENV, HostPort, format_hostport
from fengqiao.stack.component import DEPLOY_DIR, Component, Launched, Progress
from fengqiao.stack.errors import StackError
from fengqiao.stack.probes import mongo_probe

FERRETDB_DEPLOY = DEPLOY_DIR / "ferretdb"
SOURCES = ("main.go", "go.mod", "go.sum", "patches.json")
MODULE = "github.com/FerretDB/FerretDB"


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
        with log.open("w") as out:
            found = _go(go, ["mod", "download", "-json", MODULE], out, log)
            modfile = patched_module(Path(json.loads(found)["Dir"]), self.home / "src")
            _go(go, ["build", "-modfile", str(modfile), "-o", str(partial), "."], out, log)
        # Rename into place so an interrupted build never leaves half a binary behind.
        partial.replace(self.binary)
        progress(f"ferretdb: built in {time.monotonic() - started:.1f} s")

    def launch(self, progress: Progress) -> Launched:
        """Start FerretDB on the address of the MongoDB URI."""
        self.data.mkdir(parents=True, exist_ok=True)
        progress(f"ferretdb: starting on {self.address}...")
        listen = format_hostport(self.address.bind_host, self.address.port)
        argv = [str(self.binary), "-listen-addr", listen, "-data-dir", str(self.data)]
        if debug := os.environ.get("FENGQIAO_FERRETDB_DEBUG_ADDR"):  # Go's pprof, for benches
            argv += ["-debug-addr", debug]
        offsets = {self.log_path: process.file_size(self.log_path)}
        pid = process.spawn(argv, self.log_path)
        return Launched(pid=pid, started=time.monotonic(), log_offsets=offsets)

    async def probe(self, limit: float) -> str | None:
        """FerretDB answers ping."""
        uri = f"mongodb://{format_hostport(self.address.bind_host, self.address.port)}/"
        return await mongo_probe(uri, limit)


def _go(go: str, args: list[str], out: IO[str], log: Path) -> str:
    """Run go in deploy/ferretdb; its stdout (also logged), or a StackError."""
    # FerretDB's SQLite is pure Go: without cgo no C compiler is needed.
    env = {**os.environ, "CGO_ENABLED": "0"}
    done = subprocess.run(
        [go, *args], cwd=FERRETDB_DEPLOY, env=env, stdout=subprocess.PIPE, stderr=out, text=True
    )
    out.write(done.stdout)
    out.flush()
    if done.returncode != 0:
        raise StackError(
            f"ferretdb: go {args[0]} failed (exit {done.returncode}); see {log}", process.tail(log)
        )
    return done.stdout


def patched_module(
    source: Path, work: Path, patches: Path = FERRETDB_DEPLOY / "patches.json"
) -> Path:
    """Copy FerretDB's module from `source` (the read-only module cache) to `work`, apply
    `patches`, and write a go.mod beside it that builds deploy/ferretdb against the copy.
    Returns that go.mod (for `go build -modfile`)."""
    copy = work / "FerretDB"
    if work.exists():
        _make_writable(work)
        shutil.rmtree(work)
    shutil.copytree(source, copy)
    _make_writable(copy)  # the module cache is read-only, and so is the copy
    for patch in json.loads(patches.read_text(encoding="utf-8")):
        target = copy / patch["file"]
        text = target.read_text(encoding="utf-8")
        if text.count(patch["old"]) != 1:
            raise StackError(
                f"ferretdb: the patch of {patch['file']} does not apply: "
                f"{source / patch['file']} must hold {patch['old']!r} once"
            )
        target.write_text(text.replace(patch["old"], patch["new"]), encoding="utf-8")
    modfile = work / "go.mod"
    base = (FERRETDB_DEPLOY / "go.mod").read_text(encoding="utf-8")
    modfile.write_text(f"{base.rstrip()}\n\nreplace {MODULE} => {copy}\n", encoding="utf-8")
    shutil.copyfile(FERRETDB_DEPLOY / "go.sum", work / "go.sum")  # -modfile reads go.sum beside it
    return modfile


def _make_writable(tree: Path) -> None:
    for path in (tree, *tree.rglob("*")):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
