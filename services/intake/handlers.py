"""Intake's subscriber: `posts.raw` → `appeals`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Histogram

from fengqiao.contracts import APPEALS, POSTS_RAW, AppealNormalized, RawPostReceived
from fengqiao.runtime.messaging import publish_to, topic_publisher, topic_subscriber
from fengqiao.services.intake import domain
from fengqiao.services.intake.adapters.recent import Post, RecentAppeals, assign_case, claim_key
from fengqiao.services.intake.linking import Policy
from fengqiao.services.intake.triage import Triager, load_triager


async def normalize_raw(
    raw: RawPostReceived,
    recent: RecentAppeals,
    *,
    producer: str,
    policy: Policy,
    triager: Triager | None = None,
) -> tuple[AppealNormalized, bool]:
    """The appeal `raw` carries, triaged, its case decided against the author's recent posts:
    (the appeal, True when its case was decided by this call rather than read back).
    The normalizer, `fengqiao normalize` and `fengqiao route` all run exactly this."""
    triager = triager or load_triager()
    post = domain.read_post(raw)
    reading = domain.read_text(post.text, triager)
    if not reading.is_appeal and not (reading.cues.thanks or reading.cues.refers_back):
        # No appeal, and nothing that could tie it to one: it opens no case and joins none,
        # so the author's history is not read.
        return domain.appeal_for(raw, post, reading, producer=producer), True
    parsed = reading.parsed
    decided, fresh = await assign_case(
        recent,
        domain.remembered(raw, post, reading),
        Post(
            cues=reading.cues,
            name=post.author.name,
            own_words=parsed.own_words,
            reposted=reading.reposted,
        ),
        claim=claim_key(
            post.platform, post.author.id, domain.matched_words(parsed), post.posted_at
        ),
        policy=policy,
        similarity=triager.similarity(),
    )
    reading = domain.with_case(reading, decided)
    return domain.appeal_for(raw, post, reading, producer=producer, decided=decided), fresh


def register(
    broker: KafkaBroker,
    *,
    producer: str,
    group_id: str,
    recent: RecentAppeals | None = None,
    policy: Policy | None = None,
    triager: Triager | None = None,
    registry: CollectorRegistry | None = None,
    consume: bool = True,
    on_open311: Callable[[str, str], Awaitable[None]] | None = None,
) -> None:
    """Register the normalizer, and declare the `posts.raw` publisher for AsyncAPI (the webhooks
    write through a `DirectPublisher` of that topic, see `app.py`).

    Without `recent` every appeal is its own case (no repeats, follow-ups or reposts linked).
    With `consume=False` only the publisher is declared (a webhook-only process).
    `on_open311(request_id, case_id)` hears which case each Open311 request went to."""
    policy = policy or Policy()
    triager = triager or load_triager()
    metrics = _Metrics(registry or CollectorRegistry())
    topic_publisher(broker, POSTS_RAW)
    appeals = topic_publisher(broker, APPEALS)

    if not consume:
        return

    @topic_subscriber(
        broker,
        POSTS_RAW,
        group_id=group_id,
        action="normalize",
        description="Normalize a raw post into an appeal.",
    )
    async def normalize_post(raw: RawPostReceived) -> None:
        started = time.perf_counter()
        if recent is None:
            appeal, fresh = domain.normalize(raw, producer=producer, triager=triager), True
        else:
            appeal, fresh = await normalize_raw(
                raw, recent, producer=producer, policy=policy, triager=triager
            )
        metrics.latency.observe(time.perf_counter() - started)
        if fresh:
            metrics.count(appeal)
        if on_open311 is not None and appeal.platform == "open311" and appeal.reply_to.post_id:
            # Recorded before publishing: the request's case events can only follow.
            await on_open311(appeal.reply_to.post_id, appeal.case_id)
        await publish_to(appeals, appeal)


class _Metrics:
    """What the normalizer counts: posts, appeals merged, triage reviews, and its latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.merged = Counter(
            "fengqiao_intake_appeals_merged_total",
            "Appeals joined to an earlier case, by why: duplicate or follow_up",
            ["kind"],
            registry=registry,
        )
        self.classified = Counter(
            "fengqiao_intake_posts_normalized_total",
            "Posts normalized, by whether they are appeals",
            ["is_appeal"],
            registry=registry,
        )
        self.review = Counter(
            "fengqiao_intake_triage_review_total",
            "Posts triage sends to a person, by why (possibly_urgent, uncertain_category...)",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "fengqiao_intake_normalize_seconds",
            "Time to normalize one post, case matching included",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=registry,
        )

    def count(self, appeal: AppealNormalized) -> None:
        """Count an appeal decided now (a re-delivery read back is not counted again)."""
        self.classified.labels(str(appeal.is_appeal).lower()).inc()
        if appeal.triage is not None:
            for why in appeal.triage.review:
                self.review.labels(why).inc()
        if appeal.duplicate_of:
            self.merged.labels("duplicate").inc()
        elif appeal.follow_up_of:
            self.merged.labels("follow_up").inc()
