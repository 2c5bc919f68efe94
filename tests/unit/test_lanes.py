"""Urgent lanes: which messages travel in a topic's urgent lane, and that every lane is a topic
of fengqiao's like the others (created, dead-lettered, read by the same contract)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fengqiao.contracts import (
    APPEALS,
    CASE_EVENTS,
    DISPATCH_ORDERS,
    LANES,
    POSTS_RAW,
    REPLIES_REQUESTED,
    TOPICS,
    RawPostReceived,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
    Urgency,
    all_topic_names,
    lane_for,
    message_for,
)
from fengqiao.services.intake.lanes import danger_hint
from fengqiao.services.intake.triage import load_triager
from fengqiao.testing.factories import (
    appeal_message,
    dispatch_message,
    raw_post_message,
    triage_message,
)

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


def raw_post(text: str, urgent_hint: bool = False, **payload: Any) -> RawPostReceived:
    return raw_post_message(text, payload={"text": text, **payload}, urgent_hint=urgent_hint)


def reply_request(*, urgent: bool) -> ReplyRequested:
    return ReplyRequested(
        occurred_at=AT,
        producer="tracker",
        case_id="c-1",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account="@新疆检察", post_id="p1"),
        template_id="acknowledgment",
        urgent=urgent,
    )


def test_the_hops_that_hold_a_queue_have_a_lane_and_each_lane_is_a_topic() -> None:
    assert set(LANES) == {
        POSTS_RAW.name,
        APPEALS.name,
        DISPATCH_ORDERS.name,
        REPLIES_REQUESTED.name,
    }
    for name, lane in LANES.items():
        assert lane.name == f"{name}.urgent" and lane in TOPICS
        assert message_for(lane.name) is message_for(name)
        assert {lane.name, lane.dlq} <= set(all_topic_names())


def test_an_urgent_message_goes_to_its_topics_lane_and_the_others_stay() -> None:
    urgent = appeal_message(triage=triage_message(urgent=True))
    possibly = appeal_message(triage=triage_message(review=("possibly_urgent",)))
    ordinary = appeal_message()
    assert lane_for(APPEALS.name, urgent) == "appeals.urgent"
    assert lane_for(APPEALS.name, possibly) == "appeals.urgent"
    assert lane_for(APPEALS.name, ordinary) == "appeals"
    assert lane_for(CASE_EVENTS.name, urgent) == "case.events"  # no lane: no queue to skip
    assert (
        lane_for(DISPATCH_ORDERS.name, dispatch_message(urgency=Urgency.URGENT))
        == "dispatch.orders.urgent"
    )
    assert (
        lane_for(DISPATCH_ORDERS.name, dispatch_message(urgency=Urgency.GENERAL))
        == "dispatch.orders"
    )
    assert lane_for(REPLIES_REQUESTED.name, reply_request(urgent=True)).endswith(".urgent")
    assert lane_for(REPLIES_REQUESTED.name, reply_request(urgent=False)) == "replies.requested"
    assert lane_for(POSTS_RAW.name, raw_post("x", urgent_hint=True)) == "posts.raw.urgent"


def test_intakes_first_look_finds_live_danger_words_anywhere_in_a_payload() -> None:
    hint = danger_hint(load_triager().danger)
    assert hint(raw_post("救命！有人持刀闯进我家，快来救救我"))
    assert hint(raw_post("转发", quoted={"retweeted_status": {"text": "他拿刀要砍我，救命"}}))
    assert not hint(raw_post("包工头拖欠工资三万多元一直不给，请帮忙讨薪"))
    assert not hint(raw_post("我父亲在喀什市被人打伤住院，打人者不愿承担医药费"))  # weak alone
    assert not hint(raw_post("笑死我了，这电影吓死人了哈哈哈"))  # figurative, a joke
