"""Shared fixtures. Integration and end-to-end tests get a real Kafka and MongoDB from
`fengqiao.testing.real_stack` (external cluster, testcontainers, or the native stack)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fengqiao.testing import StackEndpoints, real_stack

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in {"integration", "e2e"}:
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack_endpoints() -> Iterator[StackEndpoints]:
    """A real Kafka and MongoDB for the whole test session."""
    with real_stack() as endpoints:
        yield endpoints
