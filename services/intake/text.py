"""Text normalization: folding, entities, own words, language, appeal-or-not. Pure functions.

`normalize_text` folds a post (NFKC, invisible and control characters removed, Traditional →
Simplified, whitespace folded); `parse` separates @mentions, #话题#, links, emoji and the repost
chain (`//@someone:`) from the author's own words; `language` tags the script. Whether a post is
an appeal is triage's (`services.intake.triage`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

__all__ = [
    "Lexicon",
    "LexiconFile",
    "Parsed",
    "entities",
    "fold",
    "language",
    "lexicon",
    "normalize_text",
    "own_words",
    "parse",
    "repost_segments",
    "simplify",
]

LEXICON_FILE = Path(__file__).parent / "data" / "lexicon.yaml"

# Every control (Cc), format (Cf) and surrogate (Cs) code point of Unicode 14, plus invisible
# fillers and selectors that are not in those categories but are used to dodge matching
# (U+034F, U+115F/U+1160, U+3164, U+FFA0, the variation selectors). Removed, never turned into
# spaces: "博\u200b乐" is 博乐. Tab, newline and the other whitespace controls become spaces.
# tests/unit/intake/test_text.py checks this class against `unicodedata` for every code point.
_WHITESPACE_CONTROLS = "\t\n\x0b\x0c\r\x1c-\x1f\x85"
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f"
    "\u0890\u0891\u08e2\u115f\u1160\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\u3164\ud800-\udfff\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef]"
)
_SPACE = re.compile(f"[\\s{_WHITESPACE_CONTROLS}]+")

_NAME = r"[\w\-]{1,30}"
_MENTION = re.compile(rf"@({_NAME})")
_HASHTAG = re.compile(r"#([^#\n]{1,64})#")
# ASCII only, and no comma, quote or bracket: after NFKC "，" is ",", and Chinese text often
# follows a link without a space ("https://t.cn/abc请看").
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&*+;=%]+(?<![.!?:;])", re.IGNORECASE)
_REPOST = re.compile(rf"//\s?@{_NAME}\s?[:：]")
_REPLY = re.compile(rf"^回复\s?@{_NAME}\s?[:：]")
_EMOJI = re.compile(
    "[\u2600-\u27bf\u2b00-\u2bff\u3030\u303d\u3297\u3299\U0001f000-\U0001faff\U0001fc00-\U0001fffd]"
)
_WEIBO_EMOTICON = re.compile(r"\[([\w\u4e00-\u9fff]{1,8})\]")

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufefe]")
# Letters that only one of the two Arabic-script orthographies of Xinjiang writes (see
# `language`). NFKC turns Kazakh's ٵ ٶ ٷ ٸ into a base letter plus U+0674, so U+0674 covers them.
_UYGHUR_ONLY = re.compile("[\u0626\u06d0\u06c8\u063a\u062e]")  # ئ ې ۈ غ خ
_KAZAKH_ONLY = re.compile("[\u0674\u0639\u062d]")  # ٴ ع ح


# --------------------------------------------------------------------------- folding


def fold(text: str) -> str:
    """NFKC (full-width digits, letters and punctuation become ASCII), invisible, format and
    control characters removed, whitespace runs folded to one space, ends trimmed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    return _SPACE.sub(" ", text).strip()


@cache
def _t2s() -> Any:
    import opencc  # imported late: the converter loads its dictionaries once, on first use

    return opencc.OpenCC("t2s")


def simplify(text: str) -> str:
    """Traditional Chinese → Simplified (OpenCC `t2s`); other scripts are left alone."""
    if not _HAN.search(text):
        return text
    return str(_t2s().convert(text))


def normalize_text(text: str) -> str:
    """What every later step reads: `fold`, then `simplify`."""
    return simplify(fold(text))


# --------------------------------------------------------------------------- entities


@dataclass(frozen=True, slots=True)
class Parsed:
    """A normalized post taken apart: the author's own words and everything else."""

    text: str
    own_words: str
    repost_chain: str
    mentions: tuple[str, ...]
    hashtags: tuple[str, ...]
    urls: tuple[str, ...]
    emoji: tuple[str, ...]


