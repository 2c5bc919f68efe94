"""Helpers for the local-stack unit tests: free ports and settings for a throwaway cache."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack.process import port_in_use


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free (Kafka's broker and controller)."""
    for _ in range(50):
        port = _free_port()
        if port < 65534 and not port_in_use("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    """Settings of a stack in an empty cache, on ports nothing listens on."""
    return StackSettings(
        kafka_bootstrap=f"127.0.0.1:{free_port_pair()}",
        mongo_uri=f"mongodb://127.0.0.1:{free_port_pair()}/",
        cache_dir=tmp_path / "cache",
        external=False,
    )
