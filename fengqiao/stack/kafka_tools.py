"""`fengqiao stack kafka <tool> ...`: Kafka's own command-line tools, run from the stack's jars.

The stack's pom fetches the `kafka-tools` jar with the broker's, so the classes behind Kafka's
`bin/kafka-*.sh` scripts are in the cache: this runs one of them with the cached classpath and,
unless the arguments name a server already, `--bootstrap-server` set to the stack's Kafka.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from fengqiao.stack import jars, tools
from fengqiao.stack.errors import StackError

# Each tool's main class, as Kafka's own bin/kafka-<tool>.sh scripts name them (Kafka 4.1).
MAIN_CLASSES = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-configs": "kafka.admin.ConfigCommand",
}
HEAP = "-Xmx256m"
_SERVER_OPTIONS = ("--bootstrap-server", "--bootstrap-controller")


def tool_names() -> str:
    """The tools this knows, for help texts and errors."""
    return ", ".join(sorted(MAIN_CLASSES))


def tool_argv(java: str, libs: Path, tool: str, args: Sequence[str], bootstrap: str) -> list[str]:
    """The java command line that runs `tool` with `args` against `bootstrap`."""
    name = tool if tool.startswith("kafka-") else f"kafka-{tool}"
    main = MAIN_CLASSES.get(name.removesuffix(".sh"))
    if main is None:
        raise StackError(f"no Kafka tool {tool!r}: choose one of {tool_names()}")
    argv = [java, HEAP, "-cp", f"{libs}/*", main, *args]
    named = any(a == o or a.startswith(o + "=") for a in args for o in _SERVER_OPTIONS)
    if not named and not any(a in ("-h", "--help", "--version") for a in args):
        argv += ["--bootstrap-server", bootstrap]
    return argv


def run_tool(cache_dir: Path, pom: Path, tool: str, args: Sequence[str], bootstrap: str) -> int:
    """Run a Kafka tool in the foreground; its exit status. The jars must be fetched already."""
    libs = cache_dir / "kafka" / "libs"
    if not jars.jars_ready(libs, pom):
        raise StackError(
            f"the Kafka jars in {libs} are missing or older than deploy/kafka/pom.xml: "
            "run `fengqiao stack up` once to fetch them"
        )
    argv = tool_argv(tools.require_java(), libs, tool, args, bootstrap)
    return subprocess.run(argv, check=False).returncode
