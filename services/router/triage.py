"""The triage queue: decisions a person should look at, and what dispatchers rule on them.

A post enters the queue when intake's triage is unsure (possibly urgent, an uncertain appeal or
category), when the router is unsure of the place, or when intake suggests an earlier case it
may belong to. The case opens at once all the same (at the prefecture when the place is unsure);
the queue never holds a case back. A dispatcher confirms the item or corrects it; every ruling is
kept as a labelled example with who made it and when (`fengqiao triage train --with-corrections`).

What a ruling changes, as messages (`effects`):
- a corrected unit, category or urgency of a dispatched case, or a confirmed uncertain place: a
  reassignment on `unit.actions` that carries the corrected labels (the router re-dispatches and
  the tracker takes the new labels and clocks from the new orders);
- a post that was no appeal, ruled one: it is dispatched now;
- a post ruled no appeal after its case opened: a note on the case for its office;
- a suggested link confirmed: the case is merged into the suggested one.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fengqiao.contracts import (
    AppealNormalized,
    UnitActed,
    UnitActionKind,
    Urgency,
    derived_event_id,
)
from fengqiao.services.router.domain import NOT_APPEAL, Decision

__all__ = ["Correction", "Item", "Ruling", "effects", "item_for"]


@dataclass(frozen=True)
class Item:
    """One post waiting for a person."""

    id: str  # the appeal's event id
    case_id: str
    received_at: datetime
    account: str
    text: str  # masked: safe to show
    review: tuple[str, ...]
    is_appeal: bool
    urgent: bool
    category: str
    confidence: dict[str, float]
    suggested_unit: str  # where the evidence points (the county when it is known)
    opened_at_unit: str | None  # where the case opened; None when no case opened
    suggested_case: str | None
    reasons: tuple[str, ...]
    model: str | None
    appeal: dict[str, Any] = field(repr=False, compare=False)  # to dispatch it when ruled one
    # Why the place: the router's evidence (kind, value, unit_id, weight), as it is dispatched.
    evidence: tuple[dict[str, Any], ...] = ()

    @property
    def dispatched(self) -> bool:
        return self.opened_at_unit is not None

    def public(self) -> dict[str, Any]:
        """What the API shows: everything but the appeal as received."""
        return {
            "id": self.id,
            "case_id": self.case_id,
            "received_at": self.received_at,
            "account": self.account,
            "text": self.text,
            "review": list(self.review),
            "is_appeal": self.is_appeal,
            "urgent": self.urgent,
            "category": self.category,
            "confidence": self.confidence,
            "suggested_unit": self.suggested_unit,
            "opened_at_unit": self.opened_at_unit,
            "suggested_case": self.suggested_case,
            "suggested_reason": (self.appeal.get("triage") or {}).get("suggested_reason"),
            "reasons": list(self.reasons),
            "evidence": list(self.evidence),
            "model": self.model,
        }


def item_for(appeal: AppealNormalized, decision: Decision, *, dispatched: bool) -> Item:
    """The queue item of a post the router decided about."""
    triage = appeal.triage
    return Item(
        id=appeal.event_id,
        case_id=appeal.case_id,
        received_at=appeal.posted_at,
        account=appeal.account,
        text=appeal.masked_text[:2000],
        review=decision.review,
        is_appeal=decision.is_appeal,
        urgent=decision.what.urgent,
        category=decision.what.category if decision.is_appeal else NOT_APPEAL,
        confidence={
            "appeal": triage.appeal_confidence if triage else 0.0,
            "urgent": triage.urgent_confidence if triage else 0.0,
            "category": triage.category_confidence if triage else 0.0,
            "place": decision.where.confidence,
        },
        suggested_unit=decision.chain[-1],
        opened_at_unit=decision.opens_at if dispatched else None,
        suggested_case=triage.suggested_case if triage else None,
        reasons=tuple(decision.what.reasons),
        model=triage.model if triage else None,
        appeal=appeal.model_dump(mode="json"),
        evidence=tuple(e.model_dump(mode="json") for e in decision.where.evidence),
    )


@dataclass(frozen=True)
class Correction:
    """What a dispatcher says is right; None keeps what triage decided."""

    is_appeal: bool | None = None
    urgent: bool | None = None
    category: str | None = None
    unit: str | None = None
    link: Literal["confirm", "reject"] | None = None
    note: str | None = None


@dataclass(frozen=True)
class Ruling:
    """A dispatcher's ruling on an item: the labels as they now stand, who, when."""

    item_id: str
    case_id: str
    action: Literal["confirm", "correct"]
    person: str
    unit: str
    at: datetime
    is_appeal: bool
    urgent: bool
    category: str
    to_unit: str
    link: Literal["confirm", "reject"] | None
    note: str | None
    text: str  # masked: the example the models learn from
    before: dict[str, Any]

    @classmethod
    def of(
        cls, item: Item, correction: Correction, *, person: str, unit: str, at: datetime
    ) -> Ruling:
        is_appeal = item.is_appeal if correction.is_appeal is None else correction.is_appeal
        urgent = item.urgent if correction.urgent is None else correction.urgent
        category = correction.category or item.category
        if not is_appeal:
            category, urgent = NOT_APPEAL, False
        elif category == NOT_APPEAL:
            category = "legal_consultation"
        changed = (is_appeal, urgent, category) != (item.is_appeal, item.urgent, item.category)
        changed |= correction.unit not in (None, item.suggested_unit)
        changed |= correction.link is not None and item.suggested_case is None
        return cls(
            item_id=item.id,
            case_id=item.case_id,
            action="correct" if changed or correction.link == "reject" else "confirm",
            person=person,
            unit=unit,
            at=at,
            is_appeal=is_appeal,
            urgent=urgent,
            category=category,
            to_unit=correction.unit or item.suggested_unit,
            link=correction.link,
            note=correction.note,
            text=item.text,
            before={
                "is_appeal": item.is_appeal,
                "urgent": item.urgent,
                "category": item.category,
                "unit": item.suggested_unit,
            },
        )


