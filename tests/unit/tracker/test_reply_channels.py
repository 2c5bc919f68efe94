"""Replies go back on the channel the citizen used (issue 18, deliver 3): a comment under a post
or a comment, a private message for a private message, the request's status for Open311."""

from __future__ import annotations

from datetime import timedelta

from fengqiao.contracts import (
    DispatchMode,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.domain import Case
from fengqiao.testing.factories import appeal_message, dispatch_message

from .cases import CASE, PLAIN, T0, events

ACCOUNT = "@新疆检察"


def opened_from(target: ReplyTarget, platform: str = "weibo") -> Case:
    appeal = appeal_message(case_id=CASE, occurred_at=T0, platform=platform, reply_to=target)
    return domain.open_case(domain.new_case(CASE), appeal, rules=PLAIN)


def dispatched_from(target: ReplyTarget) -> Case:
    case = opened_from(target)
    order = dispatch_message(
        event_id="order-1",
        case_id=CASE,
        occurred_at=T0 + timedelta(minutes=1),
        hop=1,
        from_unit="xj",
        to_unit="652700",
        to_tier="prefecture",
        final=True,
        to_handle="@博州检察",
        mode=DispatchMode.PUBLIC_MENTION,
    )
    return domain.record_dispatch(case, order, rules=PLAIN)


def requests(case: Case) -> list[ReplyRequested]:
    return [o.message for o in case.outbox if isinstance(o.message, ReplyRequested)]


def test_a_private_message_is_answered_by_private_message() -> None:
    target = ReplyTarget(platform="weibo", account=ACCOUNT, user_id="1000000001")
    replies = requests(dispatched_from(target))
    assert [(r.purpose, r.channel) for r in replies] == [
        (ReplyPurpose.ACKNOWLEDGMENT, ReplyChannel.PRIVATE_MESSAGE),
        (ReplyPurpose.DISPATCH_ANNOUNCEMENT, ReplyChannel.PRIVATE_MESSAGE),
    ]
    assert all(r.target.user_id == "1000000001" for r in replies)


def test_a_post_and_a_comment_are_answered_by_comment() -> None:
    for ids in ({"post_id": "p1"}, {"post_id": "p1", "comment_id": "c1"}):
        target = ReplyTarget(platform="weibo", account=ACCOUNT, user_id="u1", **ids)
        replies = requests(dispatched_from(target))
        assert {r.channel for r in replies} == {ReplyChannel.COMMENT}, ids


def test_an_open311_request_is_answered_by_its_status_not_by_a_message() -> None:
    target = ReplyTarget(platform="open311", account=ACCOUNT, user_id="app:1", post_id="r-1")
    case = opened_from(target, platform="open311")
    assert requests(case) == []
    assert case.acknowledged
    assert "case.acknowledged" in events(case)
    assert "timer:ack" not in case.effects  # no acknowledgment clock left to run out
