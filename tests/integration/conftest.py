from __future__ import annotations

import asyncio
import uuid

import pytest

from fengqiao.runtime.messaging import ensure_topics
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import StackEndpoints


@pytest.fixture(scope="session")
def stack(stack_endpoints: StackEndpoints) -> StackSettings:
    """The real stack's settings, with every topic created (as a service's start would)."""
    settings = stack_endpoints.settings()
    asyncio.run(ensure_topics(settings.kafka_bootstrap))
    return settings


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]
