"""The Weibo push nonces seen within the replay window, so a captured push URL is taken once.

Weibo signs only `timestamp` and `nonce` (not the body), so whoever sees a push URL (a proxy's
access log keeps query strings) could send it again with any body until its timestamp goes
stale. Each push therefore claims `<account>:<timestamp>:<nonce>`: an insert against the unique
`_id` of `weibo_push_nonces`, the one compare-and-set FerretDB applies atomically
(`fengqiao.runtime.store.inserts`; written in groups by `GroupInsert`, one round trip for many
pushes). The first claim wins; every later one is a replay. A document is kept until the
timestamp it holds is stale (`expires_at`), then pruned: FerretDB has no TTL indexes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from pymongo import ASCENDING, AsyncMongoClient

from fengqiao.runtime.clock import Clock
from fengqiao.runtime.store import GroupInsert
from fengqiao.services.intake.adapters import pruning

__all__ = [
    "NONCES",
    "InMemoryPushNonces",
    "MongoPushNonces",
    "NoncePruner",
    "NoncesUnavailable",
    "PushNonces",
]

log = logging.getLogger("fengqiao.intake.nonces")

NONCES = "weibo_push_nonces"


class NoncesUnavailable(Exception):
    """Whether the nonce was seen is unknown (the store did not answer in time): the push must be
    answered 503 so Weibo sends it again, never taken unchecked."""


class PushNonces(Protocol):
    async def claim(self, key: str, expires_at: datetime) -> bool:
        """True for the first claim of `key`, False for every later one (a replay); raises
        NoncesUnavailable when the store cannot tell."""

    async def release(self, key: str) -> None:
        """Forget `key`, best effort: the push it carried was not stored (Kafka did not
        acknowledge), so the platform's re-send of the same URL must be taken."""

    async def prune(self, before: datetime) -> int:
        """Forget the nonces whose timestamps were stale before `before`; how many."""


class MongoPushNonces:
    """The nonces in intake's database, one document per push: `{_id, expires_at}`."""

    def __init__(
        self, client: AsyncMongoClient[dict[str, Any]], database: str, *, timeout: float = 1.5
    ) -> None:
        db = client[database]
        self._collection = db[NONCES]
        self._inserts = GroupInsert(db)
        # Weibo re-sends after 5 s: the claim and Kafka's acknowledgment (3 s) must fit in that.
        self._timeout = timeout
        self._late: dict[str, asyncio.Future[bool]] = {}  # claims answered 503, still in flight
        self._releasing: dict[str, asyncio.Future[None]] = {}  # late claims being undone

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("expires_at", ASCENDING)])

    async def claim(self, key: str, expires_at: datetime) -> bool:
        if (undoing := self._releasing.get(key)) is not None:
            await asyncio.wait({undoing}, timeout=self._timeout)
        insert = self._late.pop(key, None)  # a re-send of a push answered 503: it adopts it
        if insert is None:
            insert = asyncio.ensure_future(
                self._inserts.insert(NONCES, {"_id": key, "expires_at": expires_at})
            )
        try:
            # shield: a timed-out insert keeps running, and is undone if it lands after all
            return await asyncio.wait_for(asyncio.shield(insert), self._timeout)
        except TimeoutError as exc:
            self._late[key] = insert
            insert.add_done_callback(self._undo_late_claim(key))
            raise NoncesUnavailable(f"the store did not answer within {self._timeout} s") from exc
        except Exception as exc:
            raise NoncesUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _undo_late_claim(self, key: str) -> Any:
        """A claim answered 503 but written after all would refuse Weibo's re-send of the same
        URL: released once it lands, unless a re-send to this replica adopted it meanwhile."""

        def landed(insert: asyncio.Future[bool]) -> None:
            if self._late.get(key) is not insert:
                return  # adopted by a re-send (or a newer claim's)
            del self._late[key]
            if not insert.cancelled() and insert.exception() is None and insert.result():
                task = asyncio.ensure_future(self.release(key))
                self._releasing[key] = task
                task.add_done_callback(lambda _: self._releasing.pop(key, None))

        return landed

    async def release(self, key: str) -> None:
        try:
            await asyncio.wait_for(self._collection.delete_one({"_id": key}), self._timeout)
        except Exception as exc:
            log.warning("could not release the push nonce %s: %s: %s", key, type(exc).__name__, exc)

    async def prune(self, before: datetime) -> int:
        result = await self._collection.delete_many({"expires_at": {"$lt": before}})
        return int(result.deleted_count)


class InMemoryPushNonces:
    """The fake for tests: a dict; `fail` makes every claim raise NoncesUnavailable."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime] = {}
        self.fail = False

    async def claim(self, key: str, expires_at: datetime) -> bool:
        if self.fail:
            raise NoncesUnavailable("in-memory nonces set to fail")
        if key in self.seen:
            return False
        self.seen[key] = expires_at
        return True

    async def release(self, key: str) -> None:
        self.seen.pop(key, None)

    async def prune(self, before: datetime) -> int:
        stale = [k for k, expires_at in self.seen.items() if expires_at < before]
        for key in stale:
            del self.seen[key]
        return len(stale)


class NoncePruner(pruning.Pruner):
    """Forgets stale nonces at start and every `interval_seconds` (`pruning.Pruner`)."""

    # Replicas' clocks differ a little: keep a nonce this much past its staleness.
    MARGIN = timedelta(minutes=1)
    WHAT = "Weibo push nonces"
    METRIC = "fengqiao_intake_weibo_push_nonces_pruned_total"
    HELP = "Weibo push nonces forgotten once their timestamps were stale"

    def __init__(
        self,
        nonces: PushNonces,
        clock: Clock,
        *,
        interval_seconds: float,
        registry: CollectorRegistry,
    ) -> None:
        super().__init__(
            nonces, clock, keep=self.MARGIN, interval_seconds=interval_seconds, registry=registry
        )
