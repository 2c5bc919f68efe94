"""One model per topic: what each message means and holds.

Names follow the usual convention: commands are imperative (`ReplyRequested` is the exception the
topic name forces), events past tense. Every field has a description; they become the AsyncAPI
documentation in `docs/asyncapi/`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from fengqiao.contracts.envelope import (
    AwareDatetime,
    CaseId,
    CaseMessage,
    Contract,
    Envelope,
    UnitId,
)

# --------------------------------------------------------------------------- posts.raw


class RawPostReceived(Envelope):
    """A platform payload exactly as received, before any interpretation."""

    type: Literal["post.received"] = "post.received"
    platform: str = Field(
        min_length=1, max_length=32, description="Platform: weibo, open311, generic, ..."
    )
    channel: str = Field(
        min_length=1,
        max_length=32,
        description="How it came: push, poll, open311, webhook.",
    )
    account: str = Field(
        min_length=1, max_length=64, description="The matrix account (or source) it reached."
    )
    source_id: str = Field(
        min_length=1,
        max_length=200,
        description="The platform's id of the post, or a digest of its identifying fields when "
        "the platform gives none; (platform, source_id) identifies a post across re-sends.",
    )
    delivery_id: str = Field(
        min_length=1, max_length=64, description="Our id of this HTTP delivery or poll result."
    )
    payload: dict[str, Any] = Field(description="The platform's JSON body, unchanged.")

    def kafka_key(self) -> str:
        return f"{self.platform}:{self.source_id}"


# --------------------------------------------------------------------------- appeals


class Author(Contract):
    """Who wrote a post, as far as the platform tells."""

    id: str = Field(min_length=1, max_length=128, description="Platform user id.")
    name: str | None = Field(default=None, max_length=128, description="Display name, if given.")
    stated_residence: str | None = Field(
        default=None, max_length=128, description="Where the author says they live, if known."
    )


class GeoPoint(Contract):
    """A WGS84 point."""

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees.")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees.")


class ReplyTarget(Contract):
    """Where on the platform a reply to this appeal goes."""

    platform: str = Field(max_length=32, description="Platform the reply is posted on.")
    account: str = Field(max_length=64, description="Matrix account that replies.")
    user_id: str | None = Field(default=None, max_length=128, description="Citizen's user id.")
    post_id: str | None = Field(default=None, max_length=128, description="Post to comment on.")
    comment_id: str | None = Field(default=None, max_length=128, description="Comment to reply to.")


# The category codes (domain.md), appeals first; `not_appeal` is for everything else.
CATEGORIES = (
    "wage_arrears",
    "judicial_aid",
    "personal_injury",
    "urgent_assistance",
    "complaint_appeal",
    "crime_report",
    "public_interest",
    "legal_consultation",
    "minors",
    "other_agency",
    "not_appeal",
)


class Triage(Contract):
    """What intake's triage decided about a post, how sure it is, and why."""

    category: str = Field(max_length=32, description="Category code (domain.md); not_appeal.")
    urgent: bool = Field(description="Risk to life or safety: certain, or possible.")
    possibly_urgent: bool = Field(
        default=False,
        description="Urgent but not certain: treated as urgent, and a person confirms it.",
    )
    appeal_confidence: float = Field(ge=0, le=1, description="P(appeal), calibrated.")
    urgent_confidence: float = Field(ge=0, le=1, description="P(urgent), calibrated.")
    category_confidence: float = Field(ge=0, le=1, description="P(category), calibrated.")
    review: list[str] = Field(
        default_factory=list,
        description="Why a person should look: possibly_urgent, uncertain_appeal, "
        "uncertain_category. Empty when nobody needs to.",
    )
    reasons: list[str] = Field(
        default_factory=list, max_length=20, description="The evidence, a few words each."
    )
    model: str = Field(max_length=64, description="Version of the triage model that decided.")
    link_reason: str | None = Field(
        default=None, max_length=200, description="Why it joined the case it did, if it joined one."
    )
    suggested_case: CaseId | None = Field(
        default=None,
        description="A case it may belong to, not joined: a dispatcher confirms or rejects it.",
    )
    suggested_reason: str | None = Field(
        default=None, max_length=200, description="Why that case was suggested."
    )


