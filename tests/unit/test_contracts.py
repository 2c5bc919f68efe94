"""The contracts: immutable, strict to write and tolerant to read, aware of time zones, keyed as
the topics say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from fengqiao import contracts
from fengqiao.contracts import (
    APPEALS,
    CASE_TOPICS,
    LANES,
    REPLIES_REQUESTED,
    TOPICS,
    UNIT_ACTIONS,
    AppealNormalized,
    Author,
    CaseEventRecorded,
    CaseState,
    CoordinationRequested,
    DeadLetter,
    DispatchOrdered,
    Envelope,
    Outgoing,
    RawPostReceived,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    SupervisionOrdered,
    UnitActed,
    UnitActionKind,
    all_topic_names,
    by_name,
    derived_event_id,
    read,
    redispatch_event_id,
)
from fengqiao.testing.factories import dispatch_message

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TARGET = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")


def raw_post(**overrides: Any) -> RawPostReceived:
    fields: dict[str, Any] = {
        "occurred_at": AT,
        "producer": "test",
        "platform": "weibo",
        "channel": "webhook",
        "account": "@新疆检察",
        "source_id": "relay:p1",
        "delivery_id": "d1",
        "payload": {"id": "p1"},
    }
    return RawPostReceived(**{**fields, **overrides})


def appeal() -> AppealNormalized:
    return AppealNormalized(
        occurred_at=AT,
        producer="test",
        case_id="c-1",
        post_event_id="e0",
        platform="weibo",
        channel="webhook",
        account="@新疆检察",
        author=Author(id="u1"),
        posted_at=AT,
        original_text="求助",
        text="求助",
        masked_text="求助",
        lang="zh",
        is_appeal=True,
        reply_to=TARGET,
    )


def order() -> DispatchOrdered:
    return dispatch_message(occurred_at=AT, producer="test", case_id="c-2")


def unit_acted() -> UnitActed:
    return UnitActed(
        occurred_at=AT,
        producer="test",
        case_id="c-3",
        unit_id="652701",
        action=UnitActionKind.ACCEPT,
    )


def case_event() -> CaseEventRecorded:
    return CaseEventRecorded(
        occurred_at=AT,
        producer="test",
        case_id="c-4",
        event="case.opened",
        state=CaseState.RECEIVED,
        caused_by="e0",
    )


def reply_requested(**overrides: Any) -> ReplyRequested:
    fields: dict[str, Any] = {
        "occurred_at": AT,
        "producer": "test",
        "case_id": "c-5",
        "purpose": ReplyPurpose.ACKNOWLEDGMENT,
        "channel": ReplyChannel.COMMENT,
        "target": TARGET,
        "template_id": "acknowledgment",
    }
    return ReplyRequested(**{**fields, **overrides})


def reply_sent() -> ReplySent:
    return ReplySent(
        occurred_at=AT,
        producer="test",
        case_id="c-6",
        request_event_id="e1",
        idempotency_key="c-6:acknowledgment:0",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        status="sent",
    )


def dead_letter(origin_key: str | None = "c-7") -> DeadLetter:
    return DeadLetter(
        occurred_at=AT,
        producer="test",
        origin_topic="appeals",
        origin_partition=2,
        origin_offset=41,
        origin_key=origin_key,
        consumer="router",
        error_type="ValueError",
        error="bad",
        payload="{}",
    )


def test_messages_are_frozen() -> None:
    message = raw_post()
    with pytest.raises(ValidationError, match="frozen"):
        message.platform = "wechat"  # type: ignore[misc]
    assert message.platform == "weibo"


def test_values_inside_messages_are_frozen_too() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        TARGET.post_id = "p2"  # type: ignore[misc]


def test_constructing_a_message_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        raw_post(colour="red")
    [error] = caught.value.errors()
    assert error["loc"] == ("colour",)
    assert error["type"] == "extra_forbidden"


def test_constructing_a_message_with_an_unknown_field_in_a_nested_value_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        reply_requested(target={"platform": "weibo", "account": "@a", "nick": "x"})
    assert caught.value.errors()[0]["loc"] == ("target", "nick")


def with_unknown_fields(message: AppealNormalized) -> dict[str, Any]:
    """The message as a newer producer might write it: a field more, at the top and inside."""
    body = message.model_dump(mode="json")
    return {**body, "colour": "red", "author": {**body["author"], "nick": "x"}}


def test_reading_json_ignores_unknown_fields_at_every_depth() -> None:
    message = appeal()
    body = json.dumps(with_unknown_fields(message))
    read_back = AppealNormalized.model_validate_json(body)
    assert read_back == message
    assert "colour" not in read_back.model_dump()
    assert read(APPEALS.name, body) == message


def test_reading_a_document_ignores_unknown_fields_too() -> None:
    # Stored messages (a case's outgoing ones, the router's templates) are read back this way.
    message = appeal()
    assert AppealNormalized.model_validate(with_unknown_fields(message)) == message


def test_a_reader_may_still_ask_to_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="colour"):
        AppealNormalized.model_validate(with_unknown_fields(appeal()), extra="forbid")


def test_reading_a_message_without_a_required_field_fails() -> None:
    body = unit_acted().model_dump(mode="json")
    del body["unit_id"]
    with pytest.raises(ValidationError, match="unit_id"):
        read(UNIT_ACTIONS.name, json.dumps({**body, "colour": "red"}))


def test_reading_a_message_with_a_mistyped_field_fails() -> None:
    body = {**unit_acted().model_dump(mode="json"), "action": "dance", "colour": "red"}
    with pytest.raises(ValidationError, match="action"):
        UnitActed.model_validate_json(json.dumps(body))
    with pytest.raises(ValidationError, match="amount_recovered"):
        UnitActed.model_validate({**body, "action": "resolve", "amount_recovered": "lots"})


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="timestamps must carry a timezone"):
        raw_post(occurred_at=datetime(2026, 11, 27, 9, 0))


def test_a_naive_datetime_in_a_json_body_is_refused() -> None:
    body = raw_post().model_dump(mode="json")
    body["occurred_at"] = "2026-11-27T09:00:00"
    with pytest.raises(ValidationError, match="timezone"):
        RawPostReceived.model_validate(body)


def test_an_aware_datetime_in_another_zone_is_kept() -> None:
    body = raw_post().model_dump(mode="json")
    body["occurred_at"] = "2026-11-27T17:00:00+08:00"
    assert RawPostReceived.model_validate(body).occurred_at == AT


def test_a_message_round_trips_through_json() -> None:
    message = appeal()
    assert AppealNormalized.model_validate_json(message.model_dump_json()) == message


def test_each_message_has_its_own_event_id_by_default() -> None:
    assert raw_post().event_id != raw_post().event_id
    assert len(raw_post().event_id) == 32


def test_a_raw_post_is_keyed_by_platform_and_source_id() -> None:
    assert raw_post().kafka_key() == "weibo:relay:p1"


@pytest.mark.parametrize(
    ("factory", "key"),
    [
        (appeal, "c-1"),
        (order, "c-2"),
        (unit_acted, "c-3"),
        (case_event, "c-4"),
        (reply_sent, "c-6"),
    ],
)
def test_case_messages_are_keyed_by_case_id(factory: Any, key: str) -> None:
    assert factory().kafka_key() == key


def test_reply_requests_are_keyed_by_the_account_that_posts_them() -> None:
    """One partition (one notifier replica) per account: its budget is held in one place."""
    first, second = reply_requested(), reply_requested(case_id="c-other", hop=2)
    assert first.kafka_key() == second.kafka_key() == f"weibo:{TARGET.account}"
    other = reply_requested(target=TARGET.model_copy(update={"account": "@伊犁检察"}))
    assert other.kafka_key() != first.kafka_key()
    assert REPLIES_REQUESTED.key == "platform:account" and REPLIES_REQUESTED in CASE_TOPICS


def test_a_dead_letter_keeps_its_origin_key() -> None:
    assert dead_letter().kafka_key() == "c-7"


def test_a_dead_letter_without_key_is_keyed_by_its_origin_position() -> None:
    assert dead_letter(origin_key=None).kafka_key() == "appeals:2:41"


def test_the_bare_envelope_has_no_key() -> None:
    with pytest.raises(NotImplementedError):
        Envelope(occurred_at=AT, producer="test").kafka_key()


@pytest.mark.parametrize("case_id", ["", "has space", "c/1", "x" * 65])
def test_bad_case_ids_are_refused(case_id: str) -> None:
    with pytest.raises(ValidationError, match="case_id"):
        UnitActed.model_validate({**unit_acted().model_dump(), "case_id": case_id})


def test_derived_event_ids_are_stable_across_processes_and_releases() -> None:
    # Pinned: a re-delivery handled by another replica, or after an upgrade, must derive the
    # same id, or consumers downstream would take the repeat for a new message.
    assert derived_event_id("dispatch", "e1", "1") == derived_event_id("dispatch", "e1", "1")
    assert derived_event_id("dispatch", "e1", "1") == "98e4b568edf029703aaac5dc1f5adc66"


def test_derived_event_ids_differ_with_any_part() -> None:
    ids = {
        derived_event_id("dispatch", "e1", "1"),
        derived_event_id("dispatch", "e1", "2"),
        derived_event_id("dispatch", "e2", "1"),
        derived_event_id("reply", "e1", "1"),
    }
    assert len(ids) == 4


def test_derived_event_ids_do_not_depend_on_how_parts_are_cut() -> None:
    # Joining with a separator that cannot appear in ids keeps ("ab", "c") apart from ("a", "bc").
    assert derived_event_id("ab", "c") != derived_event_id("a", "bc")


def test_derived_event_ids_fit_the_envelope() -> None:
    event_id = derived_event_id("x", "y")
    assert len(event_id) == 32
    assert int(event_id, 16) >= 0
    assert Envelope(event_id=event_id, occurred_at=AT, producer="t").event_id == event_id


def test_a_redispatch_event_id_is_pinned_and_differs_by_hop() -> None:
    # The router gives its re-dispatched orders these ids and the tracker looks them up: both
    # sides, in any release, must derive the same.
    assert redispatch_event_id("a-1", 2) == derived_event_id("redispatch", "a-1", "2")
    assert redispatch_event_id("a-1", 2) == "d6110e689d1ac0df956db92b26dd7ed5"
    assert redispatch_event_id("a-1", 3) != redispatch_event_id("a-1", 2)


def test_the_idempotency_key_is_case_purpose_and_hop() -> None:
    assert reply_requested().idempotency_key == "c-5:acknowledgment:0"
    announcement = reply_requested(purpose=ReplyPurpose.DISPATCH_ANNOUNCEMENT, hop=2)
    assert announcement.idempotency_key == "c-5:dispatch_announcement:2"


def test_the_idempotency_key_ignores_the_event_id() -> None:
    assert reply_requested().idempotency_key == reply_requested().idempotency_key
    assert reply_requested().event_id != reply_requested().event_id


def test_every_topic_names_its_message_type_and_dead_letter_topic() -> None:
    expected = {
        "posts.raw": RawPostReceived,
        "appeals": AppealNormalized,
        "dispatch.orders": DispatchOrdered,
        "coordination.requests": CoordinationRequested,
        "supervision.orders": SupervisionOrdered,
        "unit.actions": UnitActed,
        "case.events": CaseEventRecorded,
        "replies.requested": ReplyRequested,
        "replies.sent": ReplySent,
    }
    lanes = {f"{name}.urgent": message for name, message in expected.items() if name in LANES}
    assert {t.name: t.message for t in TOPICS} == expected | lanes
    for topic in TOPICS:
        assert issubclass(topic.message, Envelope)
        assert topic.dlq == f"{topic.name}.dlq"
        assert topic.partitions >= 1
        assert by_name(topic.name) is topic


def test_each_topic_message_declares_its_type_tag() -> None:
    topics = [t for t in TOPICS if t not in LANES.values()]  # a lane carries its topic's
    tags = [t.message.model_fields["type"].default for t in topics]
    assert len(set(tags)) == len(topics)


def test_all_topic_names_lists_each_topic_then_its_dead_letters() -> None:
    names = all_topic_names()
    assert len(names) == 2 * len(TOPICS)
    assert names[:2] == ["posts.raw", "posts.raw.dlq"]
    assert set(names) == {t.name for t in TOPICS} | {t.dlq for t in TOPICS}


def test_by_name_names_an_unknown_topic() -> None:
    with pytest.raises(KeyError, match="'nope'"):
        by_name("nope")


def test_the_package_exports_what_it_declares() -> None:
    assert all(hasattr(contracts, name) for name in contracts.__all__)
    assert len(contracts.__all__) == len(set(contracts.__all__))


def test_an_outgoing_message_is_made_json_once() -> None:
    message = appeal()
    outgoing = Outgoing(APPEALS.name, message)
    assert outgoing.body is outgoing.body
    assert type(message).model_validate_json(outgoing.body) == message
