"""Intake's subscriber: `posts.raw` → `appeals`, a poll of posts at a time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Histogram

from fengqiao.contracts import APPEALS, POSTS_RAW, AppealNormalized, RawPostReceived
from fengqiao.runtime import tracing
from fengqiao.runtime.messaging import (
    BatchFailures,
    batch_subscriber,
    is_transient,
    publish_all,
    topic_publisher,
)
from fengqiao.services.intake import domain
from fengqiao.services.intake.adapters.recent import Post, RecentAppeals, claim_key
from fengqiao.services.intake.adapters.recent_poll import Assignment, assign_cases
from fengqiao.services.intake.linking import Policy
from fengqiao.services.intake.triage import Triager, load_triager

Normalized = tuple[AppealNormalized, bool]  # the appeal, True when its case was decided now


async def normalize_raw(
    raw: RawPostReceived,
    recent: RecentAppeals,
    *,
    producer: str,
    policy: Policy,
    triager: Triager | None = None,
) -> Normalized:
    """The appeal `raw` carries, triaged, its case decided against the author's recent posts:
    (the appeal, True when its case was decided by this call rather than read back).
    `fengqiao normalize` and `fengqiao route` run exactly this: the normalizer's poll of one."""
    [result] = await normalize_many([raw], recent, producer=producer, policy=policy,
                                    triager=triager)  # fmt: skip
    if isinstance(result, Exception):
        raise result
    return result


async def normalize_many(
    raws: Sequence[RawPostReceived],
    recent: RecentAppeals,
    *,
    producer: str,
    policy: Policy,
    triager: Triager | None = None,
) -> list[Normalized | Exception]:
    """Each post's appeal, triaged, its case decided in order against its author's recent posts
    (and the posts before it here), the store's work grouped across the posts
    (`recent_poll.assign_cases`); for a post that cannot be read, why. A store failure is
    raised (no post's decision is reported)."""
    triager = triager or load_triager()
    results: list[Normalized | Exception | None] = [None] * len(raws)
    linked: list[tuple[int, domain.IncomingPost, domain.Reading]] = []
    items: list[Assignment] = []
    for index, raw in enumerate(raws):
        # The post's own work (reading, triage) in a span of its own trace; its appeal is
        # published in that span (`tracing.follow` in the handler).
        with tracing.joined_for("posts.raw process", [raw]):
            tracing.carried_on(raw)
            try:
                post = domain.read_post(raw)
                reading = domain.read_text(post.text, triager)
            except Exception as exc:  # pure code: the post, not an outage
                results[index] = exc
                continue
        if not reading.is_appeal and not (reading.cues.thanks or reading.cues.refers_back):
            # No appeal, and nothing that could tie it to one: it opens no case and joins none,
            # so the author's history is not read.
            results[index] = domain.appeal_for(raw, post, reading, producer=producer), True
            continue
        linked.append((index, post, reading))
        items.append(_assignment(raw, post, reading))
    decided = await assign_cases(recent, items, policy=policy, similarity=triager.similarity())
    for (index, post, reading), (case, fresh) in zip(linked, decided, strict=True):
        reading = domain.with_case(reading, case)
        appeal = domain.appeal_for(raws[index], post, reading, producer=producer, decided=case)
        results[index] = appeal, fresh
    return [r for r in results if r is not None]


def _assignment(
    raw: RawPostReceived, post: domain.IncomingPost, reading: domain.Reading
) -> Assignment:
    parsed = reading.parsed
    return Assignment(
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
    )


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

    The normalizer is a batch subscriber (`batch_subscriber`): each poll's posts are decided
    together (`normalize_many`), their appeals published, then the poll is committed. A post
    that cannot be read goes to dead letters alone; a store or Kafka outage is waited out and
    the poll comes again (a re-delivered post reads back its decision).

    Without `recent` every appeal is its own case (no repeats, follow-ups or reposts linked).
    With `consume=False` only the publisher is declared (a webhook-only process).
    `on_open311(request_id, case_id)` hears which case each Open311 request went to."""
    policy = policy or Policy()
    triager = triager or load_triager()
    metrics = _Metrics(registry or CollectorRegistry())
    topic_publisher(broker, POSTS_RAW)
    appeals = topic_publisher(broker, APPEALS)

    @batch_subscriber(
        broker,
        POSTS_RAW,
        group_id=group_id,
        action="normalize",
        description="Normalize raw posts into appeals, a poll at a time.",
    )
    async def normalize_posts(batch: list[RawPostReceived]) -> BatchFailures:
        started = time.perf_counter()
        kwargs: Any = {"producer": producer, "policy": policy, "triager": triager}
        results = await _normalize_poll(batch, recent, kwargs)
        each = (time.perf_counter() - started) / max(len(batch), 1)
        done = [r for r in results if not isinstance(r, Exception)]
        for raw, result in zip(batch, results, strict=True):
            if not isinstance(result, Exception):
                tracing.follow(result[0], raw)  # published in the trace of its post
        for appeal, fresh in done:
            metrics.latency.observe(each)
            if fresh:
                metrics.count(appeal)
        if on_open311 is not None:
            # Recorded before publishing: the request's case events can only follow.
            for appeal, _ in done:
                if appeal.platform == "open311" and appeal.reply_to.post_id:
                    await on_open311(appeal.reply_to.post_id, appeal.case_id)
        await publish_all((appeals, appeal) for appeal, _ in done)
        return BatchFailures({i: r for i, r in enumerate(results) if isinstance(r, Exception)})


async def _normalize_poll(
    batch: Sequence[RawPostReceived], recent: RecentAppeals | None, kwargs: Any
) -> list[Normalized | Exception]:
    if recent is None:
        return [_alone(raw, kwargs["producer"], kwargs["triager"]) for raw in batch]
    try:
        return await normalize_many(batch, recent, **kwargs)
    except Exception as exc:
        if is_transient(exc) or len(batch) == 1:
            raise
    # Not an outage: one post at a time, so that only the one that fails is dead-lettered.
    return [await _one(raw, recent, kwargs) for raw in batch]


def _alone(raw: RawPostReceived, producer: str, triager: Triager) -> Normalized | Exception:
    try:
        return domain.normalize(raw, producer=producer, triager=triager), True
    except Exception as exc:
        return exc


async def _one(raw: RawPostReceived, recent: RecentAppeals, kwargs: Any) -> Normalized | Exception:
    try:
        return (await normalize_many([raw], recent, **kwargs))[0]
    except Exception as exc:
        if is_transient(exc):
            raise
        return exc


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
            "Time to normalize a post (its share of its poll), case matching included",
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
