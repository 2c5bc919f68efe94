"""Weibo's message push over HTTP: the binding check, every type, every refusal.

The app is driven through ASGI without its lifespan (which would connect to Kafka).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.service import Runtime
from fengqiao.services.intake.adapters.cursors import InMemoryCursorStore
from fengqiao.services.intake.adapters.nonces import InMemoryPushNonces
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.services.intake.weibo import push_signature

NOW = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)
SECRET = "xyz123xyz-0123456789"
URL = "/webhooks/weibo/xinjiang"
LIMIT = 2048


def settings(**overrides: Any) -> IntakeSettings:
    return IntakeSettings(
        weibo_accounts={
            "xinjiang": WeiboAccount(handle="@新疆检察", app_secret=SECRET),
            "polled": WeiboAccount(handle="@博州检察", access_token="t"),
        },
        max_body_bytes=LIMIT,
        **overrides,
    )


_nonces = itertools.count(57155157)


def query(
    secret: str = SECRET, at: datetime = NOW, nonce: str | None = None, **extra: str
) -> dict[str, str]:
    """A signed query, with a nonce of its own unless given (each push URL is taken once)."""
    timestamp = str(int(at.timestamp() * 1000))
    nonce = nonce or str(next(_nonces))
    return {
        "signature": push_signature(secret, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        **extra,
    }


def push(type_: str = "text", **overrides: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "receiver_id": 1902538057,
        "sender_id": 2489518277,
        "created_at": "Fri Nov 27 21:00:00 +0800 2026",
        "text": "米东区有人打人，医药费不给，求助",
        "data": {},
        **overrides,
    }


@pytest.fixture
def sink() -> InMemoryPostSink:
    return InMemoryPostSink()


@pytest.fixture
def nonces() -> InMemoryPushNonces:
    return InMemoryPushNonces()


@pytest.fixture
def runtime_app(sink: InMemoryPostSink, nonces: InMemoryPushNonces) -> tuple[Runtime, FastAPI]:
    return build(settings(), sink=sink, clock=FakeClock(NOW), nonces=nonces)


@pytest.fixture
async def client(runtime_app: tuple[Runtime, FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=runtime_app[1])
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


async def send(
    client: httpx.AsyncClient,
    body: Any,
    params: dict[str, str] | None = None,
    *,
    url: str = URL,
    content_type: str = "application/json",
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await client.post(
        url,
        params=query() if params is None else params,
        content=content,
        headers={"Content-Type": content_type},
    )


def sample(runtime: Runtime, name: str, **labels: str) -> float | None:
    return runtime.registry.get_sample_value(name, labels)


# --------------------------------------------------------------------------- binding check


async def test_the_binding_check_is_answered_with_echostr(client: httpx.AsyncClient) -> None:
    response = await client.get(URL, params=query(echostr="vIuz5ekD"))
    assert response.status_code == 200
    assert response.text == "vIuz5ekD"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        (query("wrong", echostr="e"), 401),
        (query(at=NOW - timedelta(minutes=6), echostr="e"), 401),
        ({k: v for k, v in query(echostr="e").items() if k != "signature"}, 401),
        (query(), 400),  # no echostr
    ],
)
async def test_a_bad_binding_check_is_refused(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    response = await client.get(URL, params=params)
    assert response.status_code == status
    assert response.text != "e"


@pytest.mark.parametrize("url", ["/webhooks/weibo/nobody", "/webhooks/weibo/polled"])
async def test_an_unknown_account_or_one_without_push_is_404(
    client: httpx.AsyncClient, url: str
) -> None:
    assert (await client.get(url, params=query(echostr="e"))).status_code == 404
    assert (await send(client, push(), url=url)).status_code == 404


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    "body",
    [
        push(),
        push("position", data={"longitude": "87.6", "latitude": "43.8"}),
        push("image", text="图片消息", data={"vfid": 821804459, "tovfid": 821804469}),
        push("voice", text="语音消息", data={"vfid": 821804459, "tovfid": 821804469}),
        push("mention", data={"subtype": "status", "key": "4900000000000001"}),
        push("mention", data={"subtype": "comment", "key": 4900000000000002}),
    ],
    ids=["text", "position", "image", "voice", "mention-status", "mention-comment"],
)
async def test_a_push_carrying_a_post_is_stored_then_answered_with_an_empty_200(
    client: httpx.AsyncClient,
    sink: InMemoryPostSink,
    runtime_app: tuple[Runtime, FastAPI],
    body: dict[str, Any],
) -> None:
    response = await send(client, body)
    assert response.status_code == 200
    assert response.content == b""  # Weibo: an empty answer, no passive reply, no re-send
    [raw] = sink.posts
    assert (raw.platform, raw.channel, raw.account) == ("weibo", "push", "@新疆检察")
    assert raw.payload == body
    assert raw.occurred_at == NOW and raw.producer == "intake"
    assert raw.source_id.startswith("push:")
    assert response.headers["X-Fengqiao-Source-Id"] == raw.source_id
    assert response.headers["X-Fengqiao-Delivery-Id"] == raw.delivery_id
    accepted = "fengqiao_intake_weibo_push_accepted_total"
    assert sample(runtime_app[0], accepted, type=body["type"]) == 1


async def test_a_resend_keeps_the_source_id(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = push()
    for nonce in ("1", "2", "3"):  # Weibo's retries: new query, same body
        timestamp = str(int(NOW.timestamp() * 1000))
        params = {
            "signature": push_signature(SECRET, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        assert (await send(client, body, params)).status_code == 200
    assert len({p.source_id for p in sink.posts}) == 1
    assert len({p.delivery_id for p in sink.posts}) == 3
    another = push(created_at="Fri Nov 27 21:00:05 +0800 2026")
    assert (await send(client, another)).status_code == 200
    assert len({p.source_id for p in sink.posts}) == 2


async def test_an_event_is_counted_not_stored(
    client: httpx.AsyncClient, sink: InMemoryPostSink, runtime_app: tuple[Runtime, FastAPI]
) -> None:
    for subtype in ("follow", "unfollow", "follow"):
        body = push("event", text="关注事件消息", data={"subtype": subtype})
        response = await send(client, body)
        assert (response.status_code, response.content) == (200, b"")
    assert sink.posts == []
    events = "fengqiao_intake_weibo_push_events_total"
    assert sample(runtime_app[0], events, subtype="follow") == 2
    assert sample(runtime_app[0], events, subtype="unfollow") == 1


async def test_an_unknown_type_is_taken_ignored_and_counted(
    client: httpx.AsyncClient, sink: InMemoryPostSink, runtime_app: tuple[Runtime, FastAPI]
) -> None:
    for type_ in ("video", "Some Strange Type"):
        response = await send(client, push(type_))
        assert (response.status_code, response.content) == (200, b"")
    assert sink.posts == []
    ignored = "fengqiao_intake_weibo_push_ignored_total"
    assert sample(runtime_app[0], ignored, type="video") == 1
    assert sample(runtime_app[0], ignored, type="other") == 1  # labels stay bounded


# --------------------------------------------------------------------------- refused


def error(response: httpx.Response) -> str:
    return str(response.json()["error"])


async def test_a_bad_signature_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, sink: InMemoryPostSink, runtime_app: tuple[Runtime, FastAPI]
) -> None:
    for params in (query("wrong"), query(at=NOW + timedelta(minutes=6)), {}):
        response = await send(client, push(), params)
        assert (response.status_code, error(response)) == (401, "signature")
    assert sink.posts == []
    rejected = "fengqiao_intake_weibo_push_rejected_total"
    assert sample(runtime_app[0], rejected, reason="signature") == 3


async def test_kafka_down_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    sink.fail = True
    response = await send(client, push())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert error(response) == "kafka_unavailable"


# --------------------------------------------------------------------------- replays (issue 19)


async def test_a_replayed_push_url_is_409_with_any_body_and_counted(
    client: httpx.AsyncClient, sink: InMemoryPostSink, runtime_app: tuple[Runtime, FastAPI]
) -> None:
    """Before issue 19 a captured push URL could be sent again with any body for 5 minutes."""
    url = query()
    assert (await send(client, push(), url)).status_code == 200
    for body in (push(text="另一个人的求助，冒名"), push()):
        again = await send(client, body, url)
        assert again.status_code == 409
        assert error(again) == "replayed"
        assert "already used" in again.json()["detail"]
    assert len(sink.posts) == 1
    rejected = "fengqiao_intake_weibo_push_rejected_total"
    assert sample(runtime_app[0], rejected, reason="replayed") == 2
    assert (await send(client, push(text="另一个人的求助，冒名"))).status_code == 200  # new URL


async def test_a_replayed_event_is_refused_too(client: httpx.AsyncClient) -> None:
    url = query()
    event = push("event", data={"subtype": "follow"})
    assert (await send(client, event, url)).status_code == 200
    assert (await send(client, event, url)).status_code == 409


async def test_the_nonce_store_down_is_503_with_retry_after_never_taken_unchecked(
    client: httpx.AsyncClient,
    sink: InMemoryPostSink,
    nonces: InMemoryPushNonces,
    runtime_app: tuple[Runtime, FastAPI],
) -> None:
    nonces.fail = True
    url = query()
    response = await send(client, push(), url)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert error(response) == "nonce_store_unavailable"
    assert sink.posts == []
    rejected = "fengqiao_intake_weibo_push_rejected_total"
    assert sample(runtime_app[0], rejected, reason="nonce_store_unavailable") == 1
    nonces.fail = False  # Weibo's re-send of the same URL is then taken
    assert (await send(client, push(), url)).status_code == 200
    assert len(sink.posts) == 1


async def test_a_push_kafka_did_not_take_releases_its_nonce(
    client: httpx.AsyncClient, sink: InMemoryPostSink, nonces: InMemoryPushNonces
) -> None:
    url = query()
    sink.fail = True
    assert (await send(client, push(), url)).status_code == 503
    assert nonces.seen == {}
    sink.fail = False
    assert (await send(client, push(), url)).status_code == 200  # the same URL, sent again
    assert len(sink.posts) == 1


async def test_an_overlong_nonce_is_401(client: httpx.AsyncClient) -> None:
    response = await send(client, push(), query(nonce="9" * 65))
    assert response.status_code == 401


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await send(client, push(), content_type="application/x-www-form-urlencoded")
    assert (response.status_code, error(response)) == (415, "content_type")


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await send(client, push(text="长" * LIMIT))
    assert (response.status_code, error(response)) == (413, "too_large")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_malformed_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await send(client, body)
    assert (response.status_code, error(response)) == (400, "malformed_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (push(created_at="2026-11-27 21:00"), "created_at"),
        ({k: v for k, v in push().items() if k != "sender_id"}, "sender_id"),
        (push("position", data={"longitude": "87.6"}), "data.latitude"),
        (push("position", data={"longitude": "300", "latitude": "43"}), "data.longitude"),
        (push("mention", data={"subtype": "status"}), "data.key"),
        (push("mention", data={"subtype": "like", "key": "1"}), "data.subtype"),
        (push(text=" "), "text"),
    ],
)
async def test_a_body_off_its_schema_is_422_naming_the_field(
    client: httpx.AsyncClient, sink: InMemoryPostSink, body: dict[str, Any], field: str
) -> None:
    response = await send(client, body)
    assert (response.status_code, error(response)) == (422, "schema")
    assert field in {e["field"] for e in response.json()["detail"]}
    assert sink.posts == []


# --------------------------------------------------------------------------- wiring


def test_pollers_are_started_and_stopped_with_the_app_only_when_enabled(
    sink: InMemoryPostSink,
) -> None:
    off, _ = build(settings(), sink=sink, clock=FakeClock(NOW))
    on, _ = build(
        settings(pollers_enabled=True),
        sink=sink,
        clock=FakeClock(NOW),
        cursors=InMemoryCursorStore(),
    )
    names = {getattr(h, "__qualname__", "") for h in on.on_start} - {
        getattr(h, "__qualname__", "") for h in off.on_start
    }
    assert names == {"Poller.start"}
    assert {getattr(h, "__qualname__", "") for h in on.on_stop} >= {"Poller.stop"}
