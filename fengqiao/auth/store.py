"""Where local accounts live: people, API tokens and sessions, in a database every service
reads (`fengqiao_auth` by default), or in memory for the hermetic service tests.

Three collections, each keyed by `_id`:

- `people`: `_id` the username; name, unit_id, roles, password (an argon2id hash), disabled;
- `tokens`: `_id` the SHA-256 of an API token (the token itself is never stored); person,
  token_id (the public half, for listing and revoking), expires_at, revoked_at;
- `sessions`: `_id` the SHA-256 of a session cookie; person, expires_at.

A new person, token or session is an insert against the unique `_id`: FerretDB's only reliable
compare-and-set (docs/store.md), so two admins adding the same username cannot both win.
A store that does not answer raises its `PyMongoError`: the services answer 503 with
Retry-After (never a 500, never "let in").
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from fengqiao.runtime.store import insert_new

Doc = dict[str, Any]
PEOPLE, TOKENS, SESSIONS = "people", "tokens", "sessions"
DEFAULT_DATABASE = "fengqiao_auth"


class AuthStore(Protocol):
    """The few operations accounts need, over MongoDB or memory."""

    async def insert(self, collection: str, doc: Doc) -> bool:
        """False when a document with its `_id` exists already (nothing written)."""

    async def get(self, collection: str, doc_id: str) -> Doc | None: ...

    async def update(self, collection: str, doc_id: str, fields: Doc) -> bool:
        """Set `fields` on one document; False when there is none."""

    async def delete(self, collection: str, doc_id: str) -> bool: ...

    async def find(self, collection: str, where: Doc) -> list[Doc]:
        """The documents whose fields equal `where`'s, by `_id`."""


class MongoAuthStore:
    def __init__(self, client: AsyncMongoClient[Doc], database: str = DEFAULT_DATABASE) -> None:
        self.db = client[database]

    async def ensure_indexes(self) -> None:
        await self.db[TOKENS].create_index([("token_id", 1)])
        await self.db[TOKENS].create_index([("person", 1)])

    async def insert(self, collection: str, doc: Doc) -> bool:
        return not await insert_new(self.db[collection], [doc])

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        return await self.db[collection].find_one({"_id": doc_id})

    async def update(self, collection: str, doc_id: str, fields: Doc) -> bool:
        result = await self.db[collection].update_one({"_id": doc_id}, {"$set": fields})
        return result.matched_count == 1

    async def delete(self, collection: str, doc_id: str) -> bool:
        result = await self.db[collection].delete_one({"_id": doc_id})
        return result.deleted_count == 1

    async def find(self, collection: str, where: Doc) -> list[Doc]:
        return [doc async for doc in self.db[collection].find(where).sort("_id", 1)]


class MemoryAuthStore:
    """The same in a process's memory (service tests, the in-process harness)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Doc]] = {}
        self.down = False  # set to act as a store that does not answer

    def _docs(self, collection: str) -> dict[str, Doc]:
        if self.down:
            from pymongo.errors import ServerSelectionTimeoutError

            raise ServerSelectionTimeoutError("the auth store is down (MemoryAuthStore.down)")
        return self.collections.setdefault(collection, {})

    async def insert(self, collection: str, doc: Doc) -> bool:
        docs = self._docs(collection)
        if doc["_id"] in docs:
            return False
        docs[doc["_id"]] = copy.deepcopy(doc)
        return True

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        doc = self._docs(collection).get(doc_id)
        return copy.deepcopy(doc) if doc is not None else None

    async def update(self, collection: str, doc_id: str, fields: Doc) -> bool:
        doc = self._docs(collection).get(doc_id)
        if doc is None:
            return False
        doc.update(copy.deepcopy(fields))
        return True

    async def delete(self, collection: str, doc_id: str) -> bool:
        return self._docs(collection).pop(doc_id, None) is not None

    async def find(self, collection: str, where: Doc) -> list[Doc]:
        docs = self._docs(collection)
        return [
            copy.deepcopy(doc)
            for _, doc in sorted(docs.items())
            if all(doc.get(k) == v for k, v in where.items())
        ]
