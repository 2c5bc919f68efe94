"""Near-duplicates and follow-ups through the normalizer (in-memory broker, in-memory store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry

from fengqiao.contracts import APPEALS, POSTS_RAW, AppealNormalized, RawPostReceived
from fengqiao.services.intake.adapters.recent import InMemoryRecentAppeals
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import IntakeSettings

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
WAGES = "我在博乐市工地干活，老板拖欠工资三个月了，求助"


def raw_post(
    post_id: str,
    text: str = WAGES,
    *,
    author: str = "u1",
    account: str = "@新疆检察",
    at: datetime = T0,
    delivery: str = "d1",
) -> RawPostReceived:
    return RawPostReceived(
        occurred_at=at,
        producer="test",
        platform="weibo",
        channel="webhook",
        account=account,
        source_id=f"relay:{post_id}",
        delivery_id=delivery,
        payload={
            "id": post_id,
            "platform": "weibo",
            "account": account,
            "author": {"id": author},
            "text": text,
            "created_at": at.isoformat(),
        },
    )


@pytest.fixture
def recent() -> InMemoryRecentAppeals:
    return InMemoryRecentAppeals()


@pytest.fixture
def runtime(recent: InMemoryRecentAppeals):
    runtime, _ = build(IntakeSettings(), recent=recent)
    return runtime


async def normalize(runtime, *posts: RawPostReceived) -> list[AppealNormalized]:
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        for post in posts:
            await br.publish(post, POSTS_RAW.name)
    return seen


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_the_same_appeal_to_three_accounts_is_one_case(runtime) -> None:
    first, second, third = await normalize(
        runtime,
        raw_post("p1", f"@新疆检察 {WAGES}", account="@新疆检察"),
        raw_post("p2", f"@博州检察 {WAGES}!!", account="@博州检察", at=T0 + timedelta(minutes=1)),
        raw_post("p3", f"{WAGES} @博乐检察", account="@博乐检察", at=T0 + timedelta(minutes=2)),
    )
    assert first.case_id == second.case_id == third.case_id
    assert first.follow_up_of is None and first.duplicate_of is None
    assert second.duplicate_of == third.duplicate_of == first.event_id
    assert second.follow_up_of == third.follow_up_of == first.case_id
    assert len({first.event_id, second.event_id, third.event_id}) == 3
    merged = metric(runtime.registry, "fengqiao_intake_appeals_merged_total", kind="duplicate")
    assert merged == 2


async def test_a_repeat_after_the_copy_window_is_a_follow_up_and_after_60_days_new(
    runtime,
) -> None:
    first, later, much_later = await normalize(
        runtime,
        raw_post("p1"),
        raw_post("p2", at=T0 + timedelta(days=8)),
        raw_post("p3", at=T0 + timedelta(days=69)),
    )
    assert later.case_id == first.case_id
    assert later.duplicate_of is None and later.follow_up_of == first.case_id
    assert later.triage is not None and later.triage.link_reason == "same matter (1.00)"
    assert much_later.case_id not in {first.case_id}


async def test_another_author_with_the_same_words_is_another_case(runtime) -> None:
    first, other = await normalize(runtime, raw_post("p1"), raw_post("p2", author="u2"))
    assert other.case_id != first.case_id


async def test_a_follow_up_attaches_to_the_open_case(runtime) -> None:
    first, follow = await normalize(
        runtime,
        raw_post("p1"),
        raw_post("p2", "@新疆检察 怎么还没处理?还没人联系我", at=T0 + timedelta(days=9)),
    )
    assert follow.is_appeal
    assert follow.case_id == first.case_id
    assert follow.follow_up_of == first.case_id
    assert follow.duplicate_of is None
    assert metric(runtime.registry, "fengqiao_intake_appeals_merged_total", kind="follow_up") == 1


async def test_a_first_message_with_follow_up_words_is_a_new_case(runtime) -> None:
    [appeal] = await normalize(runtime, raw_post("p1", "上次反映的问题还没处理"))
    assert appeal.follow_up_of is None
    assert appeal.is_appeal


async def test_re_delivery_after_a_duplicate_yields_the_same_decision(runtime) -> None:
    first = raw_post("p1")
    dup = raw_post("p2", at=T0 + timedelta(hours=1))
    dup_again = raw_post("p2", at=T0 + timedelta(hours=1), delivery="d2")
    seen = await normalize(runtime, first, dup, dup_again)
    assert [a.case_id for a in seen] == [seen[0].case_id] * 3
    assert seen[1].event_id == seen[2].event_id
    assert seen[1].duplicate_of == seen[2].duplicate_of == seen[0].event_id
    merged = metric(runtime.registry, "fengqiao_intake_appeals_merged_total", kind="duplicate")
    assert merged == 1  # counted once, not per delivery


async def test_re_delivery_of_the_first_post_is_not_its_own_duplicate(runtime) -> None:
    seen = await normalize(runtime, raw_post("p1"), raw_post("p1", delivery="d2"))
    assert seen[0].case_id == seen[1].case_id
    assert seen[1].duplicate_of is None and seen[1].follow_up_of is None


async def test_a_post_arriving_out_of_order_gets_the_same_cases(recent) -> None:
    posts = [
        raw_post("p1"),
        raw_post("p2", f"@博州检察 {WAGES}", at=T0 + timedelta(minutes=5)),
        raw_post("p3", "还没人联系我", at=T0 + timedelta(days=9)),
    ]
    runtime, _ = build(IntakeSettings(), recent=recent)
    in_order = await normalize(runtime, *posts)
    runtime2, _ = build(IntakeSettings(), recent=InMemoryRecentAppeals())
    reversed_ = await normalize(runtime2, *reversed(posts))
    assert len({a.case_id for a in in_order}) == 1
    # The follow-up came first and found nothing: it stays its own case; the two copies merge.
    by_id = {a.reply_to.post_id: a for a in reversed_}
    assert by_id["p1"].case_id == by_id["p2"].case_id


async def test_not_appeals_never_join_or_open_cases(runtime, recent) -> None:
    seen = await normalize(runtime, raw_post("p1", "为你们点赞"), raw_post("p2", "为你们点赞"))
    assert [a.is_appeal for a in seen] == [False, False]
    assert [a.duplicate_of for a in seen] == [None, None]
    assert recent.appeals == {}


async def test_normalizer_latency_is_measured(runtime) -> None:
    await normalize(runtime, raw_post("p1"), raw_post("p2", "为你们点赞"))
    assert metric(runtime.registry, "fengqiao_intake_normalize_seconds_count") == 2
    assert metric(runtime.registry, "fengqiao_intake_posts_normalized_total", is_appeal="true") == 1
