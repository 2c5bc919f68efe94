"""Benchmark the notifier end to end: reply requests published to Kafka → the real notifier
process (outbox in the store, the Weibo client) → the platform simulator process → replies.sent.

    FENGQIAO_KAFKA_BOOTSTRAP=... FENGQIAO_MONGO_URI=... python bench/notifier.py [--replies 5000]
    ... python bench/notifier.py --limited [--replies 300 --accounts 3 --per-second 10]

Unlimited (rate limits off): publishes `--replies` acknowledgment requests (distinct cases)
as fast as the producer goes, waits for every result on replies.sent, and prints replies/s from
the first publish to the last result (target >= 500), and the machine.

`--limited`: the notifier's per-account comment budget is `--per-second` (burst 1), over
`--accounts` accounts, each with its own token; the simulator answers 429 to any token that
goes beyond the same budget over 10 s (plus the burst and 4 posts of network jitter). Prints
the throughput against the budget and checks that nothing is lost: every request sent once, no
429, no retry, no failure.

Needs a running stack (`fengqiao stack up`, or the env pointing at one). The notifier runs with a
fresh consumer group that starts at the topic's end and a fresh database (dropped afterwards);
the processes it starts are stopped, whatever happens. Its requests stay in replies.requested
and its results in replies.sent: a notifier or tracker started later with an existing group
skips them, but a group new to that stack first works through them all. Run it against a
throwaway stack (`FENGQIAO_CACHE_DIR=/tmp/bench-stack FENGQIAO_KAFKA_BOOTSTRAP=... fengqiao
stack up`), as bench/webhook.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fengqiao import processes
from fengqiao.contracts import (
    REPLIES_REQUESTED,
    REPLIES_SENT,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
)
from fengqiao.runtime.messaging import ensure_topics
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.groups import start_group_at_end
from fengqiao.watch import topic_partitions


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests(run: str, n: int, accounts: list[str]) -> list[ReplyRequested]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        case_id = f"c-{run}{i:08x}"
        account = accounts[i % len(accounts)]
        out.append(
            ReplyRequested(
                occurred_at=now,
                producer="bench",
                case_id=case_id,
                purpose=ReplyPurpose.ACKNOWLEDGMENT,
                channel=ReplyChannel.COMMENT,
                target=ReplyTarget(platform="weibo", account=account, post_id=str(10**15 + i)),
                template_id="acknowledgment",
                variables={"account": account, "case_ref": case_id[-8:]},
            )
        )
    return out


async def results_reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of replies.sent from its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found = await topic_partitions(consumer, REPLIES_SENT.name)
    partitions = [TopicPartition(REPLIES_SENT.name, p) for p in sorted(found)]
    consumer.assign(partitions)
    for tp, end in (await consumer.end_offsets(partitions)).items():
        consumer.seek(tp, end)
    return consumer


def notifier_env(
    stack: StackSettings, args: argparse.Namespace, ports: dict[str, int], accounts: list[str]
) -> dict[str, str]:
    """The notifier's settings for this run: its own group and database, the simulator."""
    return {
        "FENGQIAO_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FENGQIAO_MONGO_URI": stack.mongo_uri,
        "FENGQIAO_EXTERNAL": "1",
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{ports['simulator']}",
        "FENGQIAO_NOTIFIER_ACCESS_TOKENS": json.dumps(
            {a: f"token-{i}" for i, a in enumerate(accounts)}
        ),
        "FENGQIAO_NOTIFIER_DATABASE": f"bench_notifier_{args.run_id}",
        "FENGQIAO_NOTIFIER_GROUP_ID": f"bench-notifier-{args.run_id}",
        "FENGQIAO_NOTIFIER_RATE_LIMITS": "true" if args.limited else "false",
        "FENGQIAO_NOTIFIER_COMMENTS_PER_HOUR": str(args.per_second * 3600),
        "FENGQIAO_NOTIFIER_BURST": "1",
        "FENGQIAO_NOTIFIER_APP_PER_HOUR": str(10**9),
    }


@dataclass
class Timing:
    published: float = 0.0
    first_result: float = 0.0
    last_result: float = 0.0


