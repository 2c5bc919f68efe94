"""dispatch.orders, coordination.requests and supervision.orders: the router's and the
upper tiers' orders about a case."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from fengqiao.contracts.envelope import CaseMessage, Contract, UnitId

# --------------------------------------------------------------------------- dispatch.orders


class DispatchMode(StrEnum):
    PRIVATE_MESSAGE = "private_message"
    PUBLIC_MENTION = "public_mention"


class Urgency(StrEnum):
    """Time-limit classes, after the 12345 hotline rules."""

    URGENT = "urgent"
    TIMELY = "timely"
    GENERAL = "general"
    COMPLEX = "complex"


class Evidence(Contract):
    """One reason behind a routing decision."""

    kind: str = Field(
        max_length=32, description="text_place, geo, account, residence, fallback, rule..."
    )
    value: str = Field(max_length=200, description="What was seen (a place name, a rule id).")
    unit_id: UnitId | None = Field(default=None, description="The unit it points to, if any.")
    weight: float = Field(ge=0, le=1, description="How strongly it counts.")


class DispatchOrdered(CaseMessage):
    """One hop of a dispatch (派单): a unit hands the case to the unit below it."""

    type: Literal["dispatch.ordered"] = "dispatch.ordered"
    hop: int = Field(
        ge=1,
        le=64,
        description="1 for region → prefecture, 2 for the next tier...; numbering goes on "
        "across re-dispatches, so every hop of a case has its own number.",
    )
    round: int = Field(
        default=1, ge=1, description="1 for the first dispatch, 2 after the first re-dispatch..."
    )
    reason: str | None = Field(
        default=None,
        max_length=500,
        description="Why this dispatch: set on re-dispatches (return ruled on, reassignment).",
    )
    from_unit: UnitId = Field(description="The unit that dispatches.")
    to_unit: UnitId = Field(description="The unit that must act (or forward).")
    to_tier: Literal["region", "prefecture", "county"] = Field(description="Tier of to_unit.")
    final: bool = Field(description="True when to_unit is the unit that handles the case.")
    chain: list[UnitId] = Field(min_length=1, description="The whole chain, top to bottom.")
    mode: DispatchMode = Field(description="Private message or public @-mention.")
    to_handle: str | None = Field(
        default=None, max_length=64, description="Platform handle of to_unit, e.g. @博乐检察."
    )
    lead_unit: UnitId = Field(description="主办: the unit that leads.")
    co_units: list[UnitId] = Field(default_factory=list, description="协办: co-handling units.")
    cc_units: list[UnitId] = Field(
        default_factory=list,
        description="Units copied (抄送), e.g. the prefecture under the direct policy.",
    )
    category: str = Field(max_length=32, description="Category code (domain.md).")
    urgency: Urgency = Field(description="Time-limit class.")
    evidence: list[Evidence] = Field(default_factory=list, description="Why this unit.")
    confidence: float = Field(ge=0, le=1, description="Confidence in the jurisdiction.")

    def is_urgent(self) -> bool:
        return self.urgency is Urgency.URGENT


# --------------------------------------------------------------------------- coordination


class CoordinationRequested(CaseMessage):
    """横协调: the case needs an agency outside the procuratorate (police, labour inspection...)."""

    type: Literal["coordination.requested"] = "coordination.requested"
    from_unit: UnitId = Field(description="The procuratorate unit that asks.")
    partner_kind: str = Field(
        max_length=32, description="police, court, labour_inspection, culture_tourism..."
    )
    partner_name: str = Field(max_length=128, description="The agency, e.g. 博乐市公安局.")
    partner_inferred: bool = Field(description="True when the agency's name is not confirmed.")
    role: Literal["lead", "co_handler"] = Field(
        description="lead: the matter is the partner's (the unit follows it up); co_handler: "
        "the unit leads and the partner helps (e.g. labour inspection on wage arrears)."
    )
    category: str = Field(max_length=32, description="Category code of the case.")
    rule: str = Field(max_length=64, description="The coordination rule that fired.")


class SupervisionOrdered(CaseMessage):
    """纵督促: an upper-tier unit orders a lower one to act on a case (or to act faster)."""

    type: Literal["supervision.ordered"] = "supervision.ordered"
    from_unit: UnitId = Field(description="The supervising (upper-tier) unit.")
    to_unit: UnitId = Field(description="The supervised (lower-tier) unit.")
    reason: str = Field(max_length=500, description="What is asked and why.")
    level: int = Field(
        default=1, ge=1, description="1 for the first supervision, 2 when it goes up again..."
    )
