"""Test support for the suites that run a stack of their own: reuse the work tree's jars and
FerretDB binary instead of fetching and building them again."""

from __future__ import annotations

from pathlib import Path

from fengqiao.stack.addresses import HostPort
from fengqiao.stack.ferretdb import FerretDB
from fengqiao.stack.kafka import Kafka

MAIN_CACHE = Path(__file__).resolve().parents[2] / ".cache"


def share_main_cache(cache: Path) -> None:
    """Symlink the main cache's jars and binary into `cache`, when they are complete."""
    anywhere = HostPort("127.0.0.1", 9092)  # the address plays no part in the files
    main_kafka = Kafka(MAIN_CACHE, anywhere)
    if main_kafka.jars_ready():
        (cache / "kafka").mkdir(parents=True)
        (cache / "kafka" / "libs").symlink_to(main_kafka.libs)
    main_ferretdb = FerretDB(MAIN_CACHE, anywhere)
    if main_ferretdb.build_reason() is None:
        (cache / "ferretdb").mkdir(parents=True)
        (cache / "ferretdb" / "bin").symlink_to(main_ferretdb.bin_dir)
