"""Intake's text functions: folding, entities, own words, language, repost segments."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from fengqiao.services.intake.text import (
    entities,
    fold,
    language,
    normalize_text,
    own_words,
    parse,
    repost_segments,
    simplify,
)

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


def test_control_characters_are_removed_not_turned_into_spaces() -> None:
    assert fold("工资\x00被\x07拖欠\x7f\x9f") == "工资被拖欠"


def test_format_characters_are_removed() -> None:
    # U+061C Arabic letter mark, U+2066 isolate, U+180E Mongolian vowel separator, tag characters
    assert fold("博\u061c乐\u2066市\u180e\U000e0041") == "博乐市"
    assert fold("ياردەم\u061c قىلىڭ") == "ياردەم قىلىڭ"


def test_invisible_fillers_and_selectors_are_removed() -> None:
    assert fold("拖\u3164欠\ufe0f工\u034f资") == "拖欠工资"


def test_lone_surrogates_are_removed() -> None:
    folded = fold("工资\ud800拖欠")
    assert folded == "工资拖欠"
    folded.encode("utf-8")


def test_every_control_format_and_surrogate_code_point_is_removed_or_a_space() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if unicodedata.category(ch) in {"Cc", "Cf", "Cs"}:
            assert fold(f"a{ch}b") in {"ab", "a b"}, hex(code)


def test_traditional_becomes_simplified() -> None:
    assert simplify("請幫幫我，還沒人聯繫我") == "请帮帮我,还没人联系我".replace(",", "，")
    assert normalize_text("博樂市　工資\u200b") == "博乐市 工资"


def test_simplify_leaves_other_scripts_alone() -> None:
    assert simplify("ياردەم https://t.cn/AbC") == "ياردەم https://t.cn/AbC"


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


def test_own_words_leave_out_mentions_topics_links_and_emoji() -> None:
    assert own_words("@新疆检察 救救我 // 谢谢") == "救救我 // 谢谢"
    assert own_words("@博乐检察 #讨薪# 工资被拖欠😭[泪] https://t.cn/x 谢谢") == "工资被拖欠 谢谢"


def test_a_comment_reply_prefix_is_not_own_words() -> None:
    assert own_words("回复@新疆检察:还没人联系我") == "还没人联系我"


def test_an_unknown_bracket_text_stays_in_the_own_words() -> None:
    assert own_words("[求助]工资被拖欠") == "[求助]工资被拖欠"


def test_emoji_and_weibo_emoticons_in_order_without_repeats() -> None:
    assert parse("谢谢👍[赞]👍 [泪]").emoji == ("👍", "[赞]", "[泪]")


def test_a_url_ends_at_ascii_punctuation_after_folding() -> None:
    assert entities(fold("看https://t.cn/A6abc，请看")).urls == ["https://t.cn/A6abc"]
    assert entities("链接https://t.cn/abc请看").urls == ["https://t.cn/abc"]


def test_the_repost_chain_is_kept_apart() -> None:
    parsed = parse("顶 //@张三:工资被拖欠 //@李四:求助")
    assert parsed.own_words == "顶"
    assert parsed.repost_chain == "//@张三:工资被拖欠 //@李四:求助"


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("博乐市工地拖欠工资", "zh"),
        ("ياردەم قىلىڭلار، مائاشىمىز بېرىلمىدى", "ug"),
        ("ياردەم قىلىڭ 博乐市工资", "mixed"),
        ("123 abc", "zh"),
        ("", "zh"),
        # Kazakh: the high hamza (ٴ) of front-vowel words, ع for ğ.
        ("ٴبىزدىڭ جالاقىمىز بەرىلمەدى، كومەكتەسىڭىزدەر", "kk"),
        ("ٴوتىنىش، عىلىم", "kk"),
        # Presentation forms are folded by NFKC first (then ٵ is ا + ٴ).
        (fold("\u0675\u0644\u0649"), "kk"),
        # A single Chinese place name in a Uyghur post does not make it mixed.
        ("ياردەم قىلىڭلار، مائاشىمىز بېرىلمىدى، خىزمەت ھەققى 博乐", "ug"),
    ],
)
def test_language(text: str, lang: str) -> None:
    assert language(text) == lang


# --------------------------------------------------------------------------- reposts


def test_each_segment_of_a_repost_chain_with_its_name() -> None:
    post = "帮转！//@张三:扩散 //@李四: 工资被拖欠，求助 #讨薪#"
    chain = parse(normalize_text(post)).repost_chain
    # Folded (NFKC makes "，" a ","), without the topic: each segment's own words.
    assert repost_segments(chain) == [("张三", "扩散"), ("李四", "工资被拖欠,求助")]


def test_a_post_without_a_chain_has_no_segments() -> None:
    assert repost_segments(parse("工资被拖欠").repost_chain) == []
