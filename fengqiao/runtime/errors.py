"""The services' refusals and how their OpenAPI documents declare them (issue 20, deliver 7).

One body for every refusal an endpoint, the guard or the runtime sends (`ErrorBody`: FastAPI's
`{"detail": "..."}`, the body-size limit's `error` beside it), except 422: that one is always
FastAPI's own `{"detail": [{"loc", "msg", "type"}, ...]}` (`HTTPValidationError`), whether
FastAPI found the fault or an endpoint did (`unprocessable`), so a client reads one shape.

What each route may answer is declared in one place: an endpoint's own refusals by its
decorator (`responses=refusals(404, 409)`), and the ones every route shares by `declare_refusals`
when the app's document is built (the guard's 401 and 403 on every route that is not public, the
body limit's 413 on every route that takes a body, FastAPI's 400 on every route that parses
one, the outage handler's 503 on every route that
may meet the store or Kafka). Schemathesis checks the documents against the answers
(tests/service/*/test_schemathesis.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

JSON, HTML = "application/json", "text/html"


class ErrorBody(BaseModel):
    """A refusal: what is wrong, in words."""

    detail: str = Field(description="What is wrong, in words.")
    error: str | None = Field(default=None, description="A code word for it (413: too_large).")


DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be read",
    401: "No credentials, or credentials that do not hold (WWW-Authenticate says how)",
    403: "The caller's roles or unit do not allow this",
    404: "Nothing by that id that the caller may see (another unit's case is not found either)",
    409: "The state of the thing does not allow it now (the body says why)",
    413: "The body is larger than the route's limit",
    503: "The store or Kafka cannot be reached now; retry after Retry-After seconds",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route for the refusals its endpoint raises (not 422: FastAPI
    declares it on every route with parameters or a body)."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


def unprocessable(message: str, *loc: str | int) -> HTTPException:
    """A 422 an endpoint finds (an unknown unit, a period that ends before it starts), in the
    shape of FastAPI's own: `{"detail": [{"loc": [...], "msg": ..., "type": "value_error"}]}`."""
    where = list(loc) or ["body"]
    return HTTPException(422, [{"loc": where, "msg": message, "type": "value_error"}])


# Routes of the runtime that meet neither the store nor Kafka, nor take credentials.
_UNREFUSING = frozenset({"/healthz", "/readyz", "/metrics"})
_WITH_BODY = frozenset({"post", "put", "patch"})


def declare_refusals(
    app: FastAPI,
    guarded: Callable[[str, str], Iterable[int]] = lambda method, path: (),
    *,
    pages: bool = False,
) -> None:
    """Declare in the app's OpenAPI what its routes may answer before (or beside) their
    endpoints: `guarded(method, path)` the guard's codes for a route (401, 403), 413 where a body
    is taken, 400 where a body is parsed (FastAPI: "There was an error parsing the body"), 503
    everywhere but health and metrics; each with `ErrorBody`. With `pages` (the workbench, which
    answers a browser with a page), every refusal is said to come as HTML too. A route's own
    declaration wins."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
            for path, operations in document.get("paths", {}).items():
                for method, operation in operations.items():
                    codes = set(guarded(method.upper(), path))
                    if path not in _UNREFUSING:
                        codes |= {503} | ({413} if method in _WITH_BODY else set())
                    if "requestBody" in operation:  # FastAPI's answer to a body it cannot parse
                        codes.add(400)
                    _declare(operation, codes, pages)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def _declare(operation: dict[str, Any], codes: Iterable[int], pages: bool) -> None:
    responses = operation.setdefault("responses", {})
    for code in sorted(codes):
        content = {JSON: {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        responses.setdefault(str(code), {"description": DESCRIPTIONS[code], "content": content})
    if pages:
        for code, response in responses.items():
            if code[0] in "45":
                response.setdefault("content", {}).setdefault(HTML, {"schema": {"type": "string"}})
