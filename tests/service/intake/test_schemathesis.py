"""Schemathesis against intake's OpenAPI document: generated requests for every operation, each
answer checked against the document (no 5xx, documented status codes and content types,
responses matching their schemas).

The app runs without its lifespan (no Kafka), with the in-memory sink and read-model store.
`/readyz` is left out: without Kafka and MongoDB its 503 is right, and its Mongo ping waits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import allow_header_conformance, content_type_conformance

from fengqiao.runtime.clock import FakeClock
from fengqiao.services.intake.adapters.requests import InMemoryRequestsStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

_, APP = build(
    IntakeSettings(
        generic_secrets={"src": "src-secret-0123456"},
        generic_sources={"src": GenericSource(platforms=["generic"], accounts=["*"])},
        open311_api_keys={"client": "client-key-0123456"},
    ),
    sink=InMemoryPostSink(),
    clock=FakeClock(NOW),
    requests_store=InMemoryRequestsStore(),
)


async def without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app, with its lifespan (Kafka, MongoDB) answered as done instead of run."""
    if scope["type"] != "lifespan":
        await APP(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


schema = schemathesis.openapi.from_asgi("/openapi.json", without_lifespan).exclude(path="/readyz")


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_intake_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    # /metrics answers Prometheus text, which the shared ops router documents as JSON; and
    # FastAPI's 405 lists only the methods of the route it matched (a path with a GET and a
    # POST route answers `Allow: GET` to an OPTIONS): framework quirks, not intake's.
    excluded = [allow_header_conformance]
    if case.path == "/metrics":
        excluded.append(content_type_conformance)
    case.call_and_validate(excluded_checks=excluded)
