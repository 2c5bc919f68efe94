"""The generic webhook over HTTP: every answer, and nothing stored on any refusal.

The app is driven through ASGI without its lifespan (which would connect to Kafka); the routes
need none of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings, UnsafeSettings

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
URL = "/webhooks/generic/src"
KEY = "src-key-0123456789"
LIMIT = 2048


def post_body(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "p1",
        "platform": "wechat",
        "account": "@新疆检察",
        "author": {"id": "u1", "name": "网友"},
        "text": "博乐市的工地拖欠工资，求助",
        **overrides,
    }


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def signed(body: bytes, *, secret: str = KEY, at: datetime = NOW) -> dict[str, str]:
    return signed_headers(secret, body, timestamp=int(at.timestamp()))


@pytest.fixture
def sink() -> InMemoryPostSink:
    return InMemoryPostSink()


@pytest.fixture
async def client(sink: InMemoryPostSink) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntakeSettings(
        generic_secrets={"src": KEY},
        generic_sources={"src": GenericSource(platforms=["wechat"], accounts=["@新疆检察"])},
        max_body_bytes=LIMIT,
    )
    _, app = build(settings, sink=sink, clock=FakeClock(NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


async def send(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(URL, content=body, headers=headers)


# --------------------------------------------------------------------------- accepted


async def test_a_signed_post_is_stored_then_accepted(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = post_body(created_at="2026-11-27T16:58:00+08:00")
    response = await send(client, encode(body), signed(encode(body)))
    assert response.status_code == 202
    [raw] = sink.posts
    assert response.json() == {
        "status": "accepted",
        "delivery_id": raw.delivery_id,
        "source_id": "src:p1",
    }
    assert raw.source_id == "src:p1"
    assert raw.payload == body
    assert (raw.platform, raw.channel, raw.account) == ("wechat", "webhook", "@新疆检察")
    assert raw.occurred_at == NOW
    assert raw.producer == "intake"
    assert raw.kafka_key() == "wechat:src:p1"


async def test_a_resent_post_keeps_its_source_id_with_a_new_delivery_id(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    assert (await send(client, body, signed(body))).status_code == 202
    assert (await send(client, body, signed(body))).status_code == 202
    first, second = sink.posts
    assert first.source_id == second.source_id == "src:p1"
    assert first.delivery_id != second.delivery_id


async def test_the_content_type_may_carry_a_charset(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    headers = {**signed(body), "Content-Type": "application/json; charset=utf-8"}
    assert (await send(client, body, headers)).status_code == 202
    assert len(sink.posts) == 1


async def test_a_timestamp_within_the_window_is_accepted(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    response = await send(client, body, signed(body, at=NOW - timedelta(seconds=299)))
    assert response.status_code == 202
    assert len(sink.posts) == 1


# --------------------------------------------------------------------------- refused


def error(response: httpx.Response) -> str:
    return str(response.json()["error"])


async def test_a_wrong_secret_is_401(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = encode(post_body())
    response = await send(client, body, signed(body, secret="guess"))
    assert response.status_code == 401
    assert response.json() == {"error": "signature", "detail": "signature does not match"}
    assert sink.posts == []


async def test_a_body_changed_after_signing_is_401(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    headers = signed(encode(post_body()))
    response = await send(client, encode(post_body(text="改过的")), headers)
    assert response.status_code == 401
    assert sink.posts == []


@pytest.mark.parametrize("header", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
async def test_a_missing_signature_header_is_401(
    client: httpx.AsyncClient, sink: InMemoryPostSink, header: str
) -> None:
    body = encode(post_body())
    headers = {k: v for k, v in signed(body).items() if k != header}
    response = await send(client, body, headers)
    assert response.status_code == 401
    assert response.json()["detail"] == f"missing {header} header"
    assert sink.posts == []


async def test_a_stale_timestamp_is_401(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = encode(post_body())
    response = await send(client, body, signed(body, at=NOW - timedelta(minutes=10)))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("stale timestamp: 600 s from now")
    assert sink.posts == []


async def test_non_ascii_signature_bytes_are_401_not_500(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    headers: dict[str, Any] = {**signed(body), SIGNATURE_HEADER: b"sha256=\xe9\xb2"}
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert sink.posts == []


async def test_a_timestamp_with_a_superscript_digit_is_401_not_500(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    headers: dict[str, Any] = {**signed(body), TIMESTAMP_HEADER: b"\xb2"}
    response = await client.post(URL, content=body, headers=headers)
    assert response.status_code == 401
    assert sink.posts == []


async def test_malformed_json_is_400(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = b'{"id": "p1",'
    response = await send(client, body, signed(body))
    assert response.status_code == 400
    assert error(response) == "malformed_json"
    assert response.json()["detail"].startswith("body is not valid JSON")
    assert sink.posts == []


async def test_json_nested_too_deep_is_400_not_500(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = b"[" * (LIMIT // 2) + b"]" * (LIMIT // 2)  # within the size limit
    response = await send(client, body, signed(body))
    assert response.status_code == 400
    assert error(response) == "malformed_json"
    assert sink.posts == []


async def test_a_body_that_is_not_utf8_is_400(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = b'{"id": "\xff"}'
    response = await send(client, body, signed(body))
    assert response.status_code == 400
    assert sink.posts == []


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"42"])
async def test_json_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, sink: InMemoryPostSink, body: bytes
) -> None:
    response = await send(client, body, signed(body))
    assert response.status_code == 400
    assert response.json() == {"error": "malformed_json", "detail": "body must be a JSON object"}
    assert sink.posts == []


async def test_a_missing_nested_field_is_422_naming_it(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body(author={"name": "网友"}))
    response = await send(client, body, signed(body))
    assert response.status_code == 422
    assert response.json() == {
        "error": "schema",
        "detail": [{"field": "author.id", "error": "Field required"}],
    }
    assert sink.posts == []


async def test_every_schema_error_is_named(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode({**post_body(text=""), "colour": "red", "platform": "We Chat"})
    response = await send(client, body, signed(body))
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["detail"]} == {"text", "colour", "platform"}
    assert sink.posts == []


async def test_a_naive_created_at_is_422(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = encode(post_body(created_at="2026-11-27T09:00:00"))
    response = await send(client, body, signed(body))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["created_at"]
    assert sink.posts == []


async def test_a_body_over_the_limit_is_413_by_its_content_length(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body(text="工" * LIMIT))
    response = await send(client, body, signed(body))
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": f"body larger than {LIMIT} bytes"}
    assert sink.posts == []


async def test_a_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body(text="工" * LIMIT))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 512):
            yield body[i : i + 512]

    response = await client.post(URL, content=chunks(), headers=signed(body))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert error(response) == "too_large"
    assert sink.posts == []


async def test_a_small_chunked_body_is_accepted(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = await client.post(URL, content=chunks(), headers=signed(body))
    assert response.status_code == 202
    assert sink.posts[0].payload == post_body()


async def test_an_unknown_source_is_404(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = encode(post_body())
    response = await client.post("/webhooks/generic/other", content=body, headers=signed(body))
    assert response.status_code == 404
    assert response.json() == {"error": "unknown_source", "detail": "unknown source 'other'"}
    assert sink.posts == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_a_body_that_is_not_json_by_its_type_is_415(
    client: httpx.AsyncClient, sink: InMemoryPostSink, content_type: str
) -> None:
    body = encode(post_body())
    response = await send(client, body, {**signed(body), "Content-Type": content_type})
    assert response.status_code == 415
    assert error(response) == "content_type"
    assert sink.posts == []


async def test_a_failing_sink_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    sink.fail = True
    body = encode(post_body())
    response = await send(client, body, signed(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert error(response) == "kafka_unavailable"
    assert sink.posts == []
    sink.fail = False  # the platform's retry of the same request then lands
    assert (await send(client, body, signed(body))).status_code == 202
    assert [p.source_id for p in sink.posts] == ["src:p1"]


async def test_refusals_and_acceptances_are_counted(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    body = encode(post_body())
    await send(client, body, signed(body))
    await send(client, body, signed(body, secret="guess"))
    metrics = (await client.get("/metrics")).text
    assert 'fengqiao_intake_posts_accepted_total{channel="webhook"} 1.0' in metrics
    assert (
        'fengqiao_intake_posts_rejected_total{channel="webhook",reason="signature"} 1.0' in metrics
    )


@pytest.mark.parametrize("source", ["a" * 65, "bad.name", "%E4%BD%A0"])
async def test_a_source_that_cannot_be_a_name_is_404(
    client: httpx.AsyncClient, sink: InMemoryPostSink, source: str
) -> None:
    body = encode(post_body())
    response = await client.post(f"/webhooks/generic/{source}", content=body, headers=signed(body))
    assert response.status_code == 404
    assert error(response) == "unknown_source"
    assert sink.posts == []


async def test_only_post_is_served_at_the_webhook(client: httpx.AsyncClient) -> None:
    response = await client.get(URL)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


async def test_the_post_taking_webhooks_are_described_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    generic = paths["/webhooks/generic/{source}"]["post"]
    assert generic["requestBody"]["content"]["application/json"]["schema"]["title"] == "GenericPost"
    assert [p["name"] for p in generic["parameters"]] == ["source"]
    assert set(generic["responses"]) == {
        "202",
        "400",
        "401",
        "403",
        "404",
        "413",
        "415",
        "422",
        "503",
    }
    weibo = paths["/webhooks/weibo/{account}"]
    assert set(weibo) == {"get", "post"}  # the binding check (FastAPI) beside the push (plain)
    assert [p["name"] for p in weibo["post"]["parameters"]] == [
        "account",
        "signature",
        "timestamp",
        "nonce",
    ]
    assert weibo["post"]["requestBody"]["content"]["application/json"]["schema"]["title"] == (
        "WeiboPush"
    )


# --------------------------------------------------------------------------- bindings (issue 19)


@pytest.mark.parametrize(
    "claim",
    [
        {"platform": "weibo"},
        {"account": "@博州检察"},
        {"platform": "weibo", "account": "@博州检察"},
    ],
)
async def test_a_post_for_a_platform_or_account_the_source_is_not_bound_to_is_403(
    client: httpx.AsyncClient, sink: InMemoryPostSink, claim: dict[str, str]
) -> None:
    """Before issue 19 a holder of any generic secret could set `platform: weibo` and make the
    official account answer any Weibo post."""
    body = encode(post_body(**claim))
    response = await send(client, body, signed(body))
    assert response.status_code == 403
    assert response.json()["error"] == "not_bound"
    assert "'src' may not post for platform" in response.json()["detail"]
    assert sink.posts == []
    metrics = (await client.get("/metrics")).text
    assert 'fengqiao_intake_posts_rejected_total{channel="webhook",reason="not_bound"} 1.0' in (
        metrics
    )


def test_a_source_with_a_secret_and_no_binding_is_refused_at_start() -> None:
    with pytest.raises(UnsafeSettings, match="FENGQIAO_INTAKE_GENERIC_SOURCES") as refused:
        IntakeSettings(generic_secrets={"src": KEY, "webform": KEY})
    assert "webform" in str(refused.value) and KEY not in str(refused.value)


def test_a_source_bound_to_every_account_may_post_for_any() -> None:
    binding = GenericSource(platforms=["weibo"], accounts=["*"])
    assert binding.allows("weibo", "@博州检察")
    assert not binding.allows("wechat", "@博州检察")