class AppealNormalized(CaseMessage):
    """A post turned into clean, private-data-safe text, with the case it belongs to."""

    type: Literal["appeal.normalized"] = "appeal.normalized"
    post_event_id: str = Field(max_length=64, description="event_id of the posts.raw message.")
    platform: str = Field(max_length=32, description="Platform the post came from.")
    channel: str = Field(max_length=32, description="How it came (push, poll, webhook...).")
    account: str = Field(max_length=64, description="The matrix account it reached.")
    author: Author = Field(description="Who wrote it.")
    posted_at: AwareDatetime = Field(description="When the author posted it.")
    original_text: str = Field(max_length=20000, description="The text as posted.")
    text: str = Field(max_length=20000, description="Normalized text (NFKC, folded, trimmed).")
    masked_text: str = Field(
        max_length=20000, description="Normalized text with private data masked; safe to show."
    )
    mentions: list[str] = Field(default_factory=list, description="@-mentioned names.")
    hashtags: list[str] = Field(default_factory=list, description="#话题# topics.")
    urls: list[str] = Field(default_factory=list, description="Links in the post.")
    pii_kinds: list[str] = Field(
        default_factory=list,
        description="Kinds of private data found: phone, id_number, bank_card.",
    )
    lang: str = Field(max_length=8, description="Language tag: zh, ug, kk or mixed.")
    is_appeal: bool = Field(description="False for praise, news, jokes, ads and spam.")
    geo: GeoPoint | None = Field(default=None, description="Where the post was sent from.")
    follow_up_of: CaseId | None = Field(
        default=None,
        description="Set when this post adds to an existing open case: a follow-up about it, or "
        "a near-duplicate of an appeal in it (then `duplicate_of` is set too).",
    )
    duplicate_of: str | None = Field(
        default=None,
        max_length=64,
        description="event_id of the earlier appeal this post repeats (the same author, the same "
        "problem, to another account or again within the window); merged into its case.",
    )
    emoji: list[str] = Field(
        default_factory=list, description="Emoji and platform emoticons ([赞]) in the post."
    )
    reply_to: ReplyTarget = Field(description="Where replies to this appeal are posted.")
    triage: Triage | None = Field(
        default=None,
        description="Urgency, category and confidences (intake decides them, with `is_appeal`).",
    )


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
    caused_by: str = Field(max_length=64, description="event_id of the message that caused it.")
    detail: str | None = Field(default=None, max_length=2000, description="Human-readable detail.")


# --------------------------------------------------------------------------- replies


class ReplyPurpose(StrEnum):
    ACKNOWLEDGMENT = "acknowledgment"
    DISPATCH_ANNOUNCEMENT = "dispatch_announcement"
    PROGRESS = "progress"
    RESOLUTION = "resolution"
    CALLBACK_QUESTION = "callback_question"
    EXTENSION_NOTICE = "extension_notice"
    COORDINATION_NOTICE = "coordination_notice"


class ReplyChannel(StrEnum):
    COMMENT = "comment"
    PRIVATE_MESSAGE = "private_message"
    STATUS = "status"  # a post on the account's own timeline (Weibo statuses/share)


class ReplyRequested(CaseMessage):
    """A reply the tracker wants posted; the notifier renders and sends it."""

    type: Literal["reply.requested"] = "reply.requested"
    purpose: ReplyPurpose = Field(description="Why the reply is sent.")
    hop: int = Field(default=0, ge=0, description="Dispatch hop it belongs to (0 if none).")
    channel: ReplyChannel = Field(description="Public comment or private message.")
    target: ReplyTarget = Field(description="Where it goes.")
    template_id: str = Field(max_length=64, description="Template to render, e.g. acknowledgment.")
    variables: dict[str, str] = Field(
        default_factory=dict, description="Template variables; already masked."
    )
    category: str | None = Field(
        default=None,
        max_length=32,
        description="The case's category code, if known; replies in categories the notifier is "
        "configured to hold wait for an operator's approval.",
    )
    urgent: bool = Field(
        default=False,
        description="True for an urgent case (risk to life or safety); its public replies may be "
        "held for an operator's approval.",
    )

    @property
    def idempotency_key(self) -> str:
        """At most one reply per (case, purpose, hop)."""
        return f"{self.case_id}:{self.purpose.value}:{self.hop}"


class ReplySent(CaseMessage):
    """The platform's answer to a reply: its message id, or the final failure."""

    type: Literal["reply.sent"] = "reply.sent"
    request_event_id: str = Field(max_length=64, description="event_id of the ReplyRequested.")
    idempotency_key: str = Field(max_length=200, description="(case, purpose, hop) key.")
    purpose: ReplyPurpose = Field(description="Why the reply was sent.")
    status: Literal["sent", "failed", "held"] = Field(description="Outcome.")
    platform_message_id: str | None = Field(
        default=None, max_length=128, description="The platform's id of the posted reply."
    )
    text: str | None = Field(default=None, max_length=2000, description="What the public saw.")
    error: str | None = Field(default=None, max_length=2000, description="Final error, if failed.")


# --------------------------------------------------------------------------- <topic>.dlq


class DeadLetter(Envelope):
    """A message a consumer could not process, with the error and where it came from."""

    type: Literal["dead_letter"] = "dead_letter"
    origin_topic: str = Field(max_length=200, description="Topic the message was read from.")
    origin_partition: int = Field(ge=0, description="Its partition.")
    origin_offset: int = Field(ge=0, description="Its offset.")
    origin_key: str | None = Field(default=None, max_length=400, description="Its key, if any.")
    consumer: str = Field(max_length=64, description="The consumer group that failed.")
    error_type: str = Field(max_length=200, description="Exception class.")
    error: str = Field(max_length=4000, description="Error message (no private data).")
    payload: str = Field(description="The message body as text (UTF-8, replaced if invalid).")

    def kafka_key(self) -> str:
        return (
            self.origin_key or f"{self.origin_topic}:{self.origin_partition}:{self.origin_offset}"
        )


__all__ = [
    "CATEGORIES",
    "AppealNormalized",
    "Author",
    "CaseEventRecorded",
    "CaseId",
    "CaseState",
    "CoordinationRequested",
    "DeadLetter",
    "DispatchMode",
    "DispatchOrdered",
    "Evidence",
    "GeoPoint",
    "RawPostReceived",
    "ReplyChannel",
    "ReplyPurpose",
    "ReplyRequested",
    "ReplySent",
    "ReplyTarget",
    "SupervisionOrdered",
    "Triage",
    "UnitActed",
    "UnitActionKind",
    "Urgency",
]
