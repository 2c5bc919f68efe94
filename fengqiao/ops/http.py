"""Dead letters over HTTP, for operators (role `ops`, issue 19): list them with counts per topic
and status, show one, replay one once, purge one with a reason. It is `fengqiao ops dlq` as an
authorized API, for the workbench's 运维 page: the same rules (`fengqiao.ops.dlq`: letters
grouped by origin, private data masked), the same claims (an insert of `replay:<id>` or
`purge:<id>` in `fengqiao_ops.dlq_actions`, so of two operators, or an operator and the command
line, exactly one replays), and the same publish (the original bytes and key to the origin
topic with the `fengqiao-replay-of` header; a replayed public reply meets the notifier's
reconciliation like one replayed from the shell). Who acted is the calling person, never the
body.

Hosted by the router (`services/router/app.py`), with the router's runtime: its producer
(acks=all, idempotent) publishes the replays, its Kafka bootstrap is where the `.dlq` topics
are read, its store client holds the claims. Why the router: it already serves the operators'
routes (reassign, returns) and has both a broker and a store; its HTTP loop is quiet, whereas
the tracker's serves every office's unit API and the workbench's pages (a listing reads every
`.dlq` topic, bounded, and may take seconds); and the notifier, whose messages a replay may
carry, is better not the one that publishes them to itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from aiokafka import ConsumerRecord
from fastapi import APIRouter, HTTPException, Query
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Identity
from fengqiao.ops import dlq
from fengqiao.ops.kafka import connect, fengqiao_topics
from fengqiao.runtime.errors import refusals

Source = Callable[[], AsyncIterator[ConsumerRecord[bytes, bytes]]]
Status = Literal["new", "replayed", "purged", "all"]


class Purge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="Why it is dropped.")


def kafka_source(
    bootstrap: str, *, timeout: float = 10.0, security: BaseSecurity | None = None
) -> Source:
    """Every record of the `.dlq` topics up to their current ends (read anew on each call)."""
    topics = [n for n in fengqiao_topics() if n.endswith(".dlq")]

    async def read() -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
        async with connect(bootstrap, timeout=timeout, security=security) as cluster:
            async for record in cluster.read(topics):
                yield record

    return read


def broker_publisher(broker: KafkaBroker) -> dlq.Publisher:
    """`dlq.Publisher` through a service's broker: where the replay landed."""

    async def publish(
        topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        sent = await broker.publish(
            value, topic=topic, key=key, headers={k: v.decode() for k, v in headers}
        )
        return sent.partition, sent.offset

    return publish


def counts(entries: list[dlq.Entry]) -> dict[str, dict[str, int]]:
    """Dead letters per origin topic and status: {"appeals": {"new": 2, "replayed": 1}}."""
    tally = Counter((e.origin_topic, e.status) for e in entries)
    found: dict[str, dict[str, int]] = {}
    for (topic, status), n in sorted(tally.items()):
        found.setdefault(topic, {})[status] = n
    return found


def dead_letter_router(
    source: Source, store: dlq.ActionStore, publish: dlq.Publisher, *, caller: Any
) -> APIRouter:
    """`caller`: the guard's dependency that names the calling person (policy: `ops` only)."""
    router = APIRouter(prefix="/ops/dead-letters", tags=["dead letters"])

    async def entries() -> list[dlq.Entry]:
        found, _ = dlq.collect([r async for r in source()])
        return await dlq.with_status(found, store)

    async def entry(letter_id: str) -> dlq.Entry:
        try:
            return dlq.find(await entries(), letter_id)
        except dlq.DeadLetterError as exc:
            raise HTTPException(404, f"no dead letter {letter_id!r}") from exc

    @router.get("", summary="Dead letters, with counts per topic and status")
    async def listing(
        status: Annotated[Status, Query()] = "all",
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        who: Identity = caller,
    ) -> dict[str, Any]:
        found = await entries()
        shown = [e for e in found if status == "all" or e.status == status]
        return {
            "counts": counts(found),
            "total": len(found),
            "dead_letters": [e.summary() for e in reversed(shown)][:limit],  # newest first
        }

    @router.get(
        "/{letter_id}", summary="One dead letter, its payload masked", responses=refusals(404)
    )
    async def show(letter_id: str, who: Identity = caller) -> dict[str, Any]:
        return (await entry(letter_id)).detail()

    _decisions(router, entry, store, publish, caller)
    return router


def _decisions(
    router: APIRouter,
    entry: Callable[[str], Awaitable[dlq.Entry]],
    store: dlq.ActionStore,
    publish: dlq.Publisher,
    caller: Any,
) -> None:
    """Replaying and purging one dead letter, each once (409 after that, or after the other)."""

    @router.post(
        "/{letter_id}/replay",
        summary="Publish it to its origin topic, once",
        responses=refusals(404, 409),
    )
    async def replay(letter_id: str, who: Identity = caller) -> dict[str, Any]:
        found = await entry(letter_id)
        try:
            outcome = await dlq.replay(found, store, publish, by=who.person)
        except dlq.DeadLetterError as exc:  # purged
            raise HTTPException(409, str(exc)) from exc
        if outcome["outcome"] != "replayed":
            by, at = outcome.get("by", "?"), outcome.get("at", "?")
            raise HTTPException(409, f"dead letter {found.id} was replayed already ({by}, {at})")
        return outcome

    @router.post(
        "/{letter_id}/purge",
        summary="Drop it, with a reason: it is not replayed",
        responses=refusals(404, 409),
    )
    async def purge(letter_id: str, body: Purge, who: Identity = caller) -> dict[str, Any]:
        found = await entry(letter_id)
        outcome = await dlq.purge(found, store, reason=body.reason, by=who.person)
        if outcome["outcome"] != "purged":
            raise HTTPException(409, f"dead letter {found.id} was purged already")
        return outcome
