"""`fengqiao stats` against the real store: a table, JSON, and one clear line when it is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from pymongo import AsyncMongoClient

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from tests.unit.tracker.test_case_lifecycle import T0, answer, asked


def stats(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fengqiao.cli", "stats", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_stats_reads_the_tracker_store(stack: StackSettings, run_id: str) -> None:
    database = f"itest_stats_{run_id}"
    client: AsyncMongoClient = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    try:
        repo = MongoCaseRepository(client, database)
        closed = answer(asked(), "满意")
        assert closed is not None
        for n in range(3):
            case = replace(closed, case_id=f"c-stats-{run_id}-{n}")
            assert await repo.save(case, expected_version=case.version - 1)
        await repo.flush()  # the statistics read the cases' views
        env = {
            "FENGQIAO_MONGO_URI": stack.mongo_uri,
            "FENGQIAO_TRACKER_DATABASE": database,
        }
        window = ["--since", T0.date().isoformat(), "--until", "2026-12-31"]
        result = stats(*window, "--json", env=env)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["total"]["volume"] == 3
        assert report["units"][0]["unit"] == "652701"
        assert report["units"][0]["satisfaction_rate"] == 1.0
        table = stats(*window, env=env)
        assert "652701" in table.stdout and "TOTAL" in table.stdout
        bad = stats("--since", "yesterday", env=env)
        assert bad.returncode == 2 and "cannot read date 'yesterday'" in bad.stderr
    finally:
        await client.drop_database(database)
        await client.close()
    down = stats(env={"FENGQIAO_MONGO_URI": "mongodb://127.0.0.1:9/"})
    assert down.returncode == 2
    assert down.stderr.strip().startswith("fengqiao stats: no MongoDB answers at")
    assert "Traceback" not in down.stderr