async def publish_and_collect(
    bootstrap: str, batch: list[ReplyRequested], timeout: float
) -> tuple[dict[str, ReplySent], Timing]:
    """Publish the requests as fast as the producer goes; collect their results until all came
    (or `timeout` passed)."""
    keys = {r.idempotency_key for r in batch}
    sent: dict[str, ReplySent] = {}
    timing = Timing()
    reader = await results_reader(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(
                REPLIES_REQUESTED.name, r.model_dump_json().encode(), key=r.kafka_key().encode()
            )
            for r in batch
        ]
        await asyncio.gather(*futures)
        timing.published = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        while len(sent) < len(keys) and time.monotonic() < deadline:
            polled = await reader.getmany(timeout_ms=500)
            for record in (r for records in polled.values() for r in records):
                result = ReplySent.model_validate_json(record.value or b"")
                if result.idempotency_key in keys:
                    if not sent:
                        timing.first_result = time.perf_counter() - started
                    sent[result.idempotency_key] = result
                    timing.last_result = time.perf_counter() - started
    finally:
        await producer.stop()
        await reader.stop()
    return sent, timing


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stack = StackSettings()
    await ensure_topics(stack.kafka_bootstrap)
    group = f"bench-notifier-{args.run_id}"
    await start_group_at_end(
        stack.kafka_bootstrap, f"{group}.{REPLIES_REQUESTED.name}", REPLIES_REQUESTED.name
    )
    accounts = [f"@bench{i}检察" for i in range(args.accounts)]
    ports = processes.free_ports(("notifier", "simulator"))
    env = notifier_env(stack, args, ports, accounts)
    batch = requests(args.run_id, args.replies, accounts)
    with (
        tempfile.TemporaryDirectory() as logs,
        processes.running(env, log_dir=Path(logs), services=("notifier",), ports=ports) as fleet,
    ):
        sim = fleet.url("simulator")
        pids = {name: fleet.members[name].process.pid for name in ("notifier", "simulator")}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        async with httpx.AsyncClient(timeout=30) as http:
            if args.limited:  # the platform refuses anything beyond the same budget
                # over any 10 s: the refill, the burst, and 4 posts of network jitter
                rules = {"posts_per_hour": int(args.per_second * 10) + 5, "window_seconds": 10}
                await http.post(f"{sim}/_sim/rules", json=rules)
            sent, timing = await publish_and_collect(stack.kafka_bootstrap, batch, args.timeout)
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            received = (await http.get(f"{sim}/_sim/received")).json()
            metrics = (await http.get(f"{fleet.url('notifier')}/metrics")).text
    return make_report(args, batch, sent, timing, cpu, received, metrics)


def make_report(
    args: argparse.Namespace,
    batch: list[ReplyRequested],
    sent: dict[str, ReplySent],
    timing: Timing,
    cpu: dict[str, float],
    received: list[dict[str, Any]],  # the simulator is this run's own
    metrics: str,
) -> dict[str, Any]:
    posts_per_target: dict[str, int] = {}
    for post in received:
        posts_per_target[post["target"]["id"]] = posts_per_target.get(post["target"]["id"], 0) + 1
    retries = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("fengqiao_notifier_retries_total{")
    )
    statuses: dict[str, int] = {}
    for result in sent.values():
        statuses[result.status] = statuses.get(result.status, 0) + 1
    last = timing.last_result
    report: dict[str, Any] = {
        "mode": "limited" if args.limited else "unlimited",
        "replies": len(batch),
        "results": len(sent),
        "statuses": statuses,
        "posted": len(received),
        "posted_twice": sum(1 for c in posts_per_target.values() if c > 1),
        "retries": retries,
        "publish_seconds": round(timing.published, 2),
        "first_result_seconds": round(timing.first_result, 2),
        "last_result_seconds": round(last, 2),
        "replies_per_second": round(len(sent) / last, 1) if last else 0,
        # Load-independent: how many replies one CPU second of each process carries.
        "cpu_seconds": {name: round(c, 2) for name, c in cpu.items()},
        "replies_per_cpu_second": {
            name: round(len(sent) / c) if c else None for name, c in cpu.items()
        },
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
        },
    }
    if args.limited:
        budget = args.per_second * args.accounts
        # After the first token of each bucket, the rate is the refill rate.
        steady = (len(sent) - args.accounts) / (last - timing.first_result) if sent else 0
        report["budget_per_second"] = budget
        report["steady_replies_per_second"] = round(steady, 2)
    return report


async def drop(database: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(StackSettings().mongo_uri)
    await client.drop_database(database)
    await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=None)
    parser.add_argument("--limited", action="store_true")
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--per-second", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    args.replies = args.replies or (300 if args.limited else 5000)
    args.accounts = args.accounts or (3 if args.limited else 20)
    args.run_id = uuid.uuid4().hex[:8]
    try:
        report = asyncio.run(run(args))
    finally:
        asyncio.run(drop(f"bench_notifier_{args.run_id}"))
    print(json.dumps(report, ensure_ascii=False, indent=2))
    complete = (
        report["results"] == report["replies"] == report["posted"]
        and report["statuses"] == {"sent": report["replies"]}
        and report["posted_twice"] == 0
    )
    if args.limited:
        ok = complete and report["retries"] == 0
        ok = ok and abs(report["steady_replies_per_second"] / report["budget_per_second"] - 1) < 0.1
    else:
        ok = complete and report["replies_per_second"] >= 500
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
