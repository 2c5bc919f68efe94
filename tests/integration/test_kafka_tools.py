"""Kafka's own command-line tools run from the stack's jars (`fengqiao stack kafka <tool>`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fengqiao.contracts import all_topic_names
from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import jars
from fengqiao.stack.kafka import POM


def fengqiao(stack: StackSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FENGQIAO_KAFKA_BOOTSTRAP": stack.kafka_bootstrap}
    env["FENGQIAO_CACHE_DIR"] = str(stack.cache_dir)
    argv = [sys.executable, "-m", "fengqiao.cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tool_stack(stack: StackSettings) -> StackSettings:
    if not jars.jars_ready(stack.cache_dir.expanduser().resolve() / "kafka" / "libs", POM):
        pytest.skip("Kafka runs elsewhere (FENGQIAO_EXTERNAL): no jars in this cache")
    return stack


def test_kafka_topics_lists_the_stacks_topics(tool_stack: StackSettings) -> None:
    done = fengqiao(tool_stack, "stack", "kafka", "kafka-topics", "--list")
    assert done.returncode == 0, done.stderr
    listed = set(done.stdout.split())
    assert set(all_topic_names()) <= listed


def test_consumer_groups_and_topic_describe_run(tool_stack: StackSettings) -> None:
    described = fengqiao(tool_stack, "stack", "kafka", "topics", "--describe", "--topic", "appeals")
    assert described.returncode == 0, described.stderr
    assert "PartitionCount" in described.stdout
    groups = fengqiao(tool_stack, "stack", "kafka", "kafka-consumer-groups", "--list")
    assert groups.returncode == 0, groups.stderr
