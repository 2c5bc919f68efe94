"""A store seeded by `bench/seed.py` is what the services read (issue 21, deliver 3): 200 closed
cases, seeded through the same code as the 200,000 of the benchmark, read back by the tracker as
closed cases (versions compacted to stubs, views, timers done or cancelled), counted by `fengqiao
stats` and listed by the unit API; a re-run writes nothing; and a new appeal still flows end to
end on the seeded databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from fengqiao import processes
from fengqiao.contracts import APPEALS
from fengqiao.runtime.signing import generic_source_env
from fengqiao.services.tracker.adapters.case_view import CASES as CASES_VIEWS
from fengqiao.services.tracker.adapters.cases import VERSIONS, MongoCaseRepository
from fengqiao.services.tracker.adapters.timers import MongoTimers, timer_key
from fengqiao.services.tracker.domain import CLOCKS, S
from fengqiao.testing import StackEndpoints
from fengqiao.testing.drill import start_groups_at_end
from fengqiao.testing.plugin import SOURCE, BackgroundWatcher, FengqiaoServices

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import seed as seeding

CASES = 200


@pytest.fixture
def env(stack_endpoints: StackEndpoints, run_id: str) -> Iterator[dict[str, str]]:
    """The stack, and databases of this test's own for the three services seeded."""
    names = {
        f"FENGQIAO_{part.upper()}_DATABASE": f"itest_seed_{run_id}_{part}" for part in seeding.PARTS
    }
    env = {**stack_endpoints.env(), **names}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

        async def drop() -> None:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["FENGQIAO_MONGO_URI"])
            for database in names.values():
                await client.drop_database(database)
            await client.close()

        asyncio.run(drop())


async def read_back(env: dict[str, str]) -> dict[str, Any]:
    """What the tracker's own repositories read of the seeded cases."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        env["FENGQIAO_MONGO_URI"], tz_aware=True
    )
    database = env["FENGQIAO_TRACKER_DATABASE"]
    try:
        repo, timers = MongoCaseRepository(client, database), MongoTimers(client, database)
        ids = [seeding.case_id(1, i) for i in range(0, CASES, 37)]
        cases = [await repo.get(case_id) for case_id in ids]
        views = await repo.views(ids)
        live = [
            key
            for case_id in ids
            for key in (timer_key(case_id, clock.value) for clock in CLOCKS)
            if await timers.get(key) is not None
        ]
        first = await client[database][VERSIONS].find_one({"_id": f"{ids[0]}:00000001"})
        return {"cases": cases, "views": views, "live_timers": live, "first_version": first}
    finally:
        await client.close()


def stats(env: dict[str, str]) -> dict[str, Any]:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=120)).date().isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "fengqiao.cli", "stats", "--since", since, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def fleet(env: dict[str, str], tmp_path: Path, stack_endpoints: StackEndpoints) -> Iterator[Any]:
    """The services as processes on the seeded databases."""
    secret = "seed-" + uuid.uuid4().hex
    ports = processes.free_ports()
    fleet_env = {
        **env,
        **generic_source_env(SOURCE, secret),
        **processes.simulator_env(ports["simulator"]),
    }
    # What earlier tests left on the shared topics is not this fleet's (as bench/e2e.py does).
    asyncio.run(start_groups_at_end(stack_endpoints.kafka_bootstrap))
    watcher = BackgroundWatcher(stack_endpoints.kafka_bootstrap, [APPEALS.name])
    services = ("intake", "router", "tracker", "notifier")
    try:
        with processes.running(
            fleet_env, log_dir=tmp_path / "logs", services=services, ports=ports
        ) as running:
            urls = {name: member.url for name, member in running.members.items()}
            yield FengqiaoServices(
                stack_endpoints, urls, SOURCE, secret, tmp_path / "logs", 120.0, watcher
            )
    finally:
        watcher.close()


async def views_stored(env: dict[str, str]) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["FENGQIAO_MONGO_URI"])
    try:
        return await client[env["FENGQIAO_TRACKER_DATABASE"]][CASES_VIEWS].count_documents({})
    finally:
        await client.close()


def test_seeded_cases_read_as_closed_cases(env: dict[str, str]) -> None:
    cases, written = asyncio.run(seeding.seed(cases=CASES, seed=1, chunk=100))
    assert cases == CASES and written > CASES * 30  # versions, timers, replies, views...
    assert asyncio.run(seeding.seed(cases=CASES, seed=1, chunk=100)) == (CASES, 0)  # resumed

    read = asyncio.run(read_back(env))
    assert all(c is not None and c.state is S.CLOSED for c in read["cases"])
    assert all(not c.outbox and not c.effects and c.satisfaction for c in read["cases"])
    assert [v["state"] for v in read["views"]] == ["closed"] * len(read["cases"])
    assert read["live_timers"] == []  # every clock done or cancelled
    assert read["first_version"] == {
        "_id": f"{seeding.case_id(1, 0)}:00000001",
        "case_id": seeding.case_id(1, 0),
        "version": 1,
        "stub": 1,
    }
    report = stats(env)
    assert report["total"]["volume"] == CASES
    assert report["total"]["satisfaction_rate"] == 1.0


def test_a_new_appeal_flows_on_a_seeded_store(env: dict[str, str], fleet: Any) -> None:
    asyncio.run(seeding.seed(cases=CASES, seed=1, chunk=100))
    services: FengqiaoServices = fleet
    seeded = asyncio.run(read_back(env))["cases"][0]
    token = services.token_for(seeded.assigned_unit, "handler")
    with httpx.Client(base_url=services.url("tracker"), timeout=30) as http:
        listed = http.get("/units/me/cases", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, listed.text
    assert seeded.case_id in [c["case_id"] for c in listed.json()]

    appeal = services.post_appeal("@新疆检察 博乐市的工地拖欠我们工资三个月了，求助")
    case = services.wait_for_case(appeal, where=lambda c: c["acknowledged"], timeout=120)
    assert case["chain"] == ["xj", "652700", "652701"] and case["state"] != "closed"
    # The stack's topics are shared by the tests: an appeal another test left unconsumed on
    # `appeals` may open a case here too. So: every case of the store is counted, ours among them.
    counted = stats(env)["total"]["volume"]
    assert counted >= CASES + 1 <= asyncio.run(views_stored(env))
