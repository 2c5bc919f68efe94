"""The tools the local stack needs, found and checked up front so a missing one is one clear line.

java runs Kafka (always); mvn fetches the Kafka jars (and the test suite's OIDC provider's) and
go builds FerretDB, each only until their result is in the cache.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from fengqiao.stack.errors import StackError

MIN_JAVA = 17
JAVA_INSTALL = f"install a JDK {MIN_JAVA} (apt-get install openjdk-{MIN_JAVA}-jre-headless)"
MVN_INSTALL = "install Maven 3 (apt-get install maven)"
GO_INSTALL = "install Go from https://go.dev/dl/"

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')
_GO_VERSION = re.compile(r"\bgo(\d+)\.(\d+)(?:\.(\d+))?")
_GO_MOD_VERSION = re.compile(r"^go\s+(\d+)\.(\d+)(?:\.(\d+))?\s*$", re.MULTILINE)


def parse_java_version(output: str) -> int | None:
    """The major version from `java -version` output: `"17.0.15"` → 17, `"1.8.0_381"` → 8."""
    match = _JAVA_VERSION.search(output)
    if match is None:
        return None
    major = int(match[1])
    # Java 8 and older call themselves 1.x.
    return int(match[2]) if major == 1 and match[2] else major


def parse_go_version(text: str) -> tuple[int, ...] | None:
    """`go version go1.26.8 linux/amd64` → (1, 26, 8); `go 1.24` (a go.mod line) → (1, 24)."""
    match = _GO_MOD_VERSION.search(text) or _GO_VERSION.search(text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def _run_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"`{' '.join(argv)}` does not run ({exc})") from None
    # java prints its version on stderr, go on stdout.
    return done.stdout + done.stderr


def find_java() -> str | None:
    """JAVA_HOME's java when JAVA_HOME is set, else the java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def require_java() -> str:
    """The path of a java that is at least version 17, or StackError saying what to install."""
    java = find_java()
    need = f"java {MIN_JAVA} or newer is required to run Kafka"
    if java is None:
        raise StackError(f"{need}: {JAVA_INSTALL}")
    major = parse_java_version(_run_version([java, "-version"]))
    if major is None:
        raise StackError(f"{need}, and `{java} -version` does not say its version: {JAVA_INSTALL}")
    if major < MIN_JAVA:
        raise StackError(
            f"{need}, but {java} is java {major}: {JAVA_INSTALL} and put it first on PATH "
            "or point JAVA_HOME at it"
        )
    return java


def require_mvn() -> str:
    """The path of mvn, or StackError saying what to install."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"mvn is required once to fetch the Kafka jars: {MVN_INSTALL}")
    return mvn


def go_mod_version(go_mod: Path) -> tuple[int, ...]:
    """The Go version that `go_mod` asks for (its `go` line)."""
    version = parse_go_version(go_mod.read_text())
    if version is None:
        raise StackError(f"{go_mod} has no `go` line")
    return version


def require_go(minimum: tuple[int, ...]) -> str:
    """The path of a go that is at least `minimum`, or StackError saying what to install."""
    go = shutil.which("go")
    need = f"go {_version_text(minimum)} or newer is required once to build FerretDB"
    if go is None:
        raise StackError(f"{need}: {GO_INSTALL}")
    found = parse_go_version(_run_version([go, "version"]))
    if found is None:
        raise StackError(f"{need}, and `{go} version` does not say its version: {GO_INSTALL}")
    if found < minimum:
        raise StackError(f"{need}, but {go} is go {_version_text(found)}: {GO_INSTALL}")
    return go
