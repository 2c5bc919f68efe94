"""`python -m fengqiao.contracts.schemas [--write]`: check the contracts against the committed
schemas, or refresh them."""

from __future__ import annotations

import argparse
import sys

from fengqiao.contracts.schemas import check, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fengqiao.contracts.schemas")
    parser.add_argument(
        "--write",
        action="store_true",
        help="refresh the committed schemas (after a compatible change, or a raised version)",
    )
    args = parser.parse_args(argv)
    if args.write:
        written, found = write()
        for path in written:
            print(f"wrote {path}")
    else:
        found = check()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
