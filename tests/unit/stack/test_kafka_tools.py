"""`fengqiao stack kafka <tool>`: which class runs, with which classpath and bootstrap server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fengqiao.cli import build_parser
from fengqiao.stack.errors import StackError
from fengqiao.stack.kafka import POM
from fengqiao.stack.kafka_tools import MAIN_CLASSES, tool_argv

LIBS = Path("/cache/kafka/libs")


def test_a_tool_runs_its_main_class_against_the_stack() -> None:
    argv = tool_argv("java", LIBS, "kafka-topics", ["--list"], "127.0.0.1:9")
    assert argv[:2] == ["java", "-Xmx256m"]
    assert argv[2:5] == ["-cp", "/cache/kafka/libs/*", "org.apache.kafka.tools.TopicCommand"]
    assert argv[5:] == ["--list", "--bootstrap-server", "127.0.0.1:9"]


@pytest.mark.parametrize(
    "name", ["consumer-groups", "kafka-consumer-groups", "kafka-consumer-groups.sh"]
)
def test_short_and_script_names(name: str) -> None:
    argv = tool_argv("java", LIBS, name, ["--describe", "--all-groups"], "h:1")
    assert MAIN_CLASSES["kafka-consumer-groups"] in argv


def test_a_server_named_in_the_arguments_is_kept() -> None:
    argv = tool_argv("java", LIBS, "kafka-topics", ["--bootstrap-server=x:1", "--list"], "h:1")
    assert argv.count("h:1") == 0
    helped = tool_argv("java", LIBS, "kafka-topics", ["--help"], "h:1")
    assert "--bootstrap-server" not in helped


def test_an_unknown_tool_names_the_known_ones() -> None:
    with pytest.raises(StackError, match="kafka-console-consumer"):
        tool_argv("java", LIBS, "kafka-nope", [], "h:1")


def test_the_cli_passes_the_tools_options_through() -> None:
    args = build_parser().parse_args(["stack", "kafka", "kafka-consumer-groups", "--describe"])
    assert (args.action, args.tool_args) == ("kafka", ["kafka-consumer-groups", "--describe"])


def test_the_pom_fetches_kafka_tools_at_the_brokers_version() -> None:
    pom = POM.read_text()
    tools = re.search(r"<artifactId>kafka-tools</artifactId>\s*<version>([^<]+)</version>", pom)
    assert tools is not None and tools[1] == "${kafka.version}"
    # slf4j 2 stays declared directly: kafka-tools' slf4j 1.7 would silence the broker's log.
    assert re.search(r"<artifactId>slf4j-api</artifactId>\s*<version>\$\{slf4j.version\}", pom)
