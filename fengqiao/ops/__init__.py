"""`fengqiao ops`: what operators need to watch the topics and handle dead letters without
reading Kafka by hand (topics, lag, dlq, cases, metrics)."""

from __future__ import annotations

import json
import re
from typing import Any


class Refused(Exception):
    """An operator asked for something that is not allowed or does not exist; the message
    says why."""


class Unreachable(Exception):
    """The cluster (or store) named by the settings does not answer; the message says which."""


def print_json(data: Any) -> None:
    """A command's answer with `--json`: indented, non-ASCII kept, dates as text."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def redacted(uri: str) -> str:
    """A store URI fit for an error message: no user or password."""
    return re.sub(r"//[^@/]*@", "//***@", uri)
