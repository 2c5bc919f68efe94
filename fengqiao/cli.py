"""The `fengqiao` command: the local stack, the services, the simulator, the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Command = Callable[[argparse.Namespace], int]


def _stack(args: argparse.Namespace) -> int:
    from fengqiao.stack.cli import run

    return run(args)


def _run_service(args: argparse.Namespace) -> int:
    from fengqiao.runner import run_service

    return run_service(args.service, host=args.host, port=args.port)


def _simulator(args: argparse.Namespace) -> int:
    from fengqiao.simulator.server import run

    return run(host=args.host, port=args.port)


def _demo(args: argparse.Namespace) -> int:
    from fengqiao.demo import main as demo_main

    return demo_main(keep_stack=args.keep_stack)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fengqiao", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = sub.add_parser(
        "stack", help="fetch, build, start and stop the local Kafka and FerretDB"
    )
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.set_defaults(func=_stack)

    run = sub.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=["intake", "router", "tracker", "notifier"])
    run.add_argument("--host", default=None, help="HTTP host (default from settings)")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default from settings)")
    run.set_defaults(func=_run_service)

    sim = sub.add_parser("simulator", help="run the Weibo-shaped platform simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.set_defaults(func=_simulator)

    demo = sub.add_parser("demo", help="run the whole system on the article's three cases")
    demo.add_argument(
        "--keep-stack", action="store_true", help="leave Kafka and FerretDB running afterwards"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
