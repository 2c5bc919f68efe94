"""From a raw platform payload to an appeal: read the post, normalize it, give it a case id."""

from __future__ import annotations

from contracts import AppealNormalized, RawPostReceived, derived_event_id
from fengqiao.pii import mask_pii
from services.intake import text as textlib
from services.intake.readers import IncomingPost, UnreadablePost, read_post

__all__ = ["IncomingPost", "UnreadablePost", "case_id_for", "normalize", "read_post"]


def case_id_for(raw: RawPostReceived) -> str:
    """A case id determined by the post, so a re-sent post maps to the same case."""
    return "c-" + derived_event_id("case", raw.platform, raw.source_id)[:20]


def normalize(raw: RawPostReceived, *, producer: str) -> AppealNormalized:
    """The appeal `raw` carries, normalized and masked."""
    post = read_post(raw)
    folded = textlib.fold(post.text)
    masked, pii = mask_pii(folded)
    found = textlib.entities(folded)
    return AppealNormalized(
        # Determined by the post, not by this delivery of it: a platform's re-send is the same
        # appeal, which the router and the tracker then ignore as a repeat.
        event_id=derived_event_id("appeal", raw.platform, raw.source_id),
        occurred_at=raw.occurred_at,
        producer=producer,
        case_id=case_id_for(raw),
        post_event_id=raw.event_id,
        platform=post.platform,
        channel=post.channel,
        account=post.account,
        author=post.author,
        posted_at=post.posted_at,
        original_text=post.text,
        text=folded,
        masked_text=masked,
        mentions=found.mentions,
        hashtags=found.hashtags,
        urls=found.urls,
        pii_kinds=pii,
        lang=textlib.language(folded),
        is_appeal=textlib.looks_like_appeal(textlib.own_words(folded)),
        geo=post.geo,
        reply_to=post.reply_to,
    )
