"""`fengqiao ops …`: the operator's commands, against the cluster the settings name
(`FENGQIAO_KAFKA_BOOTSTRAP`, and `FENGQIAO_MONGO_URI` for what `dlq` records).

Exit codes: 0 done; 1 refused, or `lag --threshold` exceeded; 2 the cluster or store does not
answer (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from fengqiao.ops import Refused, Unreachable, print_json, redacted, scrape
from fengqiao.ops import cases as case_search
from fengqiao.ops.dlq_commands import dlq_list, dlq_purge, dlq_replay, dlq_show
from fengqiao.ops.kafka import Cluster, GroupLag, connect, decode, fengqiao_topics
from fengqiao.ops.replies import replies_list, replies_retry
from fengqiao.runtime.settings import StackSettings

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2


PIPED_WIDTH = 10_000  # a table piped to a file or `grep` is never cut or wrapped


def output_console() -> Console:
    """Rich on a terminal; piped, plain text at the table's full width (Rich would cut it to 80
    columns, `partiti…`)."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPED_WIDTH, no_color=True, highlight=False)


def run(args: argparse.Namespace) -> int:
    """Run the chosen ops command; errors become one line on stderr and an exit code."""
    settings = StackSettings()
    command = COMMANDS[args.ops_action]
    console = output_console()
    # aiokafka logs each failed connection attempt; the one line below says it instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(command(args, settings, console))
    except Unreachable as exc:
        print(f"fengqiao ops: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except Refused as exc:
        print(f"fengqiao ops: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `fengqiao ops … | head`: the reader has seen enough
        sys.stderr.close()
        return 0
    except Exception as exc:
        if _is_unreachable(exc):
            where = f"Kafka at {settings.kafka_bootstrap}"
            if type(exc).__module__.startswith("pymongo"):
                where = f"MongoDB at {redacted(settings.mongo_uri)}"
            print(f"fengqiao ops: {where} does not answer ({exc})"[:500], file=sys.stderr)
            return EXIT_UNREACHABLE
        raise


def _is_unreachable(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
    from pymongo.errors import ConnectionFailure

    return isinstance(
        exc,
        KafkaConnectionError
        | KafkaTimeoutError
        | NodeNotReadyError
        | ConnectionFailure
        | TimeoutError
        | ConnectionError
        | socket.gaierror,
    )


# --------------------------------------------------------------------------- topics


async def _topics(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with connect(
        settings.kafka_bootstrap, timeout=args.timeout, security=settings.kafka_security()
    ) as cluster:
        stats = await cluster.topic_stats(fengqiao_topics(), interval=args.interval)
    if args.json:
        print_json(
            [
                {
                    "topic": s.name,
                    "partitions": s.partitions,
                    "end_offsets": s.end_offsets,
                    "end": s.end,
                    "messages": s.messages,
                    "messages_per_second": s.rate,
                    "retention_ms": s.retention_ms,
                }
                for s in stats
            ]
        )
        return 0
    table = Table(title=f"fengqiao topics on {settings.kafka_bootstrap}")
    table.add_column("topic", no_wrap=True)
    for column in ("partitions", "end offset", "held", f"msg/s ({args.interval:g} s)"):
        table.add_column(column, justify="right")
    table.add_column("retention", justify="right")
    for s in stats:
        rate = f"{s.rate:.1f}" if s.rate is not None else "-"
        table.add_row(
            s.name, str(s.partitions), str(s.end), str(s.messages), rate, _span(s.retention_ms)
        )
    console.print(table)
    return 0


def _span(ms: int | None) -> str:
    if ms is None:
        return "?"
    if ms < 0:
        return "forever"
    hours = ms / 3_600_000
    return f"{hours / 24:g} d" if hours >= 24 else f"{hours:g} h"


# --------------------------------------------------------------------------- lag


async def _lag(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    async with connect(
        settings.kafka_bootstrap, timeout=args.timeout, security=settings.kafka_security()
    ) as cluster:
        if args.watch:
            return await _watch_lag(cluster, args, console)
        lags = await cluster.group_lags()
    over = _over(lags, args.threshold)
    if args.json:
        print_json({"groups": [_lag_dict(g) for g in lags], "over_threshold": over})
    else:
        console.print(_lag_table(lags, args.threshold, settings.kafka_bootstrap))
        if over:
            console.print(f"[red]over the threshold of {args.threshold}: {', '.join(over)}[/]")
    return EXIT_REFUSED if over else 0


def _over(lags: list[GroupLag], threshold: int | None) -> list[str]:
    return [g.group for g in lags if threshold is not None and g.total > threshold]


def _lag_dict(g: GroupLag) -> dict[str, Any]:
    return {
        "group": g.group,
        "service": g.service,
        "topic": g.topic,
        "state": g.state,
        "total": g.total,
        "partitions": [
            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
            for p in g.partitions
        ],
    }


def _lag_table(lags: list[GroupLag], threshold: int | None, where: str) -> Table:
    table = Table(title=f"consumer lag on {where} at {time.strftime('%H:%M:%S')}")
    table.add_column("group")
    table.add_column("state")
    table.add_column("lag by partition")
    table.add_column("total", justify="right")
    for g in lags:
        style = "red" if threshold is not None and g.total > threshold else None
        parts = " ".join(f"{p.partition}:{p.lag}" for p in g.partitions)
        table.add_row(g.group, g.state, parts, str(g.total), style=style)
    if not lags:
        table.caption = "no service consumer group yet (no service has started on this cluster)"
    return table


async def _watch_lag(cluster: Cluster, args: argparse.Namespace, console: Console) -> int:
    where = cluster.bootstrap
    if args.json:  # one JSON document per line and refresh
        while True:
            lags = await cluster.group_lags()
            print(json.dumps([_lag_dict(g) for g in lags], ensure_ascii=False), flush=True)
            await asyncio.sleep(args.interval)
    with Live(console=console, auto_refresh=False) as live:
        while True:
            lags = await cluster.group_lags()
            live.update(_lag_table(lags, args.threshold, where), refresh=True)
            await asyncio.sleep(args.interval)


# --------------------------------------------------------------------------- cases


async def _cases(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    if args.store:  # the tracker's views of the cases (docs/store.md)
        found_in_store = await case_search.stored(
            settings, args.query, by=args.by, limit=args.limit
        )
        if args.json:
            print_json(found_in_store)
        for table in [] if args.json else case_search.tables(found_in_store):
            console.print(table)
        return 0 if found_in_store else EXIT_REFUSED
    since = int((time.time() - args.days * 86400) * 1000)
    async with connect(
        settings.kafka_bootstrap, timeout=args.timeout, security=settings.kafka_security()
    ) as cluster:
        messages = []
        async for record in cluster.read(case_search.CASE_TOPIC_NAMES, since_ms=since):
            message = decode(record)
            if message is not None:
                messages.append((record.topic, message))
    found = case_search.timelines(messages, args.query, by=args.by, limit=args.limit)
    if args.json:
        print_json([t.as_dict() for t in found])
        return 0 if found else EXIT_REFUSED
    if not found:
        console.print(f"no case found for {args.query!r} in the last {args.days:g} days")
        return EXIT_REFUSED
    for timeline in found:
        table = Table(title=f"case {timeline.case_id}", title_justify="left")
        table.add_column("at")
        table.add_column("topic")
        table.add_column("what", overflow="fold")
        for row in timeline.as_dict()["timeline"]:
            table.add_row(row["at"][:19].replace("T", " "), row["topic"], row["summary"])
        console.print(table)
    return 0


# --------------------------------------------------------------------------- metrics


async def _metrics(args: argparse.Namespace, settings: StackSettings, console: Console) -> int:
    targets = scrape.default_targets()
    for item in args.target:
        name, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise Refused(f"--target wants NAME=http://host:port, not {item!r}")
        targets[name] = url.rstrip("/")
    summaries = await scrape.scrape(targets, timeout=min(args.timeout, 5.0))
    if args.json:
        print_json([s.as_dict() for s in summaries])
        return 0
    services = Table(title="fengqiao services")
    for column in ("service", "ready", "processed", "failed", "dead letters", "lag", "other"):
        services.add_column(column, justify="left" if column in ("service", "ready") else "right")
    topics = Table(title="subscribers")
    for column in ("service", "topic", "processed", "failed", "mean ms", "p95 ≤ ms"):
        topics.add_column(column, justify="left" if column in ("service", "topic") else "right")
    for s in summaries:
        if s.error and s.ready == "down":
            services.add_row(s.name, f"[red]down[/] {s.url}", "", "", "", "", s.error[:60])
            continue
        ready = s.ready if s.ready == "ready" else f"[red]{s.ready}[/]"
        other = ", ".join(f"{scrape.SERVICE_GAUGES[k]} {v:g}" for k, v in sorted(s.gauges.items()))
        lines = s.topics.values()
        services.add_row(
            s.name,
            ready,
            f"{sum(t.processed for t in lines):g}",
            f"{sum(t.failed for t in lines):g}",
            f"{sum(t.dead_letters for t in lines):g}",
            f"{s.lag:g}",
            other,
        )
        for topic, line in sorted(s.topics.items()):
            p95 = line.quantile(0.95)
            mean = line.total_seconds / line.count * 1000 if line.count else None
            topics.add_row(
                s.name,
                topic,
                f"{line.processed:g}",
                f"{line.failed:g}",
                f"{mean:.1f}" if mean is not None else "-",
                f"{p95 * 1000:g}" if p95 is not None and p95 != float("inf") else "-",
            )
    console.print(services)
    console.print(topics)
    return 0


Command = Callable[[argparse.Namespace, StackSettings, Console], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {
    "topics": _topics,
    "lag": _lag,
    "dlq_list": dlq_list,
    "dlq_show": dlq_show,
    "dlq_replay": dlq_replay,
    "dlq_purge": dlq_purge,
    "replies_list": replies_list,
    "replies_retry": replies_retry,
    "cases": _cases,
    "metrics": _metrics,
}
