"""From a raw platform payload to an appeal: read the post, normalize it, give it a case id.

`read_text` does everything the text alone decides (normalization, entities, masking, language,
appeal or not, follow-up wording, fingerprint); `remembered` is what near-duplicate matching keeps
of an appeal; `appeal_for` assembles the published message once the case is decided
(`services.intake.adapters.recent.assign_case`). `normalize` is the three for a post with no
history. All pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import AppealNormalized, RawPostReceived, derived_event_id
from fengqiao.pii import mask_pii
from services.intake import text as textlib
from services.intake.readers import IncomingPost, UnreadablePost, read_post
from services.intake.similarity import RecentAppeal, fingerprint

__all__ = [
    "IncomingPost",
    "Reading",
    "UnreadablePost",
    "appeal_event_id",
    "appeal_for",
    "case_id_for",
    "matched_words",
    "normalize",
    "post_key",
    "read_post",
    "read_text",
    "remembered",
]


@dataclass(frozen=True, slots=True)
class Reading:
    """What intake reads in a post's text."""

    original: str
    parsed: textlib.Parsed
    masked_text: str
    pii_kinds: list[str]
    lang: str
    verdict: textlib.Verdict
    refers_back: bool
    fingerprint: tuple[int, ...]

    @property
    def text(self) -> str:
        """The normalized text."""
        return self.parsed.text


def matched_words(parsed: textlib.Parsed) -> str:
    """The words near-duplicate matching compares: the author's own, else what is reposted, else
    the emoji (a post of only "🆘", twice, is one appeal)."""
    return parsed.own_words or parsed.repost_chain or "".join(parsed.emoji)


def read_text(original: str) -> Reading:
    """Normalize `original` and read it: entities, private data, language, appeal or not."""
    parsed = textlib.parse(textlib.normalize_text(original))
    masked, pii = mask_pii(parsed.text)
    return Reading(
        original=original,
        parsed=parsed,
        masked_text=masked,
        pii_kinds=pii,
        lang=textlib.language(parsed.own_words or parsed.repost_chain or parsed.text),
        verdict=textlib.classify(parsed),
        refers_back=textlib.is_follow_up(parsed.own_words),
        # Unmasked: the same phone number in two posts is evidence that they are one appeal.
        fingerprint=fingerprint(matched_words(parsed)),
    )


def post_key(raw: RawPostReceived) -> str:
    """The post across re-sends: platform and the platform's id."""
    return f"{raw.platform}:{raw.source_id}"


def case_id_for(raw: RawPostReceived) -> str:
    """A case id determined by the post, so a re-sent post maps to the same case."""
    return "c-" + derived_event_id("case", raw.platform, raw.source_id)[:20]


def appeal_event_id(raw: RawPostReceived) -> str:
    """Determined by the post, not by this delivery of it: a platform's re-send is the same
    appeal, which the router and the tracker then ignore as a repeat."""
    return derived_event_id("appeal", raw.platform, raw.source_id)


def remembered(raw: RawPostReceived, post: IncomingPost, reading: Reading) -> RecentAppeal:
    """What matching keeps of this appeal, with its own (new) case id."""
    return RecentAppeal(
        key=post_key(raw),
        platform=post.platform,
        author=post.author.id,
        post_id=post.reply_to.post_id,
        event_id=appeal_event_id(raw),
        case_id=case_id_for(raw),
        posted_at=post.posted_at,
        fingerprint=reading.fingerprint,
    )


def appeal_for(
    raw: RawPostReceived,
    post: IncomingPost,
    reading: Reading,
    *,
    producer: str,
    decided: RecentAppeal | None = None,
) -> AppealNormalized:
    """The appeal to publish; `decided` carries the case matching gave it (None: its own)."""
    parsed = reading.parsed
    return AppealNormalized(
        event_id=decided.event_id if decided else appeal_event_id(raw),
        occurred_at=raw.occurred_at,
        producer=producer,
        case_id=decided.case_id if decided else case_id_for(raw),
        post_event_id=raw.event_id,
        platform=post.platform,
        channel=post.channel,
        account=post.account,
        author=post.author,
        posted_at=post.posted_at,
        original_text=post.text,
        text=parsed.text,
        masked_text=reading.masked_text,
        mentions=list(parsed.mentions),
        hashtags=list(parsed.hashtags),
        urls=list(parsed.urls),
        emoji=list(parsed.emoji),
        pii_kinds=reading.pii_kinds,
        lang=reading.lang,
        is_appeal=reading.verdict.is_appeal,
        geo=post.geo,
        follow_up_of=decided.follow_up_of if decided else None,
        duplicate_of=decided.duplicate_of if decided else None,
        reply_to=post.reply_to,
    )


def normalize(raw: RawPostReceived, *, producer: str) -> AppealNormalized:
    """The appeal `raw` carries, normalized and masked, as if its author had no history."""
    post = read_post(raw)
    return appeal_for(raw, post, read_text(post.text), producer=producer)
