"""How far the Weibo pollers have read each account's endpoints, kept across restarts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pymongo import AsyncMongoClient

COLLECTION = "poll_cursors"


@dataclass(frozen=True)
class Cursor:
    """How far one endpoint of one account has been read.

    Everything up to `since_id` is in `posts.raw`. Weibo answers newest first, so a backlog
    larger than one poll's pages is read downwards over several polls: `max_id` is where the
    next page starts and `top_id` the newest id already stored, which becomes `since_id` once
    the backlog is read down to the old `since_id`.
    """

    since_id: int = 0
    max_id: int | None = None
    top_id: int | None = None


class CursorStore(Protocol):
    async def load(self, account: str, endpoint: str) -> Cursor:
        """The cursor of `endpoint` of `account`; a fresh one if it was never saved."""

    async def save(self, account: str, endpoint: str, cursor: Cursor) -> None:
        """Keep `cursor` durably (raises on failure)."""


def _key(account: str, endpoint: str) -> str:
    return f"{account}|{endpoint}"


class MongoCursorStore:
    """One document per (account, endpoint) in intake's `poll_cursors` collection."""

    def __init__(self, client: AsyncMongoClient[dict[str, Any]], database: str) -> None:
        self._docs = client[database][COLLECTION]

    async def load(self, account: str, endpoint: str) -> Cursor:
        doc = await self._docs.find_one({"_id": _key(account, endpoint)})
        if doc is None:
            return Cursor()
        return Cursor(since_id=doc["since_id"], max_id=doc.get("max_id"), top_id=doc.get("top_id"))

    async def save(self, account: str, endpoint: str, cursor: Cursor) -> None:
        # A plain replace: one poller owns a cursor, so there is no concurrent writer to guard.
        await self._docs.replace_one(
            {"_id": _key(account, endpoint)},
            {"account": account, "endpoint": endpoint, **asdict(cursor)},
            upsert=True,
        )


class InMemoryCursorStore:
    """A fake for tests: the cursors in a dict; can be made to fail."""

    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], Cursor] = {}
        self.fail = False

    async def load(self, account: str, endpoint: str) -> Cursor:
        return self.cursors.get((account, endpoint), Cursor())

    async def save(self, account: str, endpoint: str, cursor: Cursor) -> None:
        if self.fail:
            raise ConnectionError("in-memory cursor store set to fail")
        self.cursors[account, endpoint] = cursor
