"""unit.actions and case.events: what an office did on a case, and every change in its life."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from fengqiao.contracts.envelope import AwareDatetime, CaseId, CaseMessage, UnitId
from fengqiao.contracts.messages.dispatch import Urgency

# --------------------------------------------------------------------------- unit.actions


class UnitActionKind(StrEnum):
    ACCEPT = "accept"
    PROGRESS = "progress"
    RESOLVE = "resolve"
    RETURN = "return"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    REFUSE_EXTENSION = "refuse_extension"
    NOTE = "note"
    REASSIGN = "reassign"
    AWAIT_CITIZEN = "await_citizen"  # the office asked the citizen something: clocks pause
    MERGE = "merge"  # an operator found the case a duplicate of another: it ends, merged


class UnitActed(CaseMessage):
    """What an office did on a case (签收, progress, 办结, 退单, 延期...)."""

    type: Literal["unit.acted"] = "unit.acted"
    unit_id: UnitId = Field(description="The acting unit.")
    person: str | None = Field(
        default=None,
        max_length=200,
        description="The person who acted, as authenticated (`local:wang.li`, `oidc:…`); "
        "absent from older producers and from actions no person took.",
    )
    action: UnitActionKind = Field(description="What it did.")
    note: str | None = Field(default=None, max_length=2000, description="Free text (masked).")
    reason_code: str | None = Field(default=None, max_length=64, description="Return reason code.")
    outcome: str | None = Field(default=None, max_length=2000, description="Resolution outcome.")
    amount_recovered: float | None = Field(default=None, ge=0, description="Yuan recovered.")
    requested_deadline: AwareDatetime | None = Field(
        default=None, description="New deadline asked for or approved."
    )
    target_unit: UnitId | None = Field(
        default=None, description="reassign: the unit the case goes to (an operator's choice)."
    )
    into_case_id: CaseId | None = Field(
        default=None, description="merge: the case this one duplicates (an operator's choice)."
    )
    category: str | None = Field(
        default=None,
        max_length=32,
        description="reassign: the category a dispatcher corrected it to (else unchanged).",
    )
    urgency: Urgency | None = Field(
        default=None,
        description="reassign: the time-limit class a dispatcher corrected it to.",
    )


# --------------------------------------------------------------------------- case.events


class CaseState(StrEnum):
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CALLBACK_PENDING = "callback_pending"
    CLOSED = "closed"
    RETURNED = "returned"
    COORDINATING = "coordinating"
    EXTENDED = "extended"
    REOPENED = "reopened"
    MERGED = "merged"


class CaseEventRecorded(CaseMessage):
    """A change in a case's life: state changes, reminders, escalations, callback results."""

    type: Literal["case.event"] = "case.event"
    event: str = Field(
        max_length=64, description="What happened, e.g. case.opened, case.dispatched."
    )
    state: CaseState = Field(description="The case's state after it.")
    previous_state: CaseState | None = Field(default=None, description="The state before it.")
    unit_id: UnitId | None = Field(default=None, description="The unit concerned, if any.")
    person: str | None = Field(
        default=None, max_length=200, description="The person who acted, if a person did."
    )
    caused_by: str = Field(max_length=64, description="event_id of the message that caused it.")
    detail: str | None = Field(default=None, max_length=2000, description="Human-readable detail.")
