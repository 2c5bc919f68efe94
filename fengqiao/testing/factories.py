"""Contract messages for tests, with plausible defaults: pass only what a test is about.

appeal_message(text="伽师县拖欠工资", case_id="c-1")
triage_message("urgent_assistance", urgent=True, review=("possibly_urgent",))
dispatch_message(hop=2, from_unit="652700", to_unit="652701", final=True)
final_hop_message(event_id="order-2")  # the same final hop
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fengqiao.contracts import (
    AppealNormalized,
    Author,
    DispatchMode,
    DispatchOrdered,
    RawPostReceived,
    ReplyTarget,
    Triage,
    Urgency,
)

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)


def raw_post_message(text: str, source_id: str = "p1", **overrides: Any) -> RawPostReceived:
    """A Weibo push to @新疆检察 as intake stores it, its payload's text `text`."""
    fields: dict[str, Any] = {
        "occurred_at": AT,
        "producer": "intake",
        "platform": "weibo",
        "channel": "push",
        "account": "@新疆检察",
        "source_id": source_id,
        "delivery_id": source_id,
        "payload": {"text": text},
    }
    return RawPostReceived(**{**fields, **overrides})


def appeal_message(text: str = "博乐市的工地拖欠工资，求助", **overrides: Any) -> AppealNormalized:
    """An appeal to @新疆检察; `text` fills original, normalized and masked text alike."""
    fields: dict[str, Any] = {
        "event_id": "appeal-1",
        "occurred_at": AT,
        "producer": "intake",
        "case_id": "c-1",
        "post_event_id": "raw-1",
        "platform": "weibo",
        "channel": "webhook",
        "account": "@新疆检察",
        "author": Author(id="u1"),
        "posted_at": AT,
        "original_text": text,
        "text": text,
        "masked_text": text,
        "lang": "zh",
        "is_appeal": True,
        "reply_to": ReplyTarget(platform="weibo", account="@新疆检察"),
        "triage": triage_message(),
    }
    return AppealNormalized(**{**fields, **overrides})


def triage_message(
    category: str = "wage_arrears",
    *,
    urgent: bool = False,
    review: tuple[str, ...] = (),
    **overrides: Any,
) -> Triage:
    """Intake's triage of an appeal: sure of it unless `review` says what a person checks."""
    fields: dict[str, Any] = {
        "category": category,
        "urgent": urgent,
        "possibly_urgent": "possibly_urgent" in review,
        "appeal_confidence": 0.99,
        "urgent_confidence": 0.9 if urgent else 0.01,
        "category_confidence": 0.6 if "uncertain_category" in review else 0.95,
        "review": list(review),
        "reasons": [f"category {category}"],
        "model": "triage-test",
    }
    return Triage(**{**fields, **overrides})


def dispatch_message(**overrides: Any) -> DispatchOrdered:
    """Hop 1 of a wage-arrears case, xj → 652700 (博州), on its way to 652701 (博乐市)."""
    fields: dict[str, Any] = {
        "occurred_at": AT,
        "producer": "router",
        "case_id": "c-1",
        "hop": 1,
        "from_unit": "xj",
        "to_unit": "652700",
        "to_tier": "prefecture",
        "final": False,
        "chain": ["xj", "652700", "652701"],
        "mode": DispatchMode.PUBLIC_MENTION,
        "lead_unit": "652701",
        "category": "wage_arrears",
        "urgency": Urgency.GENERAL,
        "confidence": 1.0,
    }
    return DispatchOrdered(**{**fields, **overrides})


def final_hop_message(**overrides: Any) -> DispatchOrdered:
    """Hop 2, the final one, of the same case: 652700 (博州) → 652701 (博乐市)."""
    final = {"hop": 2, "from_unit": "652700", "to_unit": "652701", "to_tier": "county"}
    return dispatch_message(**{**final, "final": True, **overrides})


def dispatch_to_bole(case_id: str, at: datetime, **overrides: Any) -> list[DispatchOrdered]:
    """Both hops of a case dispatched to 652701 (博乐市) through 652700 (博州), a second apart
    after `at` (event ids `order-1`, `order-2`)."""
    first, final = (
        {"event_id": f"order-{hop}", "case_id": case_id, "occurred_at": at + timedelta(seconds=hop)}
        for hop in (1, 2)
    )
    return [dispatch_message(**first, **overrides), final_hop_message(**final, **overrides)]
