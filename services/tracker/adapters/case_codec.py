"""The codec of a case's version: the document `to_document` makes of a `Case`, `from_document`
reads back, and the form it is stored in (`stored`: lists and mappings packed as one JSON text).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pydantic_core import to_json

from fengqiao.contracts import CaseState, Outgoing, by_name
from fengqiao.runtime.store import PACKED as PACKED_FIELD
from fengqiao.runtime.store import packed_text, unpack
from fengqiao.services.tracker.domain import Case, TimelineEntry
from fengqiao.services.tracker.domain.effects import parsed_effects, stored_effects


def version_id(case_id: str, version: int) -> str:
    return f"{case_id}:{version:08d}"


_SPECIAL = {"state", "timeline", "processed", "outbox", "effects", "version"}
_TUPLES = {"chain", "hops", "co_units", "repeat_ids"}
_SIMPLE = tuple(f.name for f in fields(Case) if f.name not in _SPECIAL)
_ENTRY = tuple(f.name for f in fields(TimelineEntry))


def to_document(case: Case) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": version_id(case.case_id, case.version)}
    for name in _SIMPLE:
        value = getattr(case, name)
        doc[name] = list(value) if name in _TUPLES else value
    return doc | {
        "state": case.state.value,
        # Field by field: `asdict` deep-copies, and was a tenth of a change's time.
        "timeline": [{f: getattr(e, f) for f in _ENTRY} for e in case.timeline],
        "processed": sorted(case.processed),
        "outbox": {
            o.message.event_id: {"topic": o.topic, "body": o.message.model_dump(mode="json")}
            for o in case.outbox
        },
        "effects": _effects(case),
        "version": case.version,
    }


def _effects(case: Case) -> list[dict[str, Any]]:
    return stored_effects(case.effects)


# A version as stored: these fields (lists and mappings, never queried) as one JSON text,
# `packed` (`fengqiao.runtime.store.packed` says why); the scalars stay fields.
PACKED = (
    *("reply_to", "chain", "hops", "co_units", "replies", "clocks", "timeline"),
    *("processed", "outbox", "effects", "repeats", "repeat_ids"),
)
_SCALARS = tuple(name for name in _SIMPLE if name not in PACKED)
_JOINED = ("timeline", "outbox")  # joined from JSON made once (`stored`)
_AS_THEY_ARE = tuple(n for n in PACKED if n not in (*_JOINED, "processed", "effects"))


def stored(case: Case) -> dict[str, Any]:
    """The document to store for `case`: `to_document`'s, with the PACKED fields as one JSON
    text. The timeline's entries and the outbox's messages are each made JSON once (they are
    the bulk of a version, and the same in every version after theirs), and joined here."""
    doc: dict[str, Any] = {"_id": version_id(case.case_id, case.version)}
    for name in _SCALARS:
        doc[name] = getattr(case, name)
    doc["state"] = case.state.value
    doc["version"] = case.version
    rest = {name: getattr(case, name) for name in _AS_THEY_ARE}
    timeline = b",".join(entry.json for entry in case.timeline)
    outbox = b",".join(
        b'%b:{"topic":%b,"body":%b}' % (to_json(o.message.event_id), to_json(o.topic), o.body)
        for o in case.outbox
    )
    doc[PACKED_FIELD] = packed_text(
        rest | {"processed": sorted(case.processed), "effects": _effects(case)},
        {"timeline": b"[" + timeline + b"]", "outbox": b"{" + outbox + b"}"},
    )
    return doc


def unpacked(doc: dict[str, Any]) -> dict[str, Any]:
    """`to_document`'s form of a stored version (a stub has nothing packed)."""
    return unpack(doc)


def from_document(doc: dict[str, Any]) -> Case:
    """The case of a version as `to_document` makes it; a version written before a field existed
    reads with its default (e.g. `repeats`, `repeat_ids`, `timeline_dropped`: a case written
    before repeats were counted has every repeat on its timeline and in `processed`)."""
    simple: dict[str, Any] = {
        name: tuple(doc[name]) if name in _TUPLES else doc[name] for name in _SIMPLE if name in doc
    }
    return Case(
        **simple,
        state=CaseState(doc["state"]),
        timeline=tuple(TimelineEntry(**e) for e in doc.get("timeline", ())),
        processed=frozenset(doc.get("processed", ())),
        outbox=tuple(
            Outgoing(o["topic"], by_name(o["topic"]).message.model_validate(o["body"]))
            for o in doc.get("outbox", {}).values()
        ),
        effects=parsed_effects(doc.get("effects", ())),
        version=doc["version"],
    )
