"""The Open311 read model: what `GET requests/{id}.json` answers, kept from `case.events`.

Intake records a request when it accepts it (with the case id the normalizer will give it:
`domain.case_id_for`), then keeps every `case.events` message about that case. The view is
computed from those rows when asked, so each write is a single insert and ordering or
re-delivery of events cannot corrupt it:

- status: `closed` while the latest event leaves the case closed, else `open`;
- agency_responsible: the `unit_id` of the latest dispatch (the deepest hop among simultaneous
  ones), i.e. the unit that must handle the case;
- status_notes: the latest event's detail, masked; never an internal error: the events of a
  reply that failed or waits for an operator (`reply.failed`, `reply.held`, any `reply.*`, whose
  detail is the notifier's error) show a neutral note of their own (`PUBLIC_NOTES`);
- updated_datetime: the latest event's time.

Events are ordered by their time, then by their Kafka offset (a case's events share one
partition, so the offset is the order the tracker wrote them in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from fengqiao.contracts import CASE_EVENTS, CaseEventRecorded, CaseState
from fengqiao.runtime.messaging import BatchFailures, batch_records, batch_subscriber
from fengqiao.runtime.pii import mask_pii
from fengqiao.services.intake.adapters.requests import CaseEventRow, RequestRecord, RequestsStore

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HOP = re.compile(r"^hop (\d+)\b")
DISPATCHED = "case.dispatched"
# What the public reads for events whose detail is internal (the notifier's error, an operator's
# queue): a reply not sent yet, in neutral words.
PUBLIC_NOTES = {
    "reply.failed": "答复暂未发出，工作人员正在处理。(Our reply is delayed; staff are on it.)",
    "reply.held": "答复正在审核，稍后发出。(Our reply is being reviewed before it is posted.)",
}
INTERNAL_PREFIX = "reply."


def masked(text: str) -> str:
    """`text` with phone, ID and card numbers and e-mail addresses masked."""
    text, _ = mask_pii(text)
    return _EMAIL.sub("***@***", text)


@dataclass(frozen=True)
class RequestView:
    """One service request as Open311 shows it."""

    request_id: str
    service_code: str
    description: str
    status: str
    status_notes: str | None
    agency_responsible: str | None
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None


def view(record: RequestRecord, events: list[CaseEventRow]) -> RequestView:
    """What a client sees of `record`, given the case events kept so far."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.offset))
    latest = ordered[-1] if ordered else None
    return RequestView(
        request_id=record.request_id,
        service_code=record.service_code,
        description=record.description,
        status="closed" if latest and latest.state == CaseState.CLOSED.value else "open",
        status_notes=public_note(latest) if latest else None,
        agency_responsible=_agency(ordered),
        requested_at=record.requested_at,
        updated_at=latest.occurred_at if latest else record.requested_at,
        expected_at=None,  # the tracker publishes no deadline on case.events (yet)
    )


def public_note(row: CaseEventRow) -> str | None:
    """The note the public reads for an event: its masked detail, or, for an event whose detail
    is internal, a neutral note."""
    if row.event.startswith(INTERNAL_PREFIX):
        return PUBLIC_NOTES.get(row.event, PUBLIC_NOTES["reply.failed"])
    return row.detail


def _agency(ordered: list[CaseEventRow]) -> str | None:
    dispatches = [e for e in ordered if e.event == DISPATCHED and e.unit_id]
    if not dispatches:
        return None
    final = max(dispatches, key=lambda e: (e.occurred_at, _hop(e), e.offset))
    return final.unit_id


def _hop(row: CaseEventRow) -> int:
    found = _HOP.match(row.detail or "")
    return int(found.group(1)) if found else 0


def row_of(event: CaseEventRecorded, offset: int) -> CaseEventRow:
    """The row kept for `event` (its detail masked)."""
    return CaseEventRow(
        event_id=event.event_id,
        case_id=event.case_id,
        event=event.event,
        state=event.state.value,
        unit_id=event.unit_id,
        detail=masked(event.detail) if event.detail else None,
        occurred_at=event.occurred_at,
        offset=offset,
    )


def register(broker: KafkaBroker, store: RequestsStore, *, group_id: str) -> None:
    """Subscribe the read model to `case.events`; only cases of Open311 requests are kept. A
    poll's cases are looked up at once (one `$in`; most cases have no request): looked up one
    event at a time, this was 4.75 lookups an appeal (bench/e2e.py)."""

    @batch_subscriber(
        broker,
        CASE_EVENTS,
        group_id=group_id,
        action="open311",
        description="Keep the Open311 read model: status, notes and agency of each request.",
    )
    async def keep_request_status(
        batch: list[CaseEventRecorded], msg: KafkaMessage
    ) -> BatchFailures:
        # The request is inserted before its post reaches Kafka, so before any of its events.
        tracked = await store.tracked(event.case_id for event in batch)
        for event, record in zip(batch, batch_records(msg), strict=True):
            if event.case_id in tracked:
                await store.add_event(row_of(event, _offset(record)))
        return BatchFailures()


def _offset(record: Any) -> int:
    offset = getattr(record, "offset", 0)
    return offset if isinstance(offset, int) else 0


__all__ = ["RequestView", "masked", "register", "row_of", "view"]
