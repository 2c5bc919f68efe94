"""The `fengqiao` command: the local stack, the services, the simulator, the demo."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

Command = Callable[[argparse.Namespace], int]


def _stack(args: argparse.Namespace) -> int:
    from fengqiao.stack.cli import run

    return run(args)


def _run_service(args: argparse.Namespace) -> int:
    from fengqiao.runner import run_service

    return run_service(args.service, host=args.host, port=args.port)


def _simulator(args: argparse.Namespace) -> int:
    from fengqiao.runtime import tracing
    from fengqiao.runtime.logs import configure_logging
    from fengqiao.simulator.server import run

    configure_logging("simulator")  # as the services log: JSON lines, private data masked
    tracing.setup("simulator")  # with OTEL_EXPORTER_OTLP_ENDPOINT: the platform's spans too
    return run(host=args.host, port=args.port)


def _traces(args: argparse.Namespace) -> int:
    from fengqiao.traces import serve

    return serve(args.host, args.port, args.quiet)


def _demo(args: argparse.Namespace) -> int:
    from fengqiao.demo import main as demo_main

    return demo_main(keep_stack=args.keep_stack, serve=args.serve)


def _normalize(args: argparse.Namespace) -> int:
    from fengqiao.runtime.clock import utcnow
    from fengqiao.services.intake.cli import run as normalize

    return normalize(
        sys.stdin.buffer, sys.stdout, sys.stderr, now=utcnow(), max_line_bytes=args.max_line_bytes
    )


def _route(args: argparse.Namespace) -> int:
    import asyncio

    from fengqiao.pipeline import route_pipeline
    from fengqiao.services.router.cli import route_lines

    router, normalizer = route_pipeline()
    return asyncio.run(route_lines(sys.stdin, router, normalizer, sys.stdout, sys.stderr))


def _route_eval(args: argparse.Namespace) -> int:
    from fengqiao.pipeline import route_pipeline
    from fengqiao.services.router.evaluate import DEFAULT_SET, evaluate, format_report

    path = args.path or DEFAULT_SET
    with open(path, encoding="utf-8") as lines:
        report = evaluate(lines, *route_pipeline())
    print(format_report(report))
    return 1 if report.below_target() else 0


def _stats(args: argparse.Namespace) -> int:
    from fengqiao.services.tracker.cli import run

    return run(args.since, args.until, args.unit, args.json, sys.stdout, sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fengqiao", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_running(sub)
    _add_pipeline(sub)

    from fengqiao.auth.cli import add_parser as add_users  # its commands import lazily
    from fengqiao.ops.parser import add_parser as add_ops
    from fengqiao.triage.cli import add_parser as add_triage

    add_ops(sub)
    add_users(sub)
    add_triage(sub)
    return parser


def _add_running(sub: Any) -> None:
    """The commands that run things: the stack, a service, the simulator, the demo."""
    stack = sub.add_parser(
        "stack", help="fetch, build, start and stop the local Kafka and FerretDB"
    )
    stack.add_argument("action", choices=["up", "down", "status", "kafka"])
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.add_argument(
        "tool_args", nargs=argparse.REMAINDER, metavar="TOOL ARGS",
        help="after `kafka`: one of Kafka's own tools (kafka-topics, kafka-consumer-groups, "
        "kafka-console-consumer...) and its arguments; --bootstrap-server is the stack's",
    )  # fmt: skip
    stack.set_defaults(func=_stack)

    run = sub.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=["intake", "router", "tracker", "notifier", "workbench"])
    run.add_argument("--host", default=None, help="HTTP host (default from settings)")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default from settings)")
    run.set_defaults(func=_run_service)

    sim = sub.add_parser("simulator", help="run the Weibo-shaped platform simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.set_defaults(func=_simulator)

    traces = sub.add_parser(
        "traces", help="receive the services' traces over OTLP/HTTP and print each as a tree"
    )
    traces.add_argument("--host", default="127.0.0.1")
    traces.add_argument("--port", type=int, default=4318, help="OTLP/HTTP's port (4318)")
    traces.add_argument(
        "--quiet", type=float, default=3.0, help="seconds without a new span before a trace prints"
    )
    traces.set_defaults(func=_traces)

    demo = sub.add_parser("demo", help="run the whole system on the article's five cases")
    demo.add_argument(
        "--keep-stack", action="store_true", help="leave Kafka and FerretDB running afterwards"
    )
    demo.add_argument(
        "--serve", action="store_true",
        help="keep the services and the workbench running after the demo, until Ctrl-C",
    )  # fmt: skip
    demo.set_defaults(func=_demo)


def _add_pipeline(sub: Any) -> None:
    """The commands that run the pipeline's steps on posts, and the statistics."""
    norm = sub.add_parser(
        "normalize",
        help="normalize posts: JSON lines on stdin → normalized posts as JSON lines on stdout",
    )
    norm.add_argument(
        "--max-line-bytes", type=int, default=64 * 1024, help="longer lines are refused"
    )
    norm.set_defaults(func=_normalize)

    route = sub.add_parser(
        "route", help="route posts: JSON lines on stdin → decisions as JSON lines on stdout"
    )
    route.set_defaults(func=_route)

    route_eval = sub.add_parser("route-eval", help="the router's accuracy on a labelled set")
    route_eval.add_argument(
        "path", nargs="?", default=None, help="JSON lines (default tests/router_eval/posts.jsonl)"
    )
    route_eval.set_defaults(func=_route_eval)

    stats = sub.add_parser("stats", help="case statistics per unit and tier for a period")
    stats.add_argument(
        "--since", help="first local date (YYYY-MM-DD) or instant; default 30 days ago"
    )
    stats.add_argument("--until", help="local date or instant it ends before; default now")
    stats.add_argument("--unit", help="only this unit's cases and those below it")
    stats.add_argument("--json", action="store_true", help="JSON instead of a table")
    stats.set_defaults(func=_stats)


def main(argv: Sequence[str] | None = None) -> int:
    from fengqiao.runtime.kafka_security import KafkaSecurityError
    from fengqiao.runtime.settings import UnsafeSettings

    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except (KafkaSecurityError, UnsafeSettings) as exc:
        # Settings that cannot work: what to fix, without a traceback around it.
        print(f"fengqiao: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`fengqiao stats --json | head`): stop quietly, as `cat` does.
        # Python would also complain when flushing stdout at exit; point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
