"""Intake's text functions: folding, entities, own words, language, appeal or not."""

from __future__ import annotations

import pytest

from services.intake.text import entities, fold, language, looks_like_appeal, own_words

# --------------------------------------------------------------------------- fold


def test_full_width_letters_digits_and_punctuation_become_ascii() -> None:
    assert fold("ＡＢＣ１２３！（）") == "ABC123!()"


def test_full_width_phone_number_becomes_digits() -> None:
    assert fold("电话：１３８１２３４５６７８") == "电话:13812345678"


def test_zero_width_characters_are_removed() -> None:
    assert fold("博\u200b乐\u200d市\ufeff\u2060") == "博乐市"
    assert fold("1\u200b3\u200c8") == "138"


def test_soft_hyphen_and_direction_marks_are_removed() -> None:
    assert fold("伽\u00ad师\u202e县\u200e") == "伽师县"


def test_whitespace_runs_become_one_space_and_ends_are_trimmed() -> None:
    assert fold("  博乐市\n\n工地\t 拖欠\u3000工资 \u00a0 ") == "博乐市 工地 拖欠 工资"


def test_control_characters_become_spaces() -> None:
    assert fold("工资\x00被\x07拖欠") == "工资 被 拖欠"


def test_folding_is_idempotent() -> None:
    once = fold("ＡＢ\u200b  博乐\n市")
    assert fold(once) == once


# --------------------------------------------------------------------------- entities


def test_mentions_hashtags_and_urls_in_order_without_repeats() -> None:
    found = entities(
        "@新疆检察 @博乐检察 #拖欠工资# 看 https://t.cn/A6abc 和 http://x.cn/b @新疆检察 #拖欠工资#"
    )
    assert found.mentions == ["新疆检察", "博乐检察"]
    assert found.hashtags == ["拖欠工资"]
    assert found.urls == ["https://t.cn/A6abc", "http://x.cn/b"]


def test_a_url_ends_at_chinese_punctuation() -> None:
    assert entities("链接https://t.cn/abc，请看").urls == ["https://t.cn/abc"]


def test_hashtag_text_is_trimmed() -> None:
    assert entities("# 讨薪 #").hashtags == ["讨薪"]


def test_text_without_entities() -> None:
    found = entities("工资被拖欠")
    assert (found.mentions, found.hashtags, found.urls) == ([], [], [])


# --------------------------------------------------------------------------- own words


def test_own_words_stop_at_the_repost_chain() -> None:
    assert own_words("救救我 //@张三:转发 //@李四:顶") == "救救我"


def test_own_words_with_a_full_width_colon() -> None:
    assert own_words("工资没拿到//@王五：同问") == "工资没拿到"


def test_a_pure_repost_has_no_own_words() -> None:
    assert own_words("//@张三:求助 博乐市") == ""


def test_a_mention_that_is_not_a_repost_is_kept() -> None:
    assert own_words("@新疆检察 救救我 // 谢谢") == "@新疆检察 救救我 // 谢谢"


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("博乐市工地拖欠工资", "zh"),
        ("ياردەم قىلىڭلار، مائاشىمىز بېرىلمىدى", "ug"),
        ("ياردەم قىلىڭ 博乐市工资", "mixed"),
        ("123 abc", "zh"),
        # A single Chinese place name in a Uyghur post does not make it mixed.
        ("ياردەم قىلىڭلار، مائاشىمىز بېرىلمىدى، خىزمەت ھەققى 博乐", "ug"),
    ],
)
def test_language(text: str, lang: str) -> None:
    assert language(text) == lang


# --------------------------------------------------------------------------- appeal or not


@pytest.mark.parametrize(
    "text", ["求助：工资被拖欠", "孩子急需特种药怎么办", "我要举报", "有人打人"]
)
def test_requests_for_help_are_appeals(text: str) -> None:
    assert looks_like_appeal(text)


@pytest.mark.parametrize("text", ["为你们点赞", "致敬检察官，辛苦了", "加微信领优惠", "转发微博"])
def test_praise_reposts_and_ads_are_not_appeals(text: str) -> None:
    assert not looks_like_appeal(text)


def test_a_request_for_help_beats_praise() -> None:
    assert looks_like_appeal("辛苦了，求助：工资被拖欠")


def test_doubtful_posts_count_as_appeals() -> None:
    assert looks_like_appeal("今天去了博乐市")


def test_praise_reposting_an_appeal_is_judged_on_its_own_words() -> None:
    post = "为你们点赞//@某人:工资被拖欠，求助"
    assert looks_like_appeal(post)
    assert not looks_like_appeal(own_words(post))
