"""The command line's output when piped (issue 20, deliver 5): a reader that goes away early
ends the command quietly (no BrokenPipe traceback); Rich tables are not cut to 80 columns."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SHOUT = textwrap.dedent(
    """
    import argparse
    from fengqiao import cli

    def shout(args):
        for n in range(200_000):
            print(f"line {n} of a long answer")
        return 0

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=shout)
    cli.build_parser = lambda: parser
    raise SystemExit(cli.main([]))
    """
)


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    run = subprocess.run(
        f"{sys.executable} -c '{SHOUT}' | head -n 2; echo \"exit ${{PIPESTATUS[0]}}\"",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.stdout.splitlines() == ["line 0 of a long answer", "line 1 of a long answer",
                                       "exit 141"]  # fmt: skip
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr


def test_a_piped_table_is_printed_whole() -> None:
    code = textwrap.dedent(
        """
        from rich.table import Table
        from fengqiao.ops.cli import output_console
        table = Table("topic", "partitions", "end offset", "held", "retention", "a long column")
        table.add_row("dispatch.orders.dlq", "12", "123456789", "42", "7 days", "x" * 60)
        output_console().print(table)
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "partitions" in run.stdout and "x" * 60 in run.stdout and "…" not in run.stdout
    assert "\x1b[" not in run.stdout  # no colour codes in a file
