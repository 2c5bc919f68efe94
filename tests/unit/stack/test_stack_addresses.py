"""Parsing FENGQIAO_KAFKA_BOOTSTRAP / FENGQIAO_MONGO_URI into the addresses the stack binds."""

from __future__ import annotations

import pytest

from fengqiao.stack import StackError
from fengqiao.stack.addresses import (
    HostPort,
    format_hostport,
    parse_kafka_bootstrap,
    parse_mongo_uri,
    redact_uri,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:19092", HostPort("127.0.0.1", 19092)),
        (" 127.0.0.1:19192 ", HostPort("127.0.0.1", 19192)),
        ("localhost:9092", HostPort("localhost", 9092)),
        ("PLAINTEXT://127.0.0.1:9092", HostPort("127.0.0.1", 9092)),
        ("[::1]:9092", HostPort("::1", 9092)),
    ],
)
def test_kafka_bootstrap_parses(value: str, expected: HostPort) -> None:
    assert parse_kafka_bootstrap(value) == expected


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("broker1:9092,broker2:9092", "FENGQIAO_EXTERNAL=true"),
        ("kafka.example.com:9092", "FENGQIAO_EXTERNAL=true"),
        ("127.0.0.1", "no port"),
        ("127.0.0.1:65535", "between 1 and 65534"),  # no room for the controller port
        ("127.0.0.1:http", "not host:port"),
    ],
)
def test_kafka_bootstrap_rejects(value: str, needle: str) -> None:
    with pytest.raises(StackError) as caught:
        parse_kafka_bootstrap(value)
    assert needle in str(caught.value)
    assert "FENGQIAO_KAFKA_BOOTSTRAP" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://127.0.0.1:27117/", HostPort("127.0.0.1", 27117)),
        ("mongodb://localhost", HostPort("localhost", 27017)),
        ("mongodb://user:secret@127.0.0.1:27217/db?authSource=admin", HostPort("127.0.0.1", 27217)),
    ],
)
def test_mongo_uri_parses(uri: str, expected: HostPort) -> None:
    assert parse_mongo_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://db.example.com:27017/",
        "mongodb://127.0.0.1:27017,127.0.0.1:27018/",
        "mongodb+srv://cluster.example.com/",
        "postgres://127.0.0.1:5432/",
    ],
)
def test_mongo_uri_rejects_what_the_local_stack_cannot_serve(uri: str) -> None:
    with pytest.raises(StackError, match="FENGQIAO_MONGO_URI"):
        parse_mongo_uri(uri)


def test_bind_host_of_localhost_is_ipv4_loopback() -> None:
    assert HostPort("localhost", 1).bind_host == "127.0.0.1"
    assert HostPort("127.0.0.1", 1).bind_host == "127.0.0.1"


def test_format_hostport_brackets_ipv6() -> None:
    assert format_hostport("::1", 9092) == "[::1]:9092"
    assert str(HostPort("127.0.0.1", 9092)) == "127.0.0.1:9092"


def test_redact_uri_hides_the_password_only() -> None:
    assert redact_uri("mongodb://u:pw@h:1/db") == "mongodb://u:***@h:1/db"
    assert redact_uri("mongodb://127.0.0.1:27117/") == "mongodb://127.0.0.1:27117/"
