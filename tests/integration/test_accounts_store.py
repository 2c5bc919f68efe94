"""Local accounts on the real MongoDB/FerretDB: of many admins adding one username at once
exactly one wins (an insert against the unique `_id`); tokens and sessions read back, expire,
are revoked; and `fengqiao users` does it from the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fengqiao.auth.accounts import AccountError, Accounts, AccountSettings
from fengqiao.auth.identity import Unauthenticated
from fengqiao.auth.store import MongoAuthStore
from fengqiao.runtime.settings import StackSettings

PASSWORD = "a long enough password"


@pytest.fixture
async def accounts(stack: StackSettings, run_id: str) -> AsyncIterator[Accounts]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_uri, tz_aware=True)
    store = MongoAuthStore(client, f"itest_auth_{run_id}")
    await store.ensure_indexes()
    yield Accounts(store, AccountSettings(cache_seconds=0))
    await client.drop_database(f"itest_auth_{run_id}")
    await client.close()


async def test_of_ten_admins_adding_one_username_exactly_one_wins(accounts: Accounts) -> None:
    async def add(n: int) -> bool:
        try:
            await accounts.add(
                "li.wei", name=f"李伟{n}", unit_id="xj", roles=["dispatcher"], password=PASSWORD
            )
        except AccountError:
            return False
        return True

    won = await asyncio.gather(*(add(n) for n in range(10)))
    assert sum(won) == 1
    assert len(await accounts.people()) == 1


async def test_tokens_and_sessions_on_the_real_store(accounts: Accounts) -> None:
    await accounts.add("li.wei", name="李伟", unit_id="xj", roles=["dispatcher"], password=PASSWORD)
    issued = await accounts.issue_token("li.wei", days=1)
    assert (await accounts.verify_token(issued.token)).unit_id == "xj"
    await accounts.revoke(issued.token_id)
    with pytest.raises(Unauthenticated):
        await accounts.verify_token(issued.token)
    cookie, _ = await accounts.login("li.wei", PASSWORD)
    assert (await accounts.session(cookie)).via == "session"
    await accounts.logout(cookie)
    with pytest.raises(Unauthenticated):
        await accounts.session(cookie)


def test_the_users_command(stack: StackSettings, run_id: str) -> None:
    env = {**os.environ, "FENGQIAO_MONGO_URI": stack.mongo_uri,
           "FENGQIAO_AUTH_DATABASE": f"itest_auth_cli_{run_id}"}  # fmt: skip

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fengqiao.cli", "users", *args],
            input=stdin, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    added = users(*("add", "ma.lan", "--name", "马兰", "--unit", "652701"),
                  *("--roles", "handler", "--password-stdin"), stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    again = users("add", "ma.lan", "--name", "x", "--unit", "652701", "--roles", "handler",
                  "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 1 and "exists already" in again.stderr
    token = users("token", "ma.lan", "--days", "2")
    assert token.returncode == 0 and token.stdout.startswith("fq_")
    token_id = token.stdout.strip().split("_")[1]
    assert users("revoke", token_id).returncode == 0
    assert "revoked" in users("tokens", "ma.lan").stdout
    assert users("disable", "ma.lan").returncode == 0
    assert "disabled" in users("list").stdout
    subprocess.run([sys.executable, "-c", _DROP], env=env, check=True, timeout=60)


_DROP = """
import os
from pymongo import MongoClient
MongoClient(os.environ["FENGQIAO_MONGO_URI"]).drop_database(os.environ["FENGQIAO_AUTH_DATABASE"])
"""
