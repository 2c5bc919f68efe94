"""A Kafka of a test's own whose clients must authenticate with SASL/SCRAM-SHA-512.

One JVM (broker and KRaft controller) from the stack's jars, in a temporary directory, on free
ports of its own; the SCRAM credential is written when the storage is formatted (KRaft keeps
credentials in its metadata log: `kafka-storage format --add-scram`). Clients reach it through
the SASL_PLAINTEXT listener; the broker talks to itself on a PLAINTEXT listener that the tests
never use, and the controller on its own.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from faststream.security import SASLScram512

from fengqiao.stack import tools
from fengqiao.stack.addresses import HostPort
from fengqiao.stack.kafka import LOG4J_CONFIG, Kafka, new_cluster_id
from fengqiao.stack.probes import kafka_probe

USER = "fengqiao-svc"
MECHANISM = "SCRAM-SHA-512"

PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=SASL_PLAINTEXT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},\
CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,\
CONTROLLER:PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs={data}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.network.threads=2
num.io.threads=2
"""


@dataclass(frozen=True)
class ScramKafka:
    bootstrap: str
    user: str
    password: str

    def security(self, password: str | None = None) -> SASLScram512:
        return SASLScram512(self.user, password or self.password)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _libs(cache_dir: Path) -> Path:
    """The stack's Kafka jars (fetched by mvn if this cache has none yet)."""
    kafka = Kafka(cache_dir, HostPort("127.0.0.1", 9092))  # only its jars are used
    kafka.check_tools()
    kafka.prepare(lambda line: None)
    return kafka.libs


@contextmanager
def scram_kafka(cache_dir: Path, home: Path, *, timeout: float = 90.0) -> Iterator[ScramKafka]:
    """A running SCRAM-only Kafka in `home`, stopped at the end of the block."""
    client, internal, controller = free_ports(3)
    password = secrets.token_hex(16)
    (home / "logs").mkdir(parents=True)
    config = home / "server.properties"
    config.write_text(
        PROPERTIES.format(
            client=client, internal=internal, controller=controller, data=home / "data"
        )
    )
    jvm = [tools.require_java(), "-Xmx256m", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"]
    jvm += [f"-Dkafka.logs.dir={home / 'logs'}", "-cp", f"{_libs(cache_dir)}/*"]
    scram = f"{MECHANISM}=[name={USER},password={password}]"
    format_argv = ["kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(config)]
    subprocess.run([*jvm, *format_argv, "--add-scram", scram], check=True, capture_output=True)
    with (home / "logs" / "stdout.log").open("wb") as out:
        broker = subprocess.Popen([*jvm, "kafka.Kafka", str(config)], stdout=out, stderr=out)
    found = ScramKafka(f"127.0.0.1:{client}", USER, password)
    try:
        _wait_ready(found, broker, timeout, home / "logs")
        yield found
    finally:
        broker.terminate()
        try:
            broker.wait(30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def _wait_ready(
    kafka: ScramKafka, broker: subprocess.Popen[bytes], timeout: float, logs: Path
) -> None:
    deadline = time.monotonic() + timeout
    reason: str | None = "not started"
    while time.monotonic() < deadline:
        if broker.poll() is not None:
            tails = [p.read_text()[-3000:] for p in sorted(logs.glob("*.log"))]
            raise RuntimeError(f"the SCRAM broker exited with {broker.returncode}: {tails}")
        reason = asyncio.run(kafka_probe(kafka.bootstrap, 5, kafka.security()))
        if reason is None:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the SCRAM broker is not ready after {timeout:.0f} s: {reason}")
