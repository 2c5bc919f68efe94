"""Rendering Kafka's server.properties, the cluster id and the jar cache check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fengqiao.stack import StackError
from fengqiao.stack.addresses import HostPort
from fengqiao.stack.kafka import (
    LOG4J_CONFIG,
    SERVER_TEMPLATE,
    Kafka,
    new_cluster_id,
    pom_digest,
    render_server_properties,
    render_template,
)


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_server_properties_for_a_single_node(tmp_path: Path) -> None:
    text = render_server_properties(
        SERVER_TEMPLATE.read_text(), HostPort("127.0.0.1", 19192), 19193, tmp_path / "data"
    )
    props = _properties(text)
    assert "@" not in text.replace("1@127.0.0.1", "")
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19193"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["share.coordinator.state.topic.replication.factor"] == "1"
    assert props["offsets.topic.num.partitions"] == "10"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"


def test_localhost_binds_ipv4_loopback_and_ipv6_is_bracketed(tmp_path: Path) -> None:
    v4 = _properties(
        render_server_properties("l=@HOST@:@PORT@", HostPort("localhost", 1), 2, tmp_path)
    )
    assert v4["l"] == "127.0.0.1:1"
    v6 = _properties(render_server_properties("l=@HOST@:@PORT@", HostPort("::1", 1), 2, tmp_path))
    assert v6["l"] == "[::1]:1"


def test_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(StackError, match="@NOPE@"):
        render_template("a=@NOPE@", {"HOST": "h"})


def test_log4j_config_writes_into_the_logs_dir_given_at_start() -> None:
    assert "${sys:kafka.logs.dir}/server.log" in LOG4J_CONFIG.read_text()


def test_cluster_id_is_22_chars_of_base64url_never_an_option() -> None:
    for _ in range(500):
        cluster_id = new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


def test_cluster_id_is_made_once_and_kept(tmp_path: Path) -> None:
    kafka = Kafka(tmp_path, HostPort("127.0.0.1", 19192))
    first = kafka.cluster_id()
    assert kafka.cluster_id() == first
    assert Kafka(tmp_path, HostPort("127.0.0.1", 19192)).cluster_id() == first


def test_jars_are_ready_only_with_the_stamp_of_the_current_pom(tmp_path: Path) -> None:
    kafka = Kafka(tmp_path, HostPort("127.0.0.1", 19192))
    assert not kafka.jars_ready()
    kafka.libs.mkdir(parents=True)
    stamp = kafka.libs / ".fengqiao-pom.sha256"
    stamp.write_text("0" * 64)
    assert not kafka.jars_ready()
    stamp.write_text(pom_digest() + "\n")
    assert kafka.jars_ready()


def test_ports_and_markers_belong_to_this_cache(tmp_path: Path) -> None:
    kafka = Kafka(tmp_path, HostPort("127.0.0.1", 19192))
    assert [port for port, _ in kafka.ports()] == [19192, 19193]
    assert str(tmp_path / "kafka" / "config" / "server.properties") in kafka.markers
    assert kafka.pid_file == tmp_path / "run" / "kafka.pid"


def test_write_config_renders_into_the_cache(tmp_path: Path) -> None:
    kafka = Kafka(tmp_path, HostPort("127.0.0.1", 19192))
    kafka.write_config()
    assert "PLAINTEXT://127.0.0.1:19192" in kafka.server_properties.read_text()
    assert kafka.log4j_config.read_text() == LOG4J_CONFIG.read_text()
