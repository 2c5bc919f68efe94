"""`fengqiao ops replies`: failed replies from the notifier's dead letters, by reason; which a
retry sends (issue 20, deliver 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fengqiao.contracts import ReplyChannel, ReplyPurpose, ReplyRequested, ReplyTarget
from fengqiao.ops import Refused, dlq, replies

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)


def request(case_id: str) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=AT,
        producer="tracker",
        case_id=case_id,
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account="@新疆检察", user_id="1", post_id="p"),
        template_id="acknowledgment",
        variables={"account": "@新疆检察"},
    )


def entry(offset: int, case_id: str, error_type: str, *, topic: str = "replies.requested",
          status: str = "new") -> dlq.Entry:  # fmt: skip
    return dlq.Entry(
        id=f"{topic}:0:{offset}",
        origin_topic=topic,
        origin_partition=0,
        origin_offset=offset,
        origin_key=case_id,
        error_type=error_type,
        error="not sendable: no access token for @新疆检察",
        payload=request(case_id).model_dump_json(),
        first_at=AT + timedelta(minutes=offset),
        letters=[f"{topic}.dlq:0:{offset}"],
        status=status,
        action={"at": "2026-08-01T10:09:00+00:00", "by": "ops"} if status != "new" else None,
    )


ENTRIES = [
    entry(1, "c-a", "NotSendable", status="replayed"),  # retried, and failed again:
    entry(2, "c-b", "RetriesExhausted"),
    entry(3, "c-c", "ValidationError"),  # not a failure a retry cures
    entry(4, "c-d", "NotSendable", topic="appeals"),
    entry(5, "c-a", "NotSendable"),  # its new dead letter
]


def test_failed_replies_are_the_notifiers_dead_letters_a_retry_can_cure() -> None:
    found = replies.failed_replies(ENTRIES)
    assert [(r.entry.id, r.reason) for r in found] == [
        ("replies.requested:0:1", "unsendable"),
        ("replies.requested:0:2", "exhausted"),
        ("replies.requested:0:5", "unsendable"),
    ]
    summary = found[0].summary()
    assert (summary["reply"], summary["status"]) == ("c-a:acknowledgment:0", "retried")


def test_a_retry_chooses_new_failures_by_reason_or_by_name() -> None:
    found = replies.failed_replies(ENTRIES)
    assert [r.entry.id for r in replies.choose(found, [], None)] == [
        "replies.requested:0:2",
        "replies.requested:0:5",
    ]
    assert [r.entry.id for r in replies.choose(found, [], "unsendable")] == [
        "replies.requested:0:5"
    ]
    # A reply's key names its latest failure.
    [chosen] = replies.choose(found, ["c-a:acknowledgment:0"], None)
    assert chosen.entry.id == "replies.requested:0:5"


def test_a_retry_of_a_reply_retried_already_or_unknown_is_refused() -> None:
    found = replies.failed_replies(ENTRIES)
    with pytest.raises(Refused, match=r"was retried already .* at most once"):
        replies.choose(found, ["replies.requested:0:1"], None)
    with pytest.raises(Refused, match="no failed reply 'c-x:acknowledgment:0'"):
        replies.choose(found, ["c-x:acknowledgment:0"], None)
