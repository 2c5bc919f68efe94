"""Hostile input: random bodies, content types and headers at every endpoint of intake's OpenAPI.

Whatever arrives, intake answers with a deliberate status, never a 5xx (a crash). The app runs
without its lifespan (no Kafka), with the in-memory sink and read-model store. `/readyz` is left
out: without Kafka and MongoDB its 503 is the right answer, and its Mongo ping waits for a
server.

Some requests are signed with the right secret, or carry the right api_key, so that random bodies
get past authentication into parsing and validation, where crashes hide.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from fengqiao.services.intake.adapters.requests import InMemoryRequestsStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SECRET = "fuzz-secret-0123456789"
API_KEY = "fuzz-key-0123456789"
SKIPPED = {"/readyz"}


def _app() -> Any:
    settings = IntakeSettings(
        generic_secrets={"src": SECRET},
        generic_sources={"src": GenericSource(platforms=["generic", "weibo"], accounts=["*"])},
        open311_api_keys={"client": API_KEY},
        max_body_bytes=4096,
    )
    _, app = build(
        settings,
        sink=InMemoryPostSink(),
        clock=FakeClock(NOW),
        requests_store=InMemoryRequestsStore(),
    )
    return app


APP = _app()
OPERATIONS = sorted(
    (path, method.upper())
    for path, ops in APP.openapi()["paths"].items()
    for method in ops
    if path not in SKIPPED and method in ("get", "post")
)
KNOWN_PARAMS = ["src", "client", "0" * 32, "xinjiang"]


class Client:
    """Sends requests to the app through ASGI, without its lifespan (which needs Kafka).

    Hypothesis drives plain functions, so each request runs on this client's own event loop.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=APP, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://intake")

    def request(self, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(**kwargs))

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    client = Client()
    yield client
    client.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=6)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    [
        "id",
        "platform",
        "account",
        "author",
        "text",
        "created_at",
        "geo",
        "api_key",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "media_url",
        "email",
        "type",
        "receiver_id",
        "sender_id",
        "data",
    ]
) | st.text(max_size=12)
plausible_json = st.dictionaries(field_names, json_values, max_size=10)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    plausible_json.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
    plausible_json.map(lambda v: urlencode({k: json.dumps(x) for k, x in v.items()}).encode()),
    st.just(b"[" * 3000),
    st.just(b"x" * 5000),
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/xml",
            "",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
)
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def _path_value() -> st.SearchStrategy[str]:
    return st.sampled_from(KNOWN_PARAMS) | st.text(min_size=1, max_size=40)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    path, method = draw(st.sampled_from(OPERATIONS))
    url = re.sub(r"\{[^}]+\}", lambda _: quote(draw(_path_value()), safe=""), path)
    body = draw(bodies) if method == "POST" else b""
    headers = {"Content-Type": draw(content_types)}
    timestamp = draw(st.sampled_from([str(int(NOW.timestamp())), "0", "-1", "1e9"]) | header_values)
    if draw(st.booleans()):
        headers[TIMESTAMP_HEADER] = timestamp
        signed = draw(st.booleans())
        headers[SIGNATURE_HEADER] = sign(SECRET, timestamp, body) if signed else draw(header_values)
    for name in draw(st.lists(st.sampled_from(["X-Forwarded-For", "Accept", "Origin"]))):
        headers[name] = draw(header_values)
    query = draw(st.dictionaries(st.sampled_from(["api_key", "jurisdiction_id"]), header_values))
    if "api_key" in query and draw(st.booleans()):
        query["api_key"] = API_KEY
    # Header values as bytes: a peer may send any octets, not only ASCII.
    raw_headers = {k: v.encode("utf-8", "surrogatepass") for k, v in headers.items()}
    return {"method": method, "url": url, "content": body, "headers": raw_headers, "params": query}


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(request=requests())
def test_no_input_makes_intake_fail(client: Client, request: dict[str, Any]) -> None:
    response = client.request(**request)
    assert response.status_code < 500, (request, response.status_code, response.text[:500])


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(fields=st.dictionaries(field_names, header_values | st.text(max_size=60), max_size=14))
def test_random_open311_forms_with_the_right_key_never_fail(
    client: Client, fields: dict[str, str]
) -> None:
    body = urlencode({**fields, "api_key": API_KEY})
    response = client.request(
        method="POST",
        url="/open311/v2/requests.json",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code in (201, 400), (fields, response.text[:500])
    assert isinstance(response.json(), list)


def test_every_operation_is_fuzzed() -> None:
    paths = {path for path, _ in OPERATIONS}
    assert {"/webhooks/generic/{source}", "/open311/v2/requests.json"} <= paths


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=st.one_of(plausible_json, json_values).map(lambda v: json.dumps(v).encode()))
def test_random_signed_webhook_bodies_never_fail(client: Client, body: bytes) -> None:
    timestamp = str(int(NOW.timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(SECRET, timestamp, body),
    }
    response = client.request(
        method="POST", url="/webhooks/generic/src", content=body, headers=headers
    )
    assert response.status_code in (202, 400, 403, 413, 422), (body, response.text[:500])


def test_a_lone_surrogate_escape_is_400_not_a_kafka_failure(client: Client) -> None:
    # Found by this suite: valid JSON, but no Kafka message (nor Mongo document) can carry it;
    # the real sink failed to serialize and answered 503, so the platform retried forever.
    body = b'{"id": "p1", "account": "@a", "author": {"id": "u"}, "text": "\\ud800"}'
    timestamp = str(int(NOW.timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(SECRET, timestamp, body),
    }
    response = client.request(
        method="POST", url="/webhooks/generic/src", content=body, headers=headers
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
