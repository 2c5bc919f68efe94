"""Schemathesis against intake's OpenAPI document: generated requests for every operation, each
answer checked against the document (no 5xx, documented status codes and content types,
responses matching their schemas).

The app runs without its lifespan (no Kafka), with the in-memory sink and read-model store
(tests/service/conformance.py: the checks, the bound on examples; `/readyz` left out).
"""

from __future__ import annotations

from datetime import UTC, datetime

import schemathesis

from fengqiao.runtime.clock import FakeClock
from fengqiao.services.intake.adapters.requests import InMemoryRequestsStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings
from tests.service.conformance import BOUNDED, conforms, openapi_of

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


schema = openapi_of(APP)


@schema.parametrize()
@BOUNDED
def test_intake_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    conforms(case)
