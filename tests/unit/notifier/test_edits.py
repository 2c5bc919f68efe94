"""A reply approved with an operator's text keeps that text on every later path (issue 19,
deliver 5): posted by the approval; by the replay of a reply that could not be sent; after an
unknown outcome reconciled, and approved again without a text. Why a reply waits, as a code."""

from __future__ import annotations

import pytest

from fengqiao.contracts import ReplyChannel
from fengqiao.services.notifier.adapters.platform import RetryableError
from fengqiao.services.notifier.domain import (
    ContentPolicy,
    ContentRefused,
    approval_reason,
    hold_kind,
    prepare_edit,
    reply_marker,
)
from fengqiao.services.notifier.reconcile import UNKNOWN
from fengqiao.services.notifier.sender import Origin
from tests.unit.notifier.test_sender import KEY, make, request

HOLD = ContentPolicy(hold_categories=frozenset({"crime_report"}))
EDIT = "您好，已收到您反映的情况，已转交属地检察院依法办理。"
MARKER = reply_marker(request())
REPLAY = Origin("replies.requested", 3, 41, replay_of="replies.requested:3:41")


async def test_an_edit_approved_without_a_token_is_what_its_replay_posts() -> None:
    tokens: dict[str, str] = {}
    n = make(tokens=tokens, policy=HOLD)
    await n.sender.handle(request(category="crime_report"))
    failed = await n.sender.decide(KEY, approve=True, operator="local:gu.min", text=EDIT)
    assert failed is not None and failed.status == "failed" and n.results.dead
    tokens["@新疆检察"] = "token-xj"
    sent = await n.sender.handle(request(category="crime_report"), REPLAY)
    assert sent is not None and sent.status == "sent"
    assert [text for _, _, text, _ in n.platform.posted] == [EDIT + MARKER]


async def test_an_edit_whose_retries_ran_out_is_looked_for_then_posted_as_edited() -> None:
    n = make(max_attempts=2, policy=HOLD)
    await n.sender.handle(request(category="crime_report"))
    n.platform.errors = [RetryableError("HTTP 503", maybe_delivered=False)] * 2
    failed = await n.sender.decide(KEY, approve=True, operator="local:gu.min", text=EDIT)
    assert failed is not None and failed.status == "failed"
    sent = await n.sender.handle(request(category="crime_report"), REPLAY)
    assert sent is not None and sent.status == "sent" and n.platform.lookups == 1
    assert [text for _, _, text, _ in n.platform.posted] == [EDIT + MARKER]


async def test_a_second_approval_after_an_unknown_outcome_posts_the_edit() -> None:
    n = make(max_attempts=1, policy=HOLD)
    await n.sender.handle(request(category="crime_report"))
    n.platform.errors = [RetryableError("timeout", maybe_delivered=True)]
    n.platform.lookup_error = RetryableError("lookup down")
    held = await n.sender.decide(KEY, approve=True, operator="local:gu.min", text=EDIT)
    assert held is not None and held.status == "held"
    [entry] = await n.sender.held()
    assert entry["why"] == "unknown_outcome" and entry["body"] == EDIT
    sent = await n.sender.decide(KEY, approve=True, operator="local:gu.min")
    assert sent is not None and sent.status == "sent"
    assert [text for _, _, text, _ in n.platform.posted] == [EDIT + MARKER]
    assert len(n.outbox.decisions) == 2  # one per hold


def test_an_edit_fits_one_message_of_its_channel_with_the_receipt_code() -> None:
    policy = ContentPolicy()
    room = 140 - len(MARKER)
    assert prepare_edit("好" * room, request(), policy) == ["好" * room + MARKER]
    with pytest.raises(ContentRefused, match=f"allows {room} besides"):
        prepare_edit("好" * (room + 1), request(), policy)
    private = request(channel=ReplyChannel.PRIVATE_MESSAGE)
    assert prepare_edit("好" * 300, private, policy) == ["好" * 300]  # no receipt code there
    with pytest.raises(ContentRefused, match="allows 300"):
        prepare_edit("好" * 301, private, policy)
    for typed in ("〔回执K7Q2M9〕", "回执ｋ７ｑ２ｍ９", "回执 abcdef"):
        with pytest.raises(ContentRefused, match="receipt code"):
            prepare_edit(f"已转交。{typed}", request(), policy)


def test_each_reason_to_hold_has_its_code() -> None:
    policy = ContentPolicy(
        hold_categories=frozenset({"minors"}), hold_urgent=True, hold_below_confidence=0.5
    )
    assert hold_kind(approval_reason(request(category="minors"), policy)) == "category"
    assert hold_kind(approval_reason(request(urgent=True), policy)) == "urgent"
    assert hold_kind(approval_reason(request(confidence=0.2), policy)) == "confidence"
    assert hold_kind(UNKNOWN) == hold_kind(None) == "unknown_outcome"
