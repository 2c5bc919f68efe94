"""What every service's schemathesis test shares (issue 20, deliver 7): the app served in-process
with its lifespan replaced by in-memory seams (no Kafka, no store), a caller with every role (so
generated requests get past the guard to the endpoints), a bounded number of examples, and the
checks that make a document true: no 5xx, every status code and content type documented, every
body and header matching its schema.

    schema = openapi_of(app, seams)              # seams: entered at start, on the test's loop
    @schema.parametrize()
    @BOUNDED
    def test_x_conforms_to_its_openapi(case): conforms(case)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import BaseSchema

from fengqiao.auth import Identity, Role
from fengqiao.auth.guard import FixedTokens

CHECKS = [
    not_a_server_error,
    status_code_conformance,  # an undocumented status code fails the test
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Examples per operation: the whole set of services stays within about a minute.
BOUNDED = settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TOKEN = "schemathesis-every-role-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The same at 博乐市 (652701), which holds the case of tests/service/inprocess.py: its unit may act
# on it (a unit above it sees it, but may not sign for it).
HOLDER = {"Authorization": "Bearer schemathesis-at-bole-0123456789"}
# At the top of the directory (xj): every unit's case is below it.
EVERYONE = FixedTokens(
    {
        TOKEN: Identity("local:schemathesis", "schemathesis", "xj", frozenset(Role), "token"),
        HOLDER["Authorization"].removeprefix("Bearer "): Identity(
            "local:schemathesis-bole", "schemathesis", "652701", frozenset(Role), "token"
        ),
    }
)
Seams = Callable[[], AbstractAsyncContextManager[Any]]


def served(app: Any, seams: Seams | None = None) -> Any:
    """The app, with its lifespan (Kafka, the store) replaced by entering `seams` (the in-memory
    broker, say), on the loop that then serves every request."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        async with contextlib.AsyncExitStack() as stack:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if seams is not None:
                        await stack.enter_async_context(seams())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    break
        await send({"type": "lifespan.shutdown.complete"})

    return asgi


def openapi_of(app: Any, seams: Seams | None = None) -> BaseSchema:
    """The app's document, less `/readyz`: without Kafka and the store its 503 is right (and
    documented), and its store ping waits."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", served(app, seams))
    return schema.exclude(path="/readyz")


def conforms(case: schemathesis.Case, headers: dict[str, str] | None = None, **given: Any) -> None:
    """Call the operation as the caller with every role, and check the answer. (Not FastAPI's
    `Allow` header of a 405, which lists only the methods of the route it matched.)"""
    case.call_and_validate(headers={**AUTH, **(headers or {})}, checks=CHECKS, **given)
