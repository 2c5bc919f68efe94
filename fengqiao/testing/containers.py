"""The testcontainers path's Kafka: the Apache image of the version the local stack builds.

testcontainers-python's `KafkaContainer` (4.x) starts Confluent's `cp-kafka` images only: its
start script runs `/etc/confluent/docker/configure` and `launch`. The official `apache/kafka`
image starts with `/etc/kafka/docker/run` and takes the same `KAFKA_*` variables, so this
container keeps the library's start sequence (wait for a script, write it once the mapped port
is known, wait for the log line) and replaces what is Confluent's: the KRaft variables and the
script. One broker, controller and broker in one process, as in deploy/compose.yaml.

`KAFKA_IMAGE` is the version of deploy/kafka/pom.xml (tests/project/test_deploy.py keeps them
one).
"""

from __future__ import annotations

import re
from textwrap import dedent

from testcontainers.community.kafka import KafkaContainer

KAFKA_IMAGE = "apache/kafka:4.1.2"
CLUSTER_ID = "4L6g3nShT-eMCtK--X86sw"

# The client listener (mapped to the host), the inter-broker listener (inside the container)
# and the KRaft controller's.
LISTENERS = "PLAINTEXT://0.0.0.0:9093,BROKER://0.0.0.0:9092,CONTROLLER://0.0.0.0:9094"
PROTOCOLS = "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"


def kraft_environment() -> dict[str, str]:
    """What the `apache/kafka` image needs for a single KRaft node (broker and controller)."""
    return {
        "CLUSTER_ID": CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": LISTENERS,
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": PROTOCOLS,
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }


def start_script(host: str, port: int) -> str:
    """The script the container waits for: the advertised listeners, then the image's own start."""
    return dedent(
        f"""\
        #!/bin/bash
        export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},BROKER://$(hostname -i):9092
        exec /etc/kafka/docker/run
        """
    )


class ApacheKafkaContainer(KafkaContainer):
    """A single-node KRaft Kafka from the official `apache/kafka` image."""

    def __init__(self, image: str = KAFKA_IMAGE) -> None:
        super().__init__(image, port=9093)
        for name, value in kraft_environment().items():
            self.with_env(name, value)

    def configure(self) -> None:
        # The image formats its storage itself (CLUSTER_ID); nothing of Confluent's to patch.
        self.boot_command = ""
        self.wait_for = re.compile(r".*Kafka Server started.*")

    def tc_start(self) -> None:
        script = start_script(self.get_container_host_ip(), self.get_exposed_port(self.port))
        self.create_file(script.encode(), KafkaContainer.TC_START_SCRIPT)
