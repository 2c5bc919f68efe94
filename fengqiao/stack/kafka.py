"""The local Kafka: one JVM that is both broker and KRaft controller, run from jars in the cache."""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from fengqiao.stack import jars, process, tools
from fengqiao.stack.addresses import KAFKA_ENV, HostPort
from fengqiao.stack.component import DEPLOY_DIR, Component, Launched, Progress
from fengqiao.stack.errors import StackError
from fengqiao.stack.probes import kafka_probe

KAFKA_DEPLOY = DEPLOY_DIR / "kafka"
POM = KAFKA_DEPLOY / "pom.xml"
SERVER_TEMPLATE = KAFKA_DEPLOY / "server.properties"
LOG4J_CONFIG = KAFKA_DEPLOY / "log4j2.properties"

HEAP = "-Xmx512m"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def new_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes in unpadded base64url (22 characters).

    Like Kafka's own Uuid.randomUuid, never all zeros and never starting with '-', which the
    storage tool's argument parser would read as an option.
    """
    while True:
        raw = secrets.token_bytes(16)
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if any(raw) and not text.startswith("-"):
            return text


def render_template(template: str, values: dict[str, str]) -> str:
    """Replace every `@NAME@` in `template`; a placeholder without a value is an error."""

    def substitute(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            raise StackError(f"the Kafka config template has an unknown placeholder @{key}@")
        return values[key]

    return _PLACEHOLDER.sub(substitute, template)


def _properties_value(text: str) -> str:
    # Backslash starts an escape in .properties files.
    return text.replace("\\", "\\\\")


def render_server_properties(
    template: str, address: HostPort, controller_port: int, data_dir: Path
) -> str:
    """server.properties for a single node listening on `address` (controller on its own port)."""
    bind = address.bind_host
    host = f"[{bind}]" if ":" in bind else bind  # URIs bracket an IPv6 literal
    return render_template(
        template,
        {
            "HOST": host,
            "PORT": str(address.port),
            "CONTROLLER_PORT": str(controller_port),
            "DATA_DIR": _properties_value(str(data_dir)),
        },
    )


def pom_digest(pom: Path = POM) -> str:
    """What the jars in the cache must have been fetched for."""
    return jars.pom_digest(pom)


class Kafka(Component):
    """Kafka 4 in KRaft mode: jars fetched by mvn, storage formatted once, one JVM."""

    name = "kafka"
    env_var = KAFKA_ENV
    ready_timeout = 60.0

    def __init__(self, cache_dir: Path, address: HostPort) -> None:
        super().__init__(cache_dir, address)
        self.libs = self.home / "libs"
        self.data = self.home / "data"
        self.config = self.home / "config"
        self.server_properties = self.config / "server.properties"
        self.log4j_config = self.config / "log4j2.properties"
        self.stdout_log = self.logs / "stdout.log"
        self.cluster_id_file = self.home / "cluster.id"
        self._java: str | None = None

    @property
    def controller_port(self) -> int:
        """The KRaft controller listens right above the broker."""
        return self.address.port + 1

    @property
    def log_path(self) -> Path:
        """log4j2's server.log."""
        return self.logs / "server.log"

    @property
    def markers(self) -> tuple[str, ...]:
        """The main class and this cache's config file."""
        return ("kafka.Kafka", str(self.server_properties))

    def ports(self) -> Sequence[tuple[int, str]]:
        """Broker and controller."""
        return [
            (self.address.port, "kafka"),
            (self.controller_port, "kafka's KRaft controller"),
        ]

    def port_hint(self) -> str:
        """Both ports move with the bootstrap address."""
        return (
            f"choose other ports with {KAFKA_ENV}=127.0.0.1:<port> "
            "(the KRaft controller takes <port>+1)"
        )

    def failure_logs(self) -> Sequence[Path]:
        """server.log, then the JVM's own output (where a crash before logging starts ends up)."""
        return [self.log_path, self.stdout_log]

    def jars_ready(self) -> bool:
        """True when libs/ holds a complete fetch for the current pom."""
        return jars.jars_ready(self.libs, POM)

    def check_tools(self) -> None:
        """java always; mvn only while the jars are not cached."""
        self._java = tools.require_java()
        if not self.jars_ready():
            tools.require_mvn()

    def prepare(self, progress: Progress) -> None:
        """Fetch the jars unless they are cached."""
        if not self.jars_ready():
            jars.fetch_jars(POM, self.home, "kafka", progress)

    def _jvm(self) -> list[str]:
        java = self._java or tools.require_java()
        return [
            java,
            HEAP,
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dlog4j2.configurationFile={self.log4j_config}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.libs}/*",  # java expands the wildcard itself
        ]

    def write_config(self) -> None:
        """Render server.properties and copy log4j2.properties into config/."""
        self.config.mkdir(parents=True, exist_ok=True)
        text = render_server_properties(
            SERVER_TEMPLATE.read_text(), self.address, self.controller_port, self.data
        )
        self.server_properties.write_text(text)
        shutil.copyfile(LOG4J_CONFIG, self.log4j_config)

    def cluster_id(self) -> str:
        """The cluster id kept in the cache, made up the first time."""
        try:
            kept = self.cluster_id_file.read_text().strip()
        except OSError:
            kept = ""
        if _CLUSTER_ID.fullmatch(kept):
            return kept
        fresh = new_cluster_id()
        self.cluster_id_file.parent.mkdir(parents=True, exist_ok=True)
        self.cluster_id_file.write_text(fresh + "\n")
        return fresh

    def _format_storage(self, progress: Progress) -> None:
        # Only a data dir without meta.properties: formatting twice would refuse, or lose data.
        if (self.data / "meta.properties").exists():
            return
        cluster_id = self.cluster_id()
        progress(f"kafka: formatting storage in {self.data} (cluster id {cluster_id})...")
        log = self.logs / "format.log"
        argv = [*self._jvm(), "kafka.tools.StorageTool", "format"]
        argv += ["-t", cluster_id, "-c", str(self.server_properties)]
        with log.open("w") as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise StackError(
                f"kafka: formatting the storage failed (exit {done.returncode}); see {log}",
                process.tail(log),
            )

    def launch(self, progress: Progress) -> Launched:
        """Write the config, format the storage if new, start the JVM."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self._format_storage(progress)
        progress(f"kafka: starting on {self.address}...")
        # stdout.log holds only what the JVM prints outside log4j: one run's worth is enough.
        self.stdout_log.write_bytes(b"")
        offsets = {self.log_path: process.file_size(self.log_path), self.stdout_log: 0}
        argv = [*self._jvm(), "kafka.Kafka", str(self.server_properties)]
        pid = process.spawn(argv, self.stdout_log)
        return Launched(pid=pid, started=time.monotonic(), log_offsets=offsets)

    async def probe(self, limit: float) -> str | None:
        """The broker lists its topics."""
        return await kafka_probe(str(self.address), limit)
