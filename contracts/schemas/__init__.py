"""The committed JSON schema of each topic's message (`<topic>.json` here; `dlq.json` for the
dead-letter topics), and the check of the contracts against them.

`python -m fengqiao.contracts.schemas --write` refreshes the files after a change the check
accepts; `python -m fengqiao.contracts.schemas` runs the check (tests/unit/test_contract_schemas.py
does too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fengqiao.contracts.compatibility import Schema, breaking_changes
from fengqiao.contracts.envelope import Envelope
from fengqiao.contracts.topics import DLQ_MESSAGE, TOPICS

FOLDER = Path(__file__).resolve().parent
REFRESH = "python -m fengqiao.contracts.schemas --write"

MESSAGES: dict[str, type[Envelope]] = {
    **{topic.name: topic.message for topic in TOPICS},
    "dlq": DLQ_MESSAGE,
}
"""The message type behind each committed schema, by schema name."""


def current(name: str) -> Schema:
    """The JSON schema the contracts give the messages of `name` now (as read: validation)."""
    return MESSAGES[name].model_json_schema()


def path_of(name: str) -> Path:
    return FOLDER / f"{name}.json"


def committed(name: str) -> Schema | None:
    """The schema committed for `name`, or None when there is none yet."""
    path = path_of(name)
    if not path.exists():
        return None
    loaded: Schema = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def version_of(schema: Schema) -> int:
    """The `schema_version` a schema's messages carry (its field's default)."""
    version: Any = schema["properties"]["schema_version"]["default"]
    return int(version)


def problems(name: str, old: Schema | None, new: Schema) -> list[str]:
    """Why the committed schema `old` of `name` is not the current `new` one, with what to do;
    empty when they are the same. A breaking change comes first (see `refused`)."""
    if old == new:
        return []
    if old is None:
        return [f"{name}: no schema is committed yet: run `{REFRESH}`"]
    return refused(name, old, new) or [
        f"{name}: the schema changed compatibly: refresh the committed one with `{REFRESH}`"
    ]


def refused(name: str, old: Schema, new: Schema) -> list[str]:
    """Why `new` may not replace the committed `old` at all: a lowered schema_version, or a
    breaking change without a raised one. Empty when it may."""
    was, now = version_of(old), version_of(new)
    if now < was:
        return [f"{name}: schema_version went down from {was} to {now}"]
    breaking = breaking_changes(old, new)
    if not breaking or now > was:
        return []
    message = MESSAGES[name].__name__ if name in MESSAGES else "its message"
    return [
        f"{name}: a change that breaks readers on one side of a rolling deploy: raise "
        f"{message}'s schema_version to {was + 1} "
        f"(`schema_version: int = schema_version_field({was + 1})`), then run `{REFRESH}`",
        *(f"  {change}" for change in breaking),
    ]


def check() -> list[str]:
    """Every problem of every committed schema (stale files included); empty when all agree."""
    found = [line for name in MESSAGES for line in problems(name, committed(name), current(name))]
    known = {path_of(name) for name in MESSAGES}
    found += [
        f"{path.name}: no topic has this schema: remove it"
        for path in sorted(FOLDER.glob("*.json"))
        if path not in known
    ]
    return found


def write() -> tuple[list[Path], list[str]]:
    """Commit the current schema of every message whose change is allowed: the paths written,
    and why the others were refused (a breaking change needs a raised schema_version first)."""
    written, refusals = [], []
    for name in MESSAGES:
        old, new = committed(name), current(name)
        if old is not None and (why := refused(name, old, new)):
            refusals += why
            continue
        text = json.dumps(new, indent=2, ensure_ascii=False) + "\n"
        path = path_of(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written, refusals
