"""`fengqiao ops dlq list|show|replay|purge`: dead letters read from the `.dlq` topics, with
what was done about each recorded in MongoDB (`fengqiao.ops.dlq` holds the rules)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console
from rich.table import Table

from fengqiao.ops import Unreachable, dlq, print_json, redacted
from fengqiao.ops.kafka import Cluster, connect, fengqiao_topics
from fengqiao.runtime.kafka_security import kafka_options
from fengqiao.runtime.settings import StackSettings

__all__ = ["ActionStoreSession", "dead_letters", "dlq_list", "dlq_purge", "dlq_replay", "dlq_show"]


async def _entries(cluster: Cluster, store: dlq.ActionStore) -> list[dlq.Entry]:
    dlq_topics = [n for n in fengqiao_topics() if n.endswith(".dlq")]
    entries, unreadable = dlq.collect([r async for r in cluster.read(dlq_topics)])
    for line in unreadable:
        print(f"fengqiao ops: skipped {line}", file=sys.stderr)
    return await dlq.with_status(entries, store)


class ActionStoreSession:
    """The Mongo action store, opened and closed around a command."""

    def __init__(self, settings: StackSettings) -> None:
        from pymongo import AsyncMongoClient

        self.uri = settings.mongo_uri
        self.client: Any = AsyncMongoClient(
            settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000, appname="ops"
        )

    async def __aenter__(self) -> dlq.MongoActionStore:
        from pymongo.errors import PyMongoError

        try:
            await self.client.admin.command("ping")
        except PyMongoError as exc:
            await self.client.close()
            reason = str(exc).split(" (configured", 1)[0][:200]
            raise Unreachable(
                f"MongoDB at {redacted(self.uri)} does not answer ({reason})"
            ) from exc
        return dlq.MongoActionStore(self.client)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


@contextlib.asynccontextmanager
async def dead_letters(
    args: argparse.Namespace, settings: StackSettings
) -> AsyncIterator[tuple[dlq.MongoActionStore, list[dlq.Entry]]]:
    """The action store, open, and the dead letters with their status, for one command."""
    async with (
        connect(
            settings.kafka_bootstrap, timeout=args.timeout, security=settings.kafka_security()
        ) as cluster,
        ActionStoreSession(settings) as store,
    ):
        yield store, await _entries(cluster, store)


async def dlq_list(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (_, entries):
        shown = [e for e in entries if args.all or e.status == "new"]
    if args.json:
        print_json([e.summary() for e in shown])
        return 0
    table = Table(title=f"dead letters ({len(shown)} of {len(entries)})")
    table.add_column("id", no_wrap=True)
    for column in ("status", "failed in", "error", "first at"):
        table.add_column(column, overflow="fold")
    for e in shown:
        s = e.summary()
        error = f"{s['error_type']}: {s['error']}"
        table.add_row(
            e.id,
            e.status,
            ", ".join(e.consumers),
            error[:160],
            e.first_at.strftime("%m-%d %H:%M:%S"),
        )
    console.print(table)
    return 0


async def dlq_show(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (_, entries):
        entry = dlq.find(entries, args.id)
    detail = entry.detail()
    if args.json:
        print_json(detail)
        return 0
    origin = detail["origin"]
    console.print(f"[bold]{entry.id}[/] ({entry.status})")
    console.print(
        f"origin  {origin['topic']} partition {origin['partition']} offset {origin['offset']}"
        f" key {origin['key']}"
    )
    console.print(f"failed in {', '.join(entry.consumers)}: {detail['error_type']}")
    console.print(f"error   {detail['error']}", markup=False)
    console.print(f"letters {', '.join(entry.letters)}")
    if entry.action:
        console.print(f"action  {json.dumps(entry.action, ensure_ascii=False, default=str)}")
    console.print("payload (private data masked):")
    console.print(_pretty(detail["payload"]), markup=False)
    return 0


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, indent=2)
    except ValueError:
        return payload


async def replay_each(
    settings: StackSettings, store: dlq.ActionStore, chosen: list[dlq.Entry]
) -> list[dict[str, Any]]:
    """Replay each chosen dead letter once (`dlq.replay`) through one producer; their outcomes."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **kafka_options(settings.kafka_bootstrap, settings.kafka_security()),
        client_id="fengqiao-ops",
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        publish = dlq.kafka_publisher(producer)
        return [await dlq.replay(e, store, publish) for e in chosen]
    finally:
        await producer.stop()


async def dlq_replay(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (store, entries):
        chosen = (
            [e for e in entries if e.status == "new"] if args.all else [dlq.find(entries, args.id)]
        )
        outcomes = await replay_each(settings, store, chosen)
    if args.json:
        print_json(outcomes)
    else:
        for o in outcomes:
            where = f" → {o['topic']}:{o['partition']}:{o['offset']}" if "offset" in o else ""
            console.print(f"{o['id']}: {o['outcome']}{where}")
        if not outcomes:
            console.print("no new dead letters")
    return 0


async def dlq_purge(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with dead_letters(args, settings) as (store, entries):
        entry = dlq.find(entries, args.id)
        outcome = await dlq.purge(entry, store, reason=args.reason)
    if args.json:
        print_json(outcome)
    else:
        console.print(f"{outcome['id']}: {outcome['outcome']}")
    return 0
