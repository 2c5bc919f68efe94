"""`fengqiao stack up | down | status | kafka <tool> ...`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from textwrap import indent

from pydantic import ValidationError

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack.addresses import KAFKA_ENV, MONGO_ENV, redact_uri
from fengqiao.stack.errors import StackError
from fengqiao.stack.kafka import POM as KAFKA_POM
from fengqiao.stack.kafka_tools import run_tool, tool_names
from fengqiao.stack.lifecycle import ComponentStatus, down, status, up

_COLUMNS = ("COMPONENT", "STATE", "PID", "ADDRESS", "LOG", "DETAIL")


def _say(line: str) -> None:
    # Flush each line: `up` can take minutes and its output is often piped into a log.
    print(line, flush=True)


def format_table(rows: Sequence[ComponentStatus]) -> str:
    """The status rows as an aligned text table."""
    cells = [_COLUMNS] + [
        (
            r.name,
            r.state,
            "-" if r.pid is None else str(r.pid),
            r.address,
            "-" if r.log_path is None else str(r.log_path),
            r.detail or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_COLUMNS) - 1)]
    lines = []
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def _up(settings: StackSettings) -> int:
    started = time.monotonic()
    up(settings, _say)
    if not settings.external:
        _say(
            f"stack: up in {time.monotonic() - started:.1f} s: "
            f"{KAFKA_ENV}={settings.kafka_bootstrap} {MONGO_ENV}={redact_uri(settings.mongo_uri)}"
        )
    return 0


def _status(settings: StackSettings, as_json: bool) -> int:
    rows = status(settings)
    if as_json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        print(format_table(rows))
    # Like `systemctl status`: non-zero unless everything runs and answers, for scripts.
    return 0 if all(r.state == "running" and r.reachable for r in rows) else 1


def _kafka_tool(settings: StackSettings, words: list[str]) -> int:
    if not words:
        raise StackError(f"`fengqiao stack kafka` needs a tool: one of {tool_names()}")
    cache = settings.cache_dir.expanduser().resolve()
    return run_tool(cache, KAFKA_POM, words[0], words[1:], settings.kafka_bootstrap)


def run(args: argparse.Namespace) -> int:
    """Run `fengqiao stack <args.action>`; 0 on success, 1 with a one-line reason on stderr."""
    # While servers start, aiokafka logs every refused connection; the progress lines say it.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        settings = StackSettings()
        extra = getattr(args, "tool_args", None)
        if extra and args.action != "kafka":
            raise StackError(f"`stack {args.action}` takes no arguments: {' '.join(extra)}")
        if args.action == "up":
            return _up(settings)
        if args.action == "down":
            down(settings, _say)
            return 0
        if args.action == "kafka":
            return _kafka_tool(settings, list(getattr(args, "tool_args", None) or []))
        return _status(settings, bool(getattr(args, "json", False)))
    except StackError as exc:
        print(f"fengqiao stack: {exc}", file=sys.stderr)
        if exc.details:
            print(indent(exc.details, "  "), file=sys.stderr)
        return 1
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"bad setting FENGQIAO_{where.upper()}: {first['msg']}"
        print(f"fengqiao stack: {message}", file=sys.stderr)
        return 1