def parse(text: str, emoticons: frozenset[str] | None = None) -> Parsed:
    """Take apart `text` (already normalized): mentions, topics, links and emoji in order of
    appearance without repeats; own words are what the author wrote before any repost chain,
    without mentions, topics, links or emoji."""
    emoticons = lexicon().weibo_emoticons if emoticons is None else emoticons
    head, chain = _split_chain(text) if "//" in text else (text, "")
    has_url = "://" in text
    urls = _unique(_URL.findall(text)) if has_url else ()
    rest = _URL.sub(" ", text) if has_url else text
    has_mention, has_tag = "@" in rest, "#" in rest
    words = _REPLY.sub(" ", head) if head.startswith("回复") else head
    if has_url:
        words = _URL.sub(" ", words)
    if has_mention:
        words = _MENTION.sub(" ", words)
    if has_tag:
        words = _HASHTAG.sub(" ", words)
    emoji = _emoji(rest, emoticons)
    if emoji:
        words = _strip_emoji(words, emoticons)
    return Parsed(
        text=text,
        own_words=_SPACE.sub(" ", words).strip(),
        repost_chain=chain,
        mentions=_unique(_MENTION.findall(rest)) if has_mention else (),
        hashtags=_unique(h.strip() for h in _HASHTAG.findall(rest)) if has_tag else (),
        urls=urls,
        emoji=emoji,
    )


@dataclass(frozen=True)
class Entities:
    """Mentions, topics and links of a text."""

    mentions: list[str]
    hashtags: list[str]
    urls: list[str]


def entities(text: str) -> Entities:
    """@mentions, #话题# and links, in order of appearance, without repeats."""
    parsed = parse(text)
    return Entities(list(parsed.mentions), list(parsed.hashtags), list(parsed.urls))


def own_words(text: str) -> str:
    """The author's own words: before any repost chain, without mentions, topics, links, emoji."""
    return parse(text).own_words


def _split_chain(text: str) -> tuple[str, str]:
    match = _REPOST.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.start() :].strip()


def _emoji(text: str, emoticons: frozenset[str]) -> tuple[str, ...]:
    if "[" not in text:
        return _unique(_EMOJI.findall(text))
    found = [(m.start(), m.group(0)) for m in _EMOJI.finditer(text)]
    found += [
        (m.start(), m.group(0))
        for m in _WEIBO_EMOTICON.finditer(text)
        if m.group(1).lower() in emoticons
    ]
    return _unique(e for _, e in sorted(found))


def _strip_emoji(text: str, emoticons: frozenset[str]) -> str:
    text = _EMOJI.sub(" ", text)
    if "[" not in text:
        return text
    return _WEIBO_EMOTICON.sub(
        lambda m: " " if m.group(1).lower() in emoticons else m.group(0), text
    )


# --------------------------------------------------------------------------- language


def language(text: str) -> str:
    """zh, ug (Arabic-script Uyghur), kk (Arabic-script Kazakh) or mixed.

    Chinese and Arabic script are counted apart; when the smaller is more than a tenth of the
    larger the text is `mixed` (one Chinese place name in a Uyghur post is not). Uyghur and
    Kazakh share most Arabic letters; each orthography has letters the other does not write:
    Uyghur ئ (a vowel's hamza seat, in most words), ې, ۈ, غ, خ; Kazakh ٴ (the high hamza that
    marks a front-vowel word, also inside ٵ ٶ ٷ ٸ), ع (ğ) and ح (x). The side with more of its
    own letters wins; a tie (or none of either) is read as Uyghur, the larger community.
    Text with neither script (digits, Latin) is `zh`, the matrix's working language.
    """
    if not _ARABIC.search(text):
        return "zh"
    arabic = len(_ARABIC.findall(text))
    han = len(_HAN.findall(text))
    if arabic and han and min(arabic, han) / max(arabic, han) > 0.1:
        return "mixed"
    if arabic > han:
        return _arabic_language(text)
    return "zh"


def _arabic_language(text: str) -> str:
    kazakh = len(_KAZAKH_ONLY.findall(text))
    uyghur = len(_UYGHUR_ONLY.findall(text))
    return "kk" if kazakh > uyghur else "ug"


# --------------------------------------------------------------------------- words lists


class LexiconFile(BaseModel):
    """The schema of `data/lexicon.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weibo_emoticons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lexicon:
    """The words of `data/lexicon.yaml`, compiled for matching."""

    weibo_emoticons: frozenset[str]

    @classmethod
    def of(cls, data: LexiconFile) -> Lexicon:
        return cls(weibo_emoticons=frozenset(str(e).lower() for e in data.weibo_emoticons))


@cache
def lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    """The lexicon in `path`, loaded, validated and compiled once."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Lexicon.of(LexiconFile.model_validate(data))


def repost_segments(chain: str) -> list[tuple[str, str]]:
    """(name, own words) of each `//@name: text` segment of a repost chain, nearest first."""
    marks = list(_REPOST.finditer(chain))
    segments = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(chain)
        name = _MENTION.search(mark.group(0))
        words = own_words(chain[mark.end() : end])
        if name and words:
            segments.append((name.group(1), words))
    return segments


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
