from __future__ import annotations

import uuid

import pytest

from fengqiao.settings import StackSettings
from fengqiao.testing import StackEndpoints


@pytest.fixture(scope="session")
def stack(stack_endpoints: StackEndpoints) -> StackSettings:
    return stack_endpoints.settings()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:10]
