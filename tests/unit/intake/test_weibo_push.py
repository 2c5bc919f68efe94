"""Weibo's message push: the signature, the source id a re-send keeps, and reading each type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fengqiao.contracts import RawPostReceived, ReplyTarget
from fengqiao.services.intake.domain import UnreadablePost, normalize, read_post
from fengqiao.services.intake.readers import parse_weibo_time
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.services.intake.signing import SignatureError
from fengqiao.services.intake.weibo import (
    WeiboPush,
    check_signature,
    push_signature,
    push_source_id,
    to_raw_post,
)

NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
ACCOUNT = WeiboAccount(handle="@新疆检察", app_secret="s3cret-0123456789ab")


def push(type_: str = "text", **overrides: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "receiver_id": 1902538057,
        "sender_id": 2489518277,
        "created_at": "Fri Nov 27 21:00:00 +0800 2026",
        "text": "博乐市的工地拖欠工资，求助",
        "data": {},
        **overrides,
    }


def raw(payload: dict[str, Any]) -> RawPostReceived:
    return to_raw_post(
        WeiboPush.model_validate(payload), payload, ACCOUNT, now=NOW, producer="test"
    )


# --------------------------------------------------------------------------- signature


def test_the_signature_matches_the_platforms_example() -> None:
    assert (
        push_signature("xyz123xyz", "1397022061823", "57155157")
        == "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"
    )


def signed_now(secret: str = "s3cret", at: datetime = NOW) -> dict[str, str]:
    timestamp = str(int(at.timestamp() * 1000))
    return {
        "timestamp": timestamp,
        "nonce": "57155157",
        "signature": push_signature(secret, timestamp, "57155157"),
    }


def check(**params: str | None) -> None:
    check_signature("s3cret", now=NOW, window_seconds=300, **params)  # type: ignore[arg-type]


def test_a_right_recent_signature_passes_in_either_case() -> None:
    check(**signed_now())
    params = signed_now()
    check(**{**params, "signature": params["signature"].upper()})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**signed_now("another secret")}, "does not match"),
        ({**signed_now(), "nonce": "1"}, "does not match"),
        ({**signed_now(), "signature": None}, "required"),
        ({**signed_now(), "timestamp": "１２３"}, "milliseconds"),
        (signed_now(at=NOW - timedelta(seconds=301)), "stale"),
        (signed_now(at=NOW + timedelta(seconds=301)), "stale"),
    ],
)
def test_a_wrong_or_stale_signature_is_refused(params: dict[str, str | None], message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        check(**params)


# --------------------------------------------------------------------------- source id


def test_a_resend_keeps_its_source_id_and_gets_a_new_delivery_id() -> None:
    first, again = raw(push()), raw(push())
    assert first.source_id == again.source_id
    assert first.source_id == push_source_id(WeiboPush.model_validate(push()))
    assert first.source_id.startswith("push:")
    assert first.delivery_id != again.delivery_id
    assert normalize(first, producer="t").event_id == normalize(again, producer="t").event_id
    assert normalize(first, producer="t").case_id == normalize(again, producer="t").case_id


@pytest.mark.parametrize(
    "other",
    [
        push(sender_id=2489518278),
        push(created_at="Fri Nov 27 21:00:01 +0800 2026"),
        push(text="另一条私信"),
        push("mention", data={"subtype": "status", "key": "4900000000000001"}),
        push("mention", data={"subtype": "comment", "key": "4900000000000002"}),
    ],
)
def test_another_message_gets_another_source_id(other: dict[str, Any]) -> None:
    assert raw(other).source_id != raw(push()).source_id


def test_the_source_id_ignores_what_a_resend_may_not_repeat() -> None:
    # Non-text messages carry a default text; the receiver is the same account anyway.
    image = push("image", text="图片消息", data={"vfid": 1, "tovfid": 2})
    assert raw(image).source_id == raw({**image, "text": "[图片]"}).source_id


# --------------------------------------------------------------------------- the body


def test_ids_may_come_as_numbers_or_text_and_data_as_a_json_string() -> None:
    body = WeiboPush.model_validate(
        push("position", sender_id="2489518277", data=json.dumps({"longitude": "82.07"}))
    )
    assert body.sender_id == "2489518277"
    assert body.receiver_id == "1902538057"
    assert body.data == {"longitude": "82.07"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"created_at": "2026-11-27 21:00"}, "created_at"),
        ({"sender_id": "abc"}, "sender_id"),
        ({"sender_id": True}, "sender_id"),
        ({"data": "not json"}, "data"),
        ({"type": ""}, "type"),
    ],
)
def test_a_body_off_its_shape_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        WeiboPush.model_validate(push(**overrides))
    assert field in {str(e["loc"][0]) for e in exc.value.errors()}


def test_weibo_time_is_read_whatever_the_locale() -> None:
    assert parse_weibo_time("Fri Nov 27 21:00:00 +0800 2026") == datetime(
        2026, 11, 27, 13, tzinfo=UTC
    )
    assert parse_weibo_time("Mon Jul 16 18:09:20 -0500 2012") == datetime(
        2012, 7, 16, 23, 9, 20, tzinfo=UTC
    )
    for bad in ("Fri Foo 27 21:00:00 +0800 2026", "2026-11-27T21:00:00+08:00", ""):
        with pytest.raises(ValueError, match="not a Weibo time"):
            parse_weibo_time(bad)


# --------------------------------------------------------------------------- reading each type


@pytest.mark.parametrize("type_", ["text", "image", "voice"])
def test_a_private_message_is_answered_privately(type_: str) -> None:
    post = read_post(raw(push(type_)))
    assert post.author.id == "2489518277"
    assert post.reply_to == ReplyTarget(platform="weibo", account="@新疆检察", user_id="2489518277")
    assert post.posted_at == datetime(2026, 11, 27, 13, tzinfo=UTC)
    assert (post.platform, post.channel, post.account) == ("weibo", "push", "@新疆检察")
    assert post.text == "博乐市的工地拖欠工资，求助"
    assert post.geo is None


def test_a_position_message_brings_its_place() -> None:
    post = read_post(raw(push("position", data={"longitude": "82.07", "latitude": "44.9"})))
    assert post.geo is not None and (post.geo.lat, post.geo.lon) == (44.9, 82.07)
    assert post.reply_to.user_id == "2489518277"


def test_a_mention_in_a_post_is_answered_on_that_post() -> None:
    post = read_post(raw(push("mention", data={"subtype": "status", "key": 4900000000000001})))
    assert post.reply_to.post_id == "4900000000000001"
    assert post.reply_to.comment_id is None
    assert post.reply_to.user_id == "2489518277"


def test_a_mention_in_a_comment_is_answered_on_that_comment() -> None:
    post = read_post(raw(push("mention", data={"subtype": "comment", "key": "4900000000000002"})))
    assert post.reply_to.comment_id == "4900000000000002"
    assert post.reply_to.post_id is None


def test_a_push_that_carries_no_post_is_unreadable() -> None:
    event = push("event", data={"subtype": "follow"})
    with pytest.raises(UnreadablePost, match="carries no post"):
        read_post(raw(event))
    broken = raw(push())
    broken = broken.model_copy(update={"payload": {**broken.payload, "created_at": "yesterday"}})
    with pytest.raises(UnreadablePost, match="Weibo push"):
        read_post(broken)


# --------------------------------------------------------------------------- settings


def test_the_secrets_file_lays_its_weibo_fields_over_the_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "weibo:\n  xinjiang: {app_secret: s3cret-0123456789ab, access_token: tok}\n"
        "  bozhou: {handle: '@博州检察', app_secret: other-0123456789abc}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("FENGQIAO_INTAKE_WEIBO_ACCOUNTS", '{"xinjiang": {"handle": "@新疆检察"}}')
    monkeypatch.setenv("FENGQIAO_INTAKE_SECRETS_FILE", str(secrets))
    accounts = IntakeSettings().weibo_accounts
    assert accounts["xinjiang"].handle == "@新疆检察"
    assert accounts["xinjiang"].app_secret is not None
    assert accounts["xinjiang"].app_secret.get_secret_value() == "s3cret-0123456789ab"
    assert accounts["xinjiang"].access_token is not None
    assert accounts["bozhou"].handle == "@博州检察"


@pytest.mark.parametrize(
    "section",
    [
        "weibo: [a, b]\n",
        "weibo:\n  xinjiang: {app_secret: s}\n",
        "weibo: {x: {handle: h, pin: 1}}\n",
    ],
)
def test_a_bad_weibo_section_is_refused_at_start(tmp_path: Path, section: str) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(section, encoding="utf-8")
    with pytest.raises(ValidationError, match="weibo"):
        IntakeSettings(secrets_file=secrets)
