"""The codec of stored records: fields nobody queries, kept as one JSON text, `packed`.

FerretDB stores a document field by field (each value with its type, in its own JSON form, which
SQLite then parses again for the `_id` index). Lists and mappings that are only ever read back
whole cost much less as one string: a case's version took 826 µs of the store's CPU as nested
fields and 196 µs packed (4 KB versions), a batch of 500 notifier claims 150 ms nested and 60 ms
packed (measured). What is queried or read by people (states, times, ids) stays a field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_core import from_json, to_json

PACKED = "packed"


def pack(record: Mapping[str, Any], keep: Callable[[str, Any], bool]) -> dict[str, Any]:
    """`record` with the fields `keep` accepts as they are and the others as one JSON text
    (no `packed` field when there are no others)."""
    kept = {k: v for k, v in record.items() if keep(k, v)}
    rest = {k: v for k, v in record.items() if k not in kept}
    return {**kept, PACKED: packed_text(rest)} if rest else kept


def packed_text(plain: Mapping[str, Any], made: Mapping[str, bytes] | None = None) -> str:
    """The JSON text of `plain` and of the fields in `made`, already JSON (values serialized once
    and stored with many records, such as a case's timeline entries)."""
    text = to_json(plain)
    if made:
        extra = b",".join(b"%b:%b" % (to_json(name), value) for name, value in made.items())
        text = text[:-1] + (b"," if len(text) > 2 else b"") + extra + b"}"
    return text.decode()


def unpack(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a stored document: its fields with the packed ones among them."""
    text = doc.get(PACKED)
    if not isinstance(text, str):
        return dict(doc)
    nested: dict[str, Any] = from_json(text)
    return {**nested, **{k: v for k, v in doc.items() if k != PACKED}}
