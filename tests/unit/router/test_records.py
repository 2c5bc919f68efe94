"""The router's versions keep the order template and the last orders as JSON text (FerretDB
stores a type description of every nested field with each document: 5.5 KB of a 7.4 KB
version), and read the versions written before, which hold them as documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fengqiao.contracts import Evidence
from fengqiao.services.router.adapters.records import _orders, from_document, to_document
from fengqiao.services.router.directory import load_directory
from fengqiao.services.router.returns import record_dispatch
from fengqiao.testing.factories import dispatch_message

NOW = datetime(2026, 9, 1, 10, tzinfo=UTC)
DIRECTORY = load_directory()
EVIDENCE = [Evidence(kind="text_place", value="博乐市", unit_id="652701", weight=1.0)]


def orders() -> list:
    return [
        dispatch_message(
            event_id=f"o{hop}", occurred_at=NOW, hop=hop, from_unit=src, to_unit=dst,
            to_tier=DIRECTORY[dst].tier, final=final, category="wage_arrears",
            evidence=EVIDENCE, confidence=0.9,
        )
        for hop, src, dst, final in ((1, "xj", "652700", False), (2, "652700", "652701", True))
    ]  # fmt: skip


def test_a_version_holds_no_nested_documents_and_reads_back_as_written() -> None:
    sent = orders()
    record = record_dispatch(sent, "appeal-1")
    doc = to_document(record, sent)
    assert not any(isinstance(v, dict) for v in doc.values())
    assert all(not isinstance(x, dict) for v in doc.values() if isinstance(v, list) for x in v)
    assert from_document(doc) == record
    assert _orders(doc) == sent


def test_a_version_written_with_nested_documents_still_reads() -> None:
    sent = orders()
    record = record_dispatch(sent, "appeal-1")
    doc = to_document(record, sent)
    doc["template"] = json.loads(doc["template"])
    doc["last_orders"] = json.loads(doc["last_orders"])
    assert from_document(doc) == record
    assert _orders(doc) == sent