def effects(item: Item, ruling: Ruling, *, producer: str) -> list[UnitActed]:
    """The unit actions a ruling publishes (a post to dispatch now is the caller's: it needs
    the router). Event ids derive from the ruling, so a retried publish repeats them."""
    base: dict[str, Any] = {
        "occurred_at": ruling.at,
        "producer": producer,
        "case_id": item.case_id,
        "unit_id": ruling.unit,
        "person": ruling.person,
    }
    who = f"triage: {ruling.person} ({ruling.unit})"
    actions = []
    if item.dispatched and not ruling.is_appeal and item.is_appeal:
        actions.append(
            UnitActed(
                event_id=_id(ruling, "note"),
                action=UnitActionKind.NOTE,
                note=f"{who} judged this post no appeal: {ruling.note or ''}".strip(),
                **base,
            )
        )
    elif item.dispatched and ruling.is_appeal:
        relabelled = (ruling.urgent, ruling.category) != (item.urgent, item.category)
        moved = ruling.to_unit != item.opened_at_unit
        if relabelled or moved:
            actions.append(
                UnitActed(
                    event_id=_id(ruling, "reassign"),
                    action=UnitActionKind.REASSIGN,
                    target_unit=ruling.to_unit,
                    category=ruling.category,
                    urgency=Urgency.URGENT if ruling.urgent else Urgency.GENERAL,
                    note=f"{who}: {ruling.note or 'corrected in the triage queue'}",
                    **base,
                )
            )
    if ruling.link == "confirm" and item.suggested_case and item.dispatched:
        actions.append(
            UnitActed(
                event_id=_id(ruling, "merge"),
                action=UnitActionKind.MERGE,
                into_case_id=item.suggested_case,
                note=f"{who}: the same matter as {item.suggested_case}",
                **base,
            )
        )
    return actions


def _id(ruling: Ruling, what: str) -> str:
    return derived_event_id("triage", ruling.item_id, what)
