"""A broker just started answers GROUP_LOAD_IN_PROGRESS for a few seconds: the ops commands (and
the benches and drills that list groups, `Cluster.group_lags`) ask again instead of failing."""

from __future__ import annotations

import pytest
from aiokafka.errors import GroupLoadInProgressError

from fengqiao.ops.kafka import while_loading


@pytest.mark.asyncio
async def test_asked_again_while_the_broker_loads_its_groups() -> None:
    asked = 0

    async def list_groups() -> list[str]:
        nonlocal asked
        asked += 1
        if asked <= 2:
            raise GroupLoadInProgressError("Error listing consumer groups")
        return ["intake.posts.raw"]

    assert await while_loading(list_groups) == ["intake.posts.raw"]
    assert asked == 3


@pytest.mark.asyncio
async def test_a_broker_that_never_loads_is_reported() -> None:
    async def loading() -> None:
        raise GroupLoadInProgressError("still loading")

    with pytest.raises(GroupLoadInProgressError):
        await while_loading(loading, limit=0.0)
