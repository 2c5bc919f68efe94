"""Java programs run from jars that Maven fetches into the cache once: Kafka, and the OIDC
provider the test suite signs in against (fengqiao.testing.oidc).

A pom under deploy/ lists what to fetch; `mvn dependency:copy-dependencies` copies the jars
into `<home>/libs`, and a stamp with the pom's digest says the copy is complete and current.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from pathlib import Path

from fengqiao.stack import process, tools
from fengqiao.stack.component import Progress
from fengqiao.stack.errors import StackError

# Written into libs/ once every jar is there: which pom they came from.
STAMP = ".fengqiao-pom.sha256"


def pom_digest(pom: Path) -> str:
    """What the jars in the cache must have been fetched for."""
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_ready(libs: Path, pom: Path) -> bool:
    """True when `libs` holds a complete fetch for the current `pom`."""
    try:
        return (libs / STAMP).read_text().strip() == pom_digest(pom)
    except OSError:
        return False


def fetch_jars(pom: Path, home: Path, what: str, progress: Progress) -> Path:
    """Fetch the jars of `pom` into `<home>/libs` (replacing an older fetch); returns libs."""
    mvn = tools.require_mvn()
    progress(f"{what}: fetching jars with mvn (first time only)...")
    started = time.monotonic()
    libs, partial, logs = home / "libs", home / "libs.partial", home / "logs"
    shutil.rmtree(partial, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "mvn.log"
    argv = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies"]
    argv.append(f"-DoutputDirectory={partial}")
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise StackError(
            f"{what}: mvn could not fetch the jars (exit {done.returncode}), is Maven Central "
            f"reachable? See {log}",
            process.tail(log),
        )
    (partial / STAMP).write_text(pom_digest(pom) + "\n")
    _replace_libs(libs, partial)
    count = len(list(libs.glob("*.jar")))
    progress(f"{what}: fetched {count} jars in {time.monotonic() - started:.1f} s")
    return libs


def _replace_libs(libs: Path, partial: Path) -> None:
    # Swap whole directories: jars of an older pom must not stay on the classpath.
    if libs.is_symlink():
        libs.unlink()
    elif libs.exists():
        old = libs.with_name("libs.old")
        shutil.rmtree(old, ignore_errors=True)
        libs.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    partial.rename(libs)
