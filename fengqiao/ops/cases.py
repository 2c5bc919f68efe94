"""Find cases by id, author, account or text: on the topics (each one's messages from every case
topic on one timeline), or in the tracker's store (`stored`: the cases' views, one document per
case with its timeline, see docs/store.md)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table

from fengqiao.contracts import (
    CASE_TOPICS,
    AppealNormalized,
    CaseEventRecorded,
    CaseMessage,
    CoordinationRequested,
    DispatchOrdered,
    ReplyRequested,
    ReplySent,
    SupervisionOrdered,
    UnitActed,
)
from fengqiao.runtime.pii import mask_pii
from fengqiao.runtime.settings import StackSettings

CASE_TOPIC_NAMES = [t.name for t in CASE_TOPICS]

By = Literal["any", "id", "author", "account", "text"]


@dataclass
class Timeline:
    case_id: str
    entries: list[tuple[str, CaseMessage]] = field(default_factory=list)  # (topic, message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "timeline": [
                {
                    "at": m.occurred_at.isoformat(),
                    "topic": topic,
                    "type": getattr(m, "type", type(m).__name__),
                    "event_id": m.event_id,
                    "summary": summarize(m),
                }
                for topic, m in self.entries
            ],
        }


def matches(appeal: AppealNormalized, query: str, by: By) -> bool:
    tests: dict[str, Callable[[], bool]] = {
        "id": lambda: appeal.case_id == query,
        "author": lambda: appeal.author.id == query,
        "account": lambda: appeal.account == query,
        "text": lambda: query in appeal.masked_text or query in appeal.text,
    }
    if by == "any":
        return any(test() for test in tests.values())
    return tests[by]()


def timelines(
    messages: Iterable[tuple[str, Any]], query: str, *, by: By = "any", limit: int = 20
) -> list[Timeline]:
    """The timelines of the cases `query` finds among `messages` ((topic, message) pairs)."""
    by_case: dict[str, list[tuple[str, CaseMessage]]] = {}
    for topic, message in messages:
        if isinstance(message, CaseMessage):
            by_case.setdefault(message.case_id, []).append((topic, message))
    found: list[str] = []
    if by in ("any", "id") and query in by_case:
        found.append(query)
    for case_id, entries in by_case.items():
        if case_id not in found and any(
            isinstance(m, AppealNormalized) and matches(m, query, by) for _, m in entries
        ):
            found.append(case_id)
    order = {name: i for i, name in enumerate(CASE_TOPIC_NAMES)}
    return [
        Timeline(
            case_id,
            sorted(by_case[case_id], key=lambda tm: (tm[1].occurred_at, order.get(tm[0], 99))),
        )
        for case_id in found[:limit]
    ]


def summarize(m: CaseMessage) -> str:
    """One line about a case message, private data masked."""
    text: str
    match m:
        case AppealNormalized():
            kind = "appeal" if m.is_appeal else "not an appeal"
            joined = f" (duplicate of {m.duplicate_of})" if m.duplicate_of else ""
            joined += f" (follow-up of {m.follow_up_of})" if m.follow_up_of else ""
            text = f"{kind} to {m.account} from {m.author.id}{joined}: {m.masked_text[:80]}"
        case DispatchOrdered():
            final = ", final" if m.final else ""
            text = (
                f"hop {m.hop}: {m.from_unit} → {m.to_unit}{final} "
                f"({m.category}, {m.urgency.value}, {m.mode.value})"
            )
        case CoordinationRequested():
            text = f"coordination: {m.partner_name} as {m.role} ({m.rule})"
        case SupervisionOrdered():
            text = f"supervision level {m.level}: {m.from_unit} → {m.to_unit}: {m.reason}"
        case UnitActed():
            text = f"{m.unit_id} {m.action.value}" + (f": {m.note}" if m.note else "")
        case CaseEventRecorded():
            before = f"{m.previous_state.value} → " if m.previous_state else ""
            text = f"{m.event}: {before}{m.state.value}" + (f" ({m.detail})" if m.detail else "")
        case ReplyRequested():
            text = f"reply requested: {m.purpose.value} by {m.channel.value} (hop {m.hop})"
        case ReplySent():
            said = m.text or m.error or ""
            text = f"reply {m.status}: {m.purpose.value}" + (f": {said}" if said else "")
        case _:
            text = type(m).__name__
    return mask_pii(text)[0]


def store_filter(query: str, by: By) -> dict[str, Any]:
    """The filter on the tracker's `cases` collection that finds `query` as `by` says."""
    tests: dict[str, dict[str, Any]] = {
        "id": {"_id": query},
        "author": {"author_id": query},
        "account": {"account": query},
        "text": {"masked_text": {"$regex": re.escape(query)}},
    }
    return {"$or": list(tests.values())} if by == "any" else tests[by]


async def stored(
    settings: StackSettings, query: str, *, by: By = "any", limit: int = 20
) -> list[dict[str, Any]]:
    """The views of the cases `query` finds in the tracker's store (`cases`), newest first:
    state, lead unit and the timeline (instants as ISO 8601 text)."""
    from pymongo import AsyncMongoClient

    from fengqiao.services.tracker.adapters.case_view import readable
    from fengqiao.services.tracker.settings import TrackerSettings

    database = TrackerSettings(stack=settings).database
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=3000
    )
    try:
        found = client[database]["cases"].find(store_filter(query, by))
        docs = await found.sort("received_at", -1).limit(limit).to_list()
    finally:
        await client.close()
    return [
        {
            "case_id": doc["_id"],
            "state": doc.get("state"),
            "assigned_unit": doc.get("assigned_unit"),
            "timeline": readable(doc)["timeline"],
        }
        for doc in docs
    ]


def tables(found: list[dict[str, Any]]) -> list[Table]:
    """One table per case found in the store: its timeline."""
    out = []
    for case in found:
        title = f"case {case['case_id']}: {case['state']} ({case['assigned_unit'] or '-'})"
        table = Table(title=title, title_justify="left")
        for column in ("at", "event", "state", "unit", "detail"):
            table.add_column(column, overflow="fold" if column == "detail" else "ellipsis")
        for e in case["timeline"]:
            at = e["at"][:19].replace("T", " ")
            table.add_row(at, e["event"], e["state"], e["unit_id"] or "", e["detail"] or "")
        out.append(table)
    return out
