"""People made by tools, not admins: the demo's logins and the test harness's callers.

`person_token(mongo_uri, username, ...)` adds the person to the shared auth database (or brings
them to what is given) and returns a fresh API token. It blocks; it runs its own event loop in a
thread, so synchronous code calls it even while an event loop runs (pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pymongo import AsyncMongoClient

from fengqiao.auth.accounts import Accounts, AccountSettings
from fengqiao.auth.store import MongoAuthStore


async def ensure_with_token(
    accounts: Accounts,
    username: str,
    *,
    name: str,
    unit_id: str,
    roles: Iterable[str],
    password: str | None = None,
    days: float = 1,
) -> str:
    await accounts.ensure(
        username, name=name, unit_id=unit_id, roles=roles,
        password=password or secrets.token_urlsafe(18),
    )  # fmt: skip
    return (await accounts.issue_token(username, days=days, label="seeded")).token


def person_token(mongo_uri: str, username: str, **person: Any) -> str:
    """A new API token of `username` (added or updated as `person` says): see the module."""

    async def seed() -> str:
        settings = AccountSettings()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
        try:
            store = MongoAuthStore(client, settings.database)
            await store.ensure_indexes()
            return await ensure_with_token(Accounts(store, settings), username, **person)
        finally:
            await client.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed()).result(timeout=60)
