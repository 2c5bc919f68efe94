"""From a raw platform payload to an appeal: read the post, normalize it, give it a case id.

`read_text` does everything the text alone decides (normalization, entities, masking, language,
triage: appeal or not, urgency, category; the cues linking reads); `remembered` is what linking
keeps of a post; `appeal_for` assembles the published message once the case is decided
(`services.intake.adapters.recent.assign_case`). `normalize` is the three for a post with no
history. All pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from fengqiao.contracts import AppealNormalized, RawPostReceived, Triage, derived_event_id
from fengqiao.runtime.pii import mask_pii, phone_numbers
from fengqiao.services.intake import linking
from fengqiao.services.intake import text as textlib
from fengqiao.services.intake.linking import RecentAppeal
from fengqiao.services.intake.readers import IncomingPost, UnreadablePost, read_post
from fengqiao.services.intake.similarity import fingerprint
from fengqiao.services.intake.triage import Triage as Triaged
from fengqiao.services.intake.triage import Triager, load_triager

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
    "triage_of",
    "triage_text",
    "with_case",
]


_LONG_NUMBER = re.compile(r"\d[\d\- ]{5,}\d")  # phone, ID and card numbers, account numbers


@dataclass(frozen=True, slots=True)
class Reading:
    """What intake reads in a post's text."""

    original: str
    parsed: textlib.Parsed
    masked_text: str
    pii_kinds: list[str]
    lang: str
    triage: Triaged
    cues: linking.Cues
    fingerprint: tuple[int, ...]
    phones: frozenset[str]  # digests
    reposted: tuple[tuple[str, str], ...]  # (name, own words) of each segment it reposts

    @property
    def is_appeal(self) -> bool:
        return self.triage.is_appeal

    @property
    def text(self) -> str:
        """The normalized text."""
        return self.parsed.text


def matched_words(parsed: textlib.Parsed) -> str:
    """The words near-duplicate matching compares: the author's own, else what is reposted, else
    the emoji (a post of only "🆘", twice, is one appeal)."""
    return parsed.own_words or parsed.repost_chain or "".join(parsed.emoji)


def triage_text(original: str) -> str:
    """What triage reads of a post: the normalized text, masked (the models never learn or
    see private data). Training reads the corpus through it too."""
    return mask_pii(textlib.normalize_text(original))[0]


def read_text(original: str, triager: Triager | None = None) -> Reading:
    """Normalize `original` and read it: entities, private data, language, triage, cues."""
    parsed = textlib.parse(textlib.normalize_text(original))
    masked, pii = mask_pii(parsed.text)
    words = matched_words(parsed)
    phones = phone_numbers(parsed.text)
    return Reading(
        original=original,
        parsed=parsed,
        masked_text=masked,
        pii_kinds=pii,
        lang=textlib.language(parsed.own_words or parsed.repost_chain or parsed.text),
        triage=(triager or load_triager()).triage(masked),
        cues=linking.cues(parsed.own_words),
        # Private numbers left out: a repeat with a phone number added is still a near copy.
        fingerprint=fingerprint(_LONG_NUMBER.sub("", words)),
        phones=frozenset(linking.text_digest(p) for p in phones),
        reposted=tuple(textlib.repost_segments(parsed.repost_chain)),
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
    """What linking keeps of this post, with its own (new) case id."""
    words = mask_pii(matched_words(reading.parsed))[0]
    return RecentAppeal(
        key=post_key(raw),
        platform=post.platform,
        author=post.author.id,
        post_id=post.reply_to.post_id,
        event_id=appeal_event_id(raw),
        case_id=case_id_for(raw),
        posted_at=post.posted_at,
        fingerprint=reading.fingerprint,
        words=words[: linking.WORDS_KEPT],
        category=reading.triage.scores.category,  # the matter's, for thanks and bare posts too
        amounts=linking.amounts(words),
        phones=reading.phones,
        is_appeal=reading.is_appeal,
        urgent=reading.triage.urgent,
    )


def with_case(reading: Reading, decided: RecentAppeal) -> Reading:
    """The reading of a post once its case is known: a post that joins an urgent case, still
    asking ("还是没找到", "还没人来吗") and not thanking, is possibly urgent too."""
    triage = reading.triage
    over = reading.cues.thanks or any(h.state == "resolved" for h in triage.danger)
    if not decided.urgent_case or triage.urgent or over:
        return reading
    return replace(reading, triage=triage.escalated("urgent case"))


def triage_of(reading: Reading, decided: RecentAppeal | None) -> Triage:
    """The triage message fields: the labels, their confidences, why, and the link's reason."""
    t = reading.triage
    return Triage(
        category=t.category,
        urgent=t.urgent,
        possibly_urgent=t.possibly_urgent,
        appeal_confidence=round(t.scores.appeal, 4),
        urgent_confidence=round(t.scores.urgent, 4),
        category_confidence=round(t.scores.category_confidence, 4),
        review=list(t.review),
        reasons=t.reasons[:20],
        model=t.model_version,
        link_reason=decided.link_reason if decided else None,
        suggested_case=decided.suggested if decided else None,
        suggested_reason=decided.suggested_reason if decided else None,
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
        is_appeal=reading.is_appeal,
        triage=triage_of(reading, decided),
        geo=post.geo,
        follow_up_of=decided.follow_up_of if decided else None,
        duplicate_of=decided.duplicate_of if decided else None,
        reply_to=post.reply_to,
    )


def normalize(
    raw: RawPostReceived, *, producer: str, triager: Triager | None = None
) -> AppealNormalized:
    """The appeal `raw` carries, normalized and masked, as if its author had no history."""
    post = read_post(raw)
    return appeal_for(raw, post, read_text(post.text, triager), producer=producer)
