"""Intake's normalizer through FastStream's in-memory broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from faststream.kafka import TestKafkaBroker
from pymongo import AsyncMongoClient

from fengqiao.contracts import APPEALS, POSTS_RAW, AppealNormalized, DeadLetter, RawPostReceived
from fengqiao.runtime.store import MemoryRecords
from fengqiao.services.intake.adapters.recent import InMemoryRecentAppeals
from fengqiao.services.intake.adapters.recent_mongo import MongoRecentAppeals
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import IntakeSettings


def raw_post(text: str = "博乐市的工地拖欠工资，求助", **payload: object) -> RawPostReceived:
    body = {
        "id": "p1",
        "platform": "weibo",
        "account": "@新疆检察",
        "author": {"id": "u1", "name": "网友"},
        "text": text,
        **payload,
    }
    return RawPostReceived(
        occurred_at=datetime(2026, 8, 1, 10, tzinfo=UTC),
        producer="test",
        platform="weibo",
        channel="webhook",
        account="@新疆检察",
        source_id=f"relay:{body['id']}",
        delivery_id="d1",
        payload=body,
    )


@pytest.fixture
def recent() -> InMemoryRecentAppeals:
    return InMemoryRecentAppeals()


@pytest.fixture
def runtime(recent: InMemoryRecentAppeals):
    runtime, _ = build(IntakeSettings(), recent=recent)
    return runtime


async def test_raw_post_becomes_masked_appeal(runtime) -> None:
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(raw_post("电话13812345678，博乐市工地拖欠工资"), POSTS_RAW.name)
    [appeal] = seen
    assert appeal.masked_text == "电话138****5678,博乐市工地拖欠工资"
    assert appeal.pii_kinds == ["phone"]
    assert appeal.is_appeal
    assert appeal.reply_to.post_id == "p1"


async def test_a_generic_sources_author_is_namespaced_by_the_source(runtime) -> None:
    """A generic source names a Weibo uid as its author: the appeal's author, and whom its
    replies and callback go to, is `<source>:<uid>`, never the Weibo user (issue 19)."""
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(raw_post(author={"id": "2489518277"}), POSTS_RAW.name)
        await br.publish(raw_post(id="p2", author={"id": "u" * 128}), POSTS_RAW.name)
    assert seen[0].author.id == "relay:2489518277"
    assert seen[0].reply_to.user_id == "relay:2489518277"
    assert seen[1].author.id.startswith("relay:#") and len(seen[1].author.id) <= 128


async def test_same_post_twice_gives_same_case_and_event(runtime) -> None:
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        post = raw_post()
        await br.publish(post, POSTS_RAW.name)
        await br.publish(post, POSTS_RAW.name)
    assert len(seen) == 2
    assert seen[0].case_id == seen[1].case_id
    assert seen[0].event_id == seen[1].event_id
    # The re-delivery read the first decision back: not a duplicate of itself.
    assert seen[1].duplicate_of is None and seen[1].follow_up_of is None


async def test_praise_is_published_but_not_remembered(runtime, recent) -> None:
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(raw_post("为你们点赞👍"), POSTS_RAW.name)
    [appeal] = seen
    assert not appeal.is_appeal
    assert appeal.emoji == ["👍"]
    assert recent.appeals == {}


async def test_unreadable_post_goes_to_dead_letters(runtime) -> None:
    letters: list[DeadLetter] = []

    @runtime.broker.subscriber(POSTS_RAW.dlq, group_id="probe")
    async def probe(letter: DeadLetter) -> None:
        letters.append(letter)

    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish({"not": "a raw post"}, POSTS_RAW.name)
        await br.publish(raw_post(text=""), POSTS_RAW.name)  # empty text breaks the schema
    assert [letter.origin_topic for letter in letters] == [POSTS_RAW.name, POSTS_RAW.name]
    assert "occurred_at" in letters[0].error
    assert "text" in letters[1].error


async def test_a_store_failure_is_retried_until_it_passes_never_dead_lettered(
    runtime, recent, monkeypatch
) -> None:
    """The store is away for two tries: the post waits, then becomes its appeal (it used to be
    dead-lettered, and its case never opened)."""
    real, calls = recent.history, 0

    async def away_twice(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("store down")
        return await real(*args, **kwargs)

    monkeypatch.setattr(recent, "history", away_twice)
    runtime.outages.first = runtime.outages.longest = 0.01
    letters: list[DeadLetter] = []
    seen: list[AppealNormalized] = []

    @runtime.broker.subscriber(POSTS_RAW.dlq, group_id="probe")
    async def probe(letter: DeadLetter) -> None:
        letters.append(letter)

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def appeals(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish(raw_post(), POSTS_RAW.name)
    assert calls == 3 and letters == []
    [appeal] = seen
    assert appeal.is_appeal


def test_metrics_are_registered(runtime) -> None:
    names = {m.name for m in runtime.registry.collect()}
    assert {
        "fengqiao_intake_appeals_merged",
        "fengqiao_intake_posts_normalized",
        "fengqiao_intake_normalize_seconds",
    } <= names


async def test_a_poll_is_decided_together_in_order_and_one_bad_post_is_dead_lettered() -> None:
    """The normalizer takes a poll at a time (issue 21): on the store's layout (over memory),
    an author's follow-up in the same poll joins the appeal before it, a re-delivery in the poll
    reads its decision back, and a post off contract goes to dead letters alone."""
    recent = MongoRecentAppeals(AsyncMongoClient(connect=False), "unused", records=MemoryRecords())
    runtime, _ = build(IntakeSettings(), recent=recent)
    seen: list[AppealNormalized] = []
    letters: list[DeadLetter] = []

    @runtime.broker.subscriber(APPEALS.name, group_id="probe")
    async def probe(appeal: AppealNormalized) -> None:
        seen.append(appeal)

    @runtime.broker.subscriber(POSTS_RAW.dlq, group_id="probe")
    async def dead(letter: DeadLetter) -> None:
        letters.append(letter)

    first = raw_post()
    later = raw_post("上次反映的博乐市工地拖欠工资的事还没人联系我", id="p2")
    async with TestKafkaBroker(runtime.broker) as br:
        await br.publish_batch(first, {"not": "a raw post"}, later, first, topic=POSTS_RAW.name)
    assert [a.reply_to.post_id for a in seen] == ["p1", "p2", "p1"]
    assert {a.case_id for a in seen} == {seen[0].case_id}
    assert seen[1].follow_up_of == seen[0].case_id
    assert seen[2].event_id == seen[0].event_id and seen[2].duplicate_of is None
    assert [letter.origin_topic for letter in letters] == [POSTS_RAW.name]
    normalized = runtime.registry.get_sample_value(
        "fengqiao_intake_posts_normalized_total", {"is_appeal": "true"}
    )
    assert normalized == 2  # the re-delivery is not counted again
