"""From a raw payload to an appeal: reading, folding, masking, the case id."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from fengqiao.contracts import RawPostReceived, ReplyTarget, derived_event_id
from fengqiao.services.intake.domain import (
    UnreadablePost,
    appeal_for,
    case_id_for,
    normalize,
    post_key,
    read_post,
    read_text,
    remembered,
)

RECEIVED = datetime(2026, 8, 1, 10, tzinfo=UTC)


def raw_post(
    text: str = "博乐市的工地拖欠工资，求助",
    *,
    source_id: str = "relay:p1",
    platform: str = "weibo",
    channel: str = "webhook",
    event_id: str | None = None,
    **payload: Any,
) -> RawPostReceived:
    body = {
        "id": "p1",
        "platform": platform,
        "account": "@新疆检察",
        "author": {"id": "u1", "name": "网友", "residence": "伊宁县"},
        "text": text,
        **payload,
    }
    extra = {"event_id": event_id} if event_id else {}
    return RawPostReceived(
        occurred_at=RECEIVED,
        producer="test",
        platform=platform,
        channel=channel,
        account="@新疆检察",
        source_id=source_id,
        delivery_id="d1",
        payload=body,
        **extra,
    )


def test_the_case_id_is_stable_for_the_same_platform_and_source_id() -> None:
    first = raw_post(event_id="e1")
    again = raw_post("另一段文字", event_id="e2")  # a re-send: new delivery, same post
    assert case_id_for(first) == case_id_for(again)
    assert normalize(first, producer="t").case_id == normalize(again, producer="t").case_id
    assert case_id_for(first) == "c-" + derived_event_id("case", "weibo", "relay:p1")[:20]


def test_another_post_or_platform_gets_another_case() -> None:
    ids = {
        case_id_for(raw_post()),
        case_id_for(raw_post(source_id="relay:p2")),
        case_id_for(raw_post(platform="wechat")),
    }
    assert len(ids) == 3


def test_a_resent_post_is_the_same_appeal() -> None:
    # The platform re-sends a post whose acknowledgment it missed: a new delivery and a new
    # raw event, but the same post. The appeal keeps its event id, so the router and the tracker
    # ignore the repeat instead of dispatching the case a second time.
    first = normalize(raw_post(event_id="e1"), producer="t")
    resent = normalize(raw_post(event_id="e2"), producer="t")
    assert resent.event_id == first.event_id
    assert resent.event_id == derived_event_id("appeal", "weibo", "relay:p1")
    assert (first.post_event_id, resent.post_event_id) == ("e1", "e2")


def test_another_post_is_another_appeal() -> None:
    first = normalize(raw_post(), producer="t")
    assert normalize(raw_post(source_id="relay:p2"), producer="t").event_id != first.event_id
    assert normalize(raw_post(platform="wechat"), producer="t").event_id != first.event_id


def test_text_is_folded_and_private_data_masked() -> None:
    appeal = normalize(
        raw_post("  电话：１３８ １２３４ ５６７８，博\u200b乐市工地拖欠工资  "), producer="intake"
    )
    assert appeal.original_text == "  电话：１３８ １２３４ ５６７８，博\u200b乐市工地拖欠工资  "
    assert appeal.text == "电话:138 1234 5678,博乐市工地拖欠工资"
    assert appeal.masked_text == "电话:138****5678,博乐市工地拖欠工资"
    assert appeal.pii_kinds == ["phone"]
    assert appeal.producer == "intake"


def test_entities_language_and_appeal_flag() -> None:
    text = "@新疆检察 #讨薪# 博乐市工地老板拖欠我们工资三个月了，求助 https://t.cn/x"
    appeal = normalize(raw_post(text), producer="t")
    assert appeal.mentions == ["新疆检察"]
    assert appeal.hashtags == ["讨薪"]
    assert appeal.urls == ["https://t.cn/x"]
    assert appeal.lang == "zh"
    assert appeal.is_appeal


def test_praise_is_not_an_appeal() -> None:
    assert not normalize(raw_post("为你们点赞"), producer="t").is_appeal


def test_reply_to_points_at_the_post_and_its_author() -> None:
    appeal = normalize(raw_post(), producer="t")
    assert appeal.reply_to == ReplyTarget(
        platform="weibo", account="@新疆检察", user_id="relay:u1", post_id="p1", comment_id=None
    )


def test_author_and_residence_are_kept() -> None:
    appeal = normalize(raw_post(), producer="t")
    # A generic source's author is namespaced by the source (issue 19).
    assert (appeal.author.id, appeal.author.name, appeal.author.stated_residence) == (
        "relay:u1",
        "网友",
        "伊宁县",
    )


def test_posted_at_comes_from_the_post_else_from_reception() -> None:
    assert normalize(raw_post(), producer="t").posted_at == RECEIVED
    posted = normalize(raw_post(created_at="2026-07-31T20:00:00+08:00"), producer="t")
    assert posted.posted_at == datetime(2026, 7, 31, 12, tzinfo=UTC)
    assert posted.occurred_at == RECEIVED


def test_geo_is_kept() -> None:
    appeal = normalize(raw_post(geo={"lat": 44.9, "lon": 82.07}), producer="t")
    assert appeal.geo is not None
    assert (appeal.geo.lat, appeal.geo.lon) == (44.9, 82.07)


def test_read_post_refuses_an_unknown_channel() -> None:
    with pytest.raises(UnreadablePost, match="no reader for channel 'fax' of platform 'weibo'"):
        read_post(raw_post(channel="fax"))


def test_read_post_refuses_a_payload_off_its_schema() -> None:
    with pytest.raises(UnreadablePost, match="author"):
        read_post(raw_post(author={"name": "no id"}))


def test_traditional_chinese_becomes_simplified_and_the_original_is_kept() -> None:
    appeal = normalize(raw_post("博樂市工地拖欠工資，請幫幫我們"), producer="t")
    assert appeal.text == "博乐市工地拖欠工资,请帮帮我们"
    assert appeal.original_text == "博樂市工地拖欠工資，請幫幫我們"


def test_emoji_are_listed_and_kept_out_of_the_own_words() -> None:
    reading = read_text("@新疆检察 工资被拖欠😭😭[泪] #讨薪#")
    assert reading.parsed.own_words == "工资被拖欠"
    assert normalize(raw_post("工资被拖欠😭[泪]"), producer="t").emoji == ["😭", "[泪]"]


def test_reading_masks_every_kind_of_private_data() -> None:
    reading = read_text("身份证11010519491231002X 卡号6222 0200 0000 0000 000 电话13812345678")
    assert reading.pii_kinds == ["id_number", "bank_card", "phone"]
    assert reading.masked_text == "身份证110105********002X 卡号6222***********0000 电话138****5678"


def test_a_follow_up_is_recognised_in_the_own_words_only() -> None:
    assert read_text("上次反映的工资问题，怎么还没处理").cues.refers_back
    assert not read_text("工资被拖欠//@某人:还没人联系我").cues.refers_back


def test_an_appeal_with_no_history_is_its_own_case() -> None:
    appeal = normalize(raw_post(), producer="t")
    assert appeal.follow_up_of is None and appeal.duplicate_of is None


def test_a_decided_case_is_carried_into_the_appeal() -> None:
    raw = raw_post()
    post = read_post(raw)
    reading = read_text(post.text)
    own = remembered(raw, post, reading)
    assert own.key == post_key(raw) == "weibo:relay:p1"
    assert own.case_id == case_id_for(raw)
    earlier_case = "c-earlier"
    decided = replace(own, case_id=earlier_case, follow_up_of=earlier_case, duplicate_of="e0")
    appeal = appeal_for(raw, post, reading, producer="t", decided=decided)
    assert (appeal.case_id, appeal.follow_up_of, appeal.duplicate_of) == (
        earlier_case,
        earlier_case,
        "e0",
    )
    assert appeal.event_id == derived_event_id("appeal", "weibo", "relay:p1")


def test_the_language_is_read_from_the_own_words() -> None:
    assert read_text("@新疆检察 @博乐检察 ياردەم قىلىڭلار، مائاشىمىز بېرىلمىدى").lang == "ug"
