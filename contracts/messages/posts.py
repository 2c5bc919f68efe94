"""posts.raw and appeals: a platform's post as received, and the appeal intake makes of it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from fengqiao.contracts.envelope import AwareDatetime, CaseId, CaseMessage, Contract, Envelope

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
    urgent_hint: bool = Field(
        default=False,
        description="Danger words in the payload (intake's first look, before triage): the post "
        "travels in posts.raw's urgent lane, ahead of a backlog.",
    )

    def kafka_key(self) -> str:
        return f"{self.platform}:{self.source_id}"

    def is_urgent(self) -> bool:
        return self.urgent_hint


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

    def is_urgent(self) -> bool:
        return self.triage is not None and (self.triage.urgent or self.triage.possibly_urgent)
