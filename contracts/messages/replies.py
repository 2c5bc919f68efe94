"""replies.requested and replies.sent: the replies the tracker wants posted, and the outcome."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from fengqiao.contracts.envelope import CaseMessage
from fengqiao.contracts.messages.posts import ReplyTarget


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


# Platforms that answer a citizen through the request's own status, not through a message: an
# Open311 client reads `GET requests/{id}.json`, which intake keeps from case.events.
STATUS_PLATFORMS = frozenset({"open311"})


def channel_for(target: ReplyTarget) -> ReplyChannel | None:
    """The channel the citizen used, where replies to them go back: a comment under the post
    or comment they wrote, a private message for a private message (a target with the user
    alone, as a Weibo push of a private message gives), None for a platform that answers through
    the request's status (Open311)."""
    if target.platform in STATUS_PLATFORMS:
        return None
    if target.post_id or target.comment_id or not target.user_id:
        return ReplyChannel.COMMENT
    return ReplyChannel.PRIVATE_MESSAGE


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
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The router's confidence in the case's jurisdiction, once dispatched; "
        "replies below the notifier's threshold may be held for an operator's approval.",
    )

    @property
    def idempotency_key(self) -> str:
        """At most one reply per (case, purpose, hop)."""
        return f"{self.case_id}:{self.purpose.value}:{self.hop}"

    def kafka_key(self) -> str:
        """Keyed by the account that posts it, not the case: one partition, so one notifier
        replica, owns an account and holds its whole rate-limit budget (a case's replies all go
        to the account of its `reply_to`, so they stay in order too)."""
        return f"{self.target.platform}:{self.target.account}"

    def is_urgent(self) -> bool:
        return self.urgent


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
