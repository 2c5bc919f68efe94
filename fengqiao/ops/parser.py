"""The `fengqiao ops` command line (arguments only; `fengqiao.ops.cli` does the work, imported
when an ops command runs so that the other `fengqiao` commands start fast)."""

from __future__ import annotations

import argparse
from typing import Any


def _run(args: argparse.Namespace) -> int:
    from fengqiao.ops.cli import run

    return run(args)


def add_parser(sub: Any) -> None:
    """Add `ops` and its subcommands to the `fengqiao` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="JSON instead of tables")
    common.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for Kafka (default 10)"
    )
    ops = sub.add_parser(
        "ops", help="operators: topics, consumer lag, dead letters, failed replies, cases, metrics"
    )
    ops.set_defaults(func=_run)
    ops_sub = ops.add_subparsers(dest="ops_command", required=True, metavar="OPS_COMMAND")
    _add_kafka(ops_sub, common)
    _add_dlq(ops_sub, common)
    _add_replies(ops_sub, common)
    _add_cases(ops_sub, common)
    _add_metrics(ops_sub, common)


def _add_kafka(ops_sub: Any, common: argparse.ArgumentParser) -> None:
    """`ops topics` and `ops lag`."""
    topics = ops_sub.add_parser(
        "topics", parents=[common], help="partitions, end offsets, messages/s and retention"
    )
    topics.add_argument(
        "--interval", type=float, default=5.0, help="seconds over which to measure messages/s"
    )
    topics.set_defaults(ops_action="topics")

    lag = ops_sub.add_parser(
        "lag", parents=[common], help="every service consumer group's lag, per partition"
    )
    lag.add_argument(
        "--threshold", type=int, default=None, help="exit 1 when a group's total lag exceeds it"
    )
    lag.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    lag.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    lag.set_defaults(ops_action="lag")


def _add_dlq(ops_sub: Any, common: argparse.ArgumentParser) -> None:
    """`ops dlq list|show|replay|purge`."""
    letters = ops_sub.add_parser("dlq", help="dead letters: list, show, replay, purge")
    dlq_sub = letters.add_subparsers(dest="dlq_command", required=True, metavar="DLQ_COMMAND")
    listing = dlq_sub.add_parser("list", parents=[common], help="dead letters to deal with")
    listing.add_argument(
        "--all", action="store_true", help="replayed and purged ones too (default: new only)"
    )
    listing.set_defaults(ops_action="dlq_list")
    show = dlq_sub.add_parser("show", parents=[common], help="one dead letter, payload masked")
    show.add_argument("id", help="<topic>:<partition>:<offset> of the failed message")
    show.set_defaults(ops_action="dlq_show")
    replay = dlq_sub.add_parser(
        "replay", parents=[common], help="publish back to the origin topic, once"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="the dead letter to replay")
    which.add_argument("--all", action="store_true", help="every new dead letter")
    replay.set_defaults(ops_action="dlq_replay")
    purge = dlq_sub.add_parser("purge", parents=[common], help="record a dead letter as dealt with")
    purge.add_argument("id")
    purge.add_argument("--reason", default=None, help="why (kept with the record)")
    purge.set_defaults(ops_action="dlq_purge")


def _add_replies(ops_sub: Any, common: argparse.ArgumentParser) -> None:
    """`ops replies list|retry` (`fengqiao.ops.replies`)."""
    replies = ops_sub.add_parser(
        "replies", help="replies that failed for a reason that can pass: list, retry"
    )
    sub = replies.add_subparsers(dest="replies_command", required=True, metavar="REPLIES_COMMAND")
    reasons = ["unsendable", "exhausted"]
    listing = sub.add_parser(
        "list", parents=[common], help="failed replies by reason (unsendable, exhausted)"
    )
    listing.add_argument("--all", action="store_true", help="retried ones too (default: new)")
    listing.add_argument("--reason", choices=reasons, default=None)
    listing.set_defaults(ops_action="replies_list")
    retry = sub.add_parser(
        "retry", parents=[common], help="send failed replies again once fixed, each at most once"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "reply",
        nargs="*",
        default=[],
        help="a dead letter's id or a reply's key (case:purpose:hop)",
    )
    which.add_argument("--all", action="store_true", help="every new failed reply (of --reason)")
    retry.add_argument("--reason", choices=reasons, default=None)
    retry.set_defaults(ops_action="replies_retry")


def _add_cases(ops_sub: Any, common: argparse.ArgumentParser) -> None:
    found = ops_sub.add_parser(
        "cases", parents=[common], help="find cases and print their timeline across topics"
    )
    found.add_argument("query", help="a case id, author id, account (@…) or words of the text")
    found.add_argument("--by", choices=["any", "id", "author", "account", "text"], default="any")
    found.add_argument("--days", type=float, default=30.0, help="how far back to read")
    found.add_argument("--limit", type=int, default=20, help="at most this many cases")
    found.add_argument(
        "--store",
        action="store_true",
        help="read the tracker's store (its `cases` collection) instead of the topics",
    )
    found.set_defaults(ops_action="cases")


def _add_metrics(ops_sub: Any, common: argparse.ArgumentParser) -> None:
    metrics = ops_sub.add_parser(
        "metrics", parents=[common], help="one screen from the running services' /metrics"
    )
    metrics.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a service's base URL (default: each service's settings); repeatable",
    )
    metrics.set_defaults(ops_action="metrics")
