"""What may be said in public, and how: rendering, the content gate, fitting text to a channel,
and which replies wait for an operator. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from fengqiao.contracts import ReplyChannel, ReplyRequested
from fengqiao.runtime.pii import pii_kinds

TEMPLATES = Path(__file__).parent / "templates"
LIMITS = {ReplyChannel.COMMENT: 140, ReplyChannel.PRIVATE_MESSAGE: 300, ReplyChannel.STATUS: 140}
PUBLIC = frozenset({ReplyChannel.COMMENT, ReplyChannel.STATUS})
# Channels whose over-long text may go out in several messages; the others are shortened.
SPLITTABLE = frozenset({ReplyChannel.PRIVATE_MESSAGE})

# Weibo links "@name" up to the next space or punctuation (as intake reads mentions).
MENTION = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")
TOPIC = re.compile(r"#[^#\s]{1,64}#")
LINK = re.compile(r"https?://[^\s\u3000-\u303f\uff01-\uff5e]+", re.IGNORECASE)
SENTENCE_END = "。！？!?；;…"
_SEPARATORS = re.compile(r"(?<=\d)[\s\-._·/\\,，、]+(?=\d)")


class ContentRefused(ValueError):
    """The reply must not be posted as it is; the message says why."""


@dataclass(frozen=True)
class ContentPolicy:
    """What the gate refuses and what waits for an operator (from the notifier's settings)."""

    sensitive_words: tuple[str, ...] = ()
    hold_categories: frozenset[str] = frozenset()
    hold_urgent: bool = False
    hold_below_confidence: float = 0.0
    safe_domain: str = ""
    limits: dict[ReplyChannel, int] = field(default_factory=lambda: dict(LIMITS))


def _clause(value: object) -> str:
    """A variable used inside a sentence: without the sentence's end the template adds."""
    return str(value).strip().rstrip(SENTENCE_END + "，,、 ")


class Renderer:
    """Renders `<template_id>.<channel>.j2`; a missing required variable is a refusal."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain text for the platform, not HTML
            keep_trailing_newline=False,
            auto_reload=False,  # compiled once: no stat of the file per reply
        )
        self._env.filters["clause"] = _clause

    def render(self, request: ReplyRequested, **extra: str) -> str:
        name = f"{request.template_id}.{request.channel.value}.j2"
        try:
            template = self._env.get_template(name)
            return template.render(**request.variables, **extra).strip()
        except jinja2.TemplateNotFound as exc:
            raise ContentRefused(f"no template {name}") from exc
        except jinja2.UndefinedError as exc:
            raise ContentRefused(f"template {name}: {exc.message}") from exc


# Format characters (zero-width spaces, joiners, direction marks...): invisible to a reader.
# Every Cf code point lies in planes 0, 1 and 14.
_INVISIBLE = dict.fromkeys(
    cp
    for cp in itertools.chain(range(0x20000), range(0xE0000, 0xE1000))
    if unicodedata.category(chr(cp)) == "Cf"
)


def _folded(text: str) -> str:
    """NFKC, format characters removed: what a reader sees."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def _private_data(text: str, folded: str) -> list[str]:
    found = pii_kinds(text) + pii_kinds(folded) + pii_kinds(_SEPARATORS.sub("", folded))
    return list(dict.fromkeys(found))


_NOT_WORD = re.compile(r"[\W_]+")


def _squeezed(folded: str) -> str:
    return _NOT_WORD.sub("", folded.casefold())


def _check(text: str, channel: ReplyChannel, policy: ContentPolicy, mentions: set[str]) -> None:
    folded = _folded(text)
    found = _private_data(text, folded)
    if found:
        raise ContentRefused(f"reply contains private data: {', '.join(found)}")
    squeezed = _squeezed(folded) if policy.sensitive_words else ""
    for word in policy.sensitive_words:
        if word.strip() and _squeezed(_folded(word)) in squeezed:
            raise ContentRefused(f"reply contains a sensitive word: {word}")
    if channel not in PUBLIC:
        return
    unexpected = sorted(set(MENTION.findall(folded)) - mentions)
    if unexpected:
        raise ContentRefused(f"reply mentions {', '.join(unexpected)}, which the request does not")
    for link in LINK.findall(folded):
        host = (urlsplit(link).hostname or "").lower()
        if not policy.safe_domain or not (
            host == policy.safe_domain or host.endswith("." + policy.safe_domain)
        ):
            raise ContentRefused(f"reply links outside the safe domain: {host or link}")
    if channel is ReplyChannel.STATUS:
        if TOPIC.search(text):
            raise ContentRefused("a shared status may not carry a #话题#")
        if not LINK.search(folded):
            raise ContentRefused("a shared status needs a link on the safe domain")


def _cut(text: str, limit: int) -> int:
    """Where to cut `text` to at most `limit` characters: after the last sentence end in the
    second half, else at the limit; never inside an @-mention."""
    end = max(text.rfind(ch, 0, limit) for ch in SENTENCE_END)
    if end + 1 >= limit // 2:
        return end + 1
    cut = limit
    for m in MENTION.finditer(text):
        if m.start() < cut < m.end():
            cut = m.start()
    return cut


def fit(text: str, channel: ReplyChannel, limit: int) -> list[str]:
    """`text` as the messages that go out: shortened at a sentence boundary, or split where
    the channel allows several messages."""
    text = text.strip()
    if len(text) <= limit:
        return [text]
    if channel not in SPLITTABLE:
        cut = _cut(text, limit)
        head = text[:cut].rstrip()
        if head and head[-1] in SENTENCE_END:
            return [head]
        return [text[: min(cut, limit - 1)].rstrip() + "…"]
    parts = []
    while len(text) > limit:
        cut = _cut(text, limit)
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts


def prepare(
    text: str,
    channel: ReplyChannel,
    policy: ContentPolicy,
    mentions: Iterable[str] = (),
    marker: str = "",
) -> list[str]:
    """The messages to post for `text`, or ContentRefused; checked just before sending. The
    last one ends with `marker` (room is kept for it within the channel's limit)."""
    allowed = {m for m in mentions if m}
    _check(text, channel, policy, allowed)
    parts = [p for p in fit(text, channel, policy.limits[channel] - len(marker)) if p]
    if not parts:
        raise ContentRefused("reply is empty")
    if parts != [text]:  # a cut may have changed what a part says (a shortened handle...)
        for part in parts:
            _check(part, channel, policy, allowed)
    if marker:
        parts[-1] += marker
    return parts


# Crockford's base 32: no I, L, O or U to misread.
_CODE = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reply_marker(request: ReplyRequested) -> str:
    """What the notifier adds to a public reply so that it can find the reply again on the
    platform (`find_posted`) after an attempt whose outcome it does not know: a receipt code
    derived from the reply's key (case, purpose, hop), e.g. `〔回执K7Q2M9〕` — to a citizen, a
    reference like the case's 编号. Private messages carry none: they cannot be looked for."""
    if request.channel not in PUBLIC:
        return ""
    digest = int.from_bytes(hashlib.sha256(request.idempotency_key.encode()).digest()[:4], "big")
    code = "".join(_CODE[(digest >> (5 * i)) & 31] for i in range(6))
    return f"〔回执{code}〕"


def mentions_of(request: ReplyRequested) -> set[str]:
    """The handles a reply may @-mention: those the request itself names."""
    return {
        h
        for name in ("account", "to_handle")
        for h in MENTION.findall(request.variables.get(name, ""))
    }


def gate(text: str, channel: ReplyChannel, policy: ContentPolicy | None = None) -> str:
    """One message's text, refused unless it may go out exactly as it is."""
    policy = policy or ContentPolicy()
    if not text:
        raise ContentRefused("reply is empty")
    _check(text, channel, policy, set(MENTION.findall(_folded(text))))
    limit = policy.limits[channel]
    if len(text) > limit:
        raise ContentRefused(f"reply is {len(text)} characters; {channel.value} allows {limit}")
    return text


# A receipt code as a person might type it (the notifier appends the reply's own; another
# reply's code in a text would let that reply be "found" on the platform without being posted).
RECEIPT = re.compile(r"回执\s*[0-9A-Z]{6}", re.IGNORECASE)


def edit_body(text: str, marker: str = "") -> str:
    """What an operator wrote, as the notifier keeps it: lines as the platform takes them,
    trimmed, without the reply's own receipt code when it was copied along."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if marker and body.endswith(marker):
        body = body[: -len(marker)].rstrip()
    return body


def edit_room(request: ReplyRequested, policy: ContentPolicy) -> int:
    """How long an operator's text may be: one message of the channel, less the receipt code."""
    return policy.limits[request.channel] - len(reply_marker(request))


def prepare_edit(text: str, request: ReplyRequested, policy: ContentPolicy) -> list[str]:
    """The message to post for a text an operator wrote in place of the template's, or
    ContentRefused: the rules of every reply (`prepare`: private data, sensitive words, only the
    request's @-mentions, links on the safe domain, a shared status's link and no #话题#), one
    message of the channel — nothing a person wrote is cut — and the receipt code the notifier
    appends, never typed by the person."""
    marker = reply_marker(request)
    body = edit_body(text, marker)
    if not body:
        raise ContentRefused("reply is empty")
    if RECEIPT.search(_folded(body)):
        raise ContentRefused("leave the receipt code (回执) out: the notifier appends it")
    room = edit_room(request, policy)
    if len(body) > room:
        besides = f" besides its receipt code {marker}" if marker else ""
        raise ContentRefused(
            f"reply is {len(body)} characters; {request.channel.value} allows {room}{besides}"
        )
    return prepare(body, request.channel, policy, mentions_of(request), marker)


# Why a reply waits, as a code (the reasons are written by `approval_reason` and `reconcile`).
HOLD_KINDS = (
    ("category ", "category"),
    ("urgent case", "urgent"),
    ("routed with confidence", "confidence"),
)


def hold_kind(reason: str | None) -> str:
    """`category`, `urgent`, `confidence` (waiting for approval) or `unknown_outcome` (an
    earlier attempt may have reached the platform)."""
    return next((kind for prefix, kind in HOLD_KINDS if (reason or "").startswith(prefix)),
                "unknown_outcome")  # fmt: skip


def approval_reason(request: ReplyRequested, policy: ContentPolicy) -> str | None:
    """Why `request` must wait for an operator's approval, or None."""
    if request.category and request.category in policy.hold_categories:
        return f"category {request.category} needs an operator's approval"
    if request.urgent and policy.hold_urgent:
        return "urgent case: replies need an operator's approval"
    confidence = request.confidence
    if confidence is not None and confidence < policy.hold_below_confidence:
        return f"routed with confidence {confidence:.2f}: replies need an operator's approval"
    return None
