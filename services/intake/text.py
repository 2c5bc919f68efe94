"""Text normalization: folding, entities, private data, language, appeal-or-not. Pure functions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Zero-width and format characters that survive NFKC and break matching ("博\u200b乐").
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_SPACE = re.compile(r"\s+")
_MENTION = re.compile(r"@([\w\u4e00-\u9fff-]{1,30})")
_HASHTAG = re.compile(r"#([^#\n]{1,64})#")
_URL = re.compile(r"https?://[^\s\u3000，。！？、]+", re.IGNORECASE)
_REPOST = re.compile(r"//@[\w\u4e00-\u9fff-]{1,30}[:：]")

_UYGHUR = re.compile("[\u0600-\u06ff\ufb50-\ufdff\ufe70-\ufeff]")
_HAN = re.compile("[\u4e00-\u9fff]")


def fold(text: str) -> str:
    """NFKC (full-width digits and letters become ASCII), invisible and control characters
    removed, whitespace folded to single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class Entities:
    mentions: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def entities(text: str) -> Entities:
    """@mentions, #话题# and links, in order of appearance, without repeats."""
    return Entities(
        mentions=_unique(_MENTION.findall(text)),
        hashtags=_unique(h.strip() for h in _HASHTAG.findall(text)),
        urls=_unique(_URL.findall(text)),
    )


def own_words(text: str) -> str:
    """The author's own words: the text before any repost chain (`//@someone:`)."""
    return _REPOST.split(text, maxsplit=1)[0].strip()


def language(text: str) -> str:
    """zh, ug (Arabic-script Uyghur), or mixed."""
    ug = len(_UYGHUR.findall(text))
    han = len(_HAN.findall(text))
    if ug and han:
        return "mixed" if min(ug, han) / max(ug, han) > 0.1 else ("ug" if ug > han else "zh")
    return "ug" if ug else "zh"


_NOT_APPEAL = (
    "点赞",
    "致敬",
    "辛苦了",
    "为你们点赞",
    "转发微博",
    "加微信",
    "代理",
    "优惠",
    "哈哈哈",
)
_APPEAL = (
    "求助",
    "帮忙",
    "帮帮",
    "救",
    "欠",
    "拖欠",
    "讨薪",
    "工资",
    "赔偿",
    "报警",
    "举报",
    "投诉",
    "打",
    "伤",
    "急",
    "怎么办",
    "不想活",
    "药",
    "申诉",
    "维权",
)


def looks_like_appeal(text: str) -> bool:
    """A first, conservative rule: a request for help opens a case; pure praise, reposts and
    ads do not. Doubtful posts count as appeals (a missed appeal is worse than an extra case)."""
    if any(word in text for word in _APPEAL):
        return True
    return not any(word in text for word in _NOT_APPEAL)


def _unique(items: object) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:  # type: ignore[attr-defined]
        seen.setdefault(item, None)
    return list(seen)
