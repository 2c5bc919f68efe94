"""Intake's webhook endpoints: check, keep, acknowledge — in that order.

A request is answered 2xx only after its post is stored in Kafka. Everything else gets a
precise refusal and never reaches Kafka: 404 unknown source, 415 wrong content type, 413 too
large, 401 bad signature or stale timestamp, 400 malformed JSON, 422 schema violation (naming the
field), 503 when Kafka does not acknowledge (with Retry-After, so the platform tries again).

The webhooks that take posts (this generic one and Weibo's push) are plain Starlette routes
(`DocumentedRoute`), served before FastAPI's own routes: they read and check their raw bodies
themselves, so FastAPI's parameter solving, validation and included-router matching were only
overhead on the path that takes thousands of requests a second (measurements in
docs/performance.md). Each carries its OpenAPI operation, which `serve_first` adds to the app's
document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fengqiao.contracts import RawPostReceived, new_event_id
from fengqiao.runtime.clock import Clock
from fengqiao.services.intake import signing
from fengqiao.services.intake.adapters.sink import PostSink, SinkUnavailable
from fengqiao.services.intake.schemas import GenericPost
from fengqiao.services.intake.settings import IntakeSettings

log = logging.getLogger("fengqiao.intake.http")


class Refused(Exception):
    def __init__(
        self, status: int, reason: str, detail: Any, headers: dict[str, str] | None = None
    ):
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""What a source or account name in a webhook's path looks like."""
_NAME = re.compile(NAME_PATTERN)

REFUSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "The reason, e.g. signature, schema"},
        "detail": {"description": "What exactly is wrong; for 422 the fields and their errors"},
    },
}


ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "delivery_id", "source_id"],
    "properties": {
        "status": {"type": "string", "enum": ["accepted"]},
        "delivery_id": {"type": "string", "description": "Our id of this delivery"},
        "source_id": {"type": "string", "description": "<source>:<the post's id>"},
    },
}


def refusals(
    *, unknown: str, content_type: str, forbidden: str | None = None
) -> dict[str, dict[str, Any]]:
    """The OpenAPI description of a signed webhook's refusals."""
    described = {
        400: "Malformed JSON",
        401: "Missing or bad signature, or stale timestamp",
        **({403: forbidden} if forbidden else {}),
        404: unknown,
        413: "Body over the size limit",
        415: content_type,
        422: "Body does not match the schema",
        503: "Kafka did not acknowledge (or, for a Weibo push, the nonce store did not answer); "
        "retry after Retry-After seconds",
    }
    return {
        str(status): {
            "description": description,
            "content": {"application/json": {"schema": REFUSAL_SCHEMA}},
        }
        for status, description in described.items()
    }


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its nested models written in place. (Pydantic points to
    them as `#/$defs/...`, which inside an OpenAPI document resolves against the document's
    root, where there is no `$defs`: a reference nothing can follow.)"""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = resolve(defs[ref.removeprefix("#/$defs/")])
                return {**target, **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return dict(resolve(schema))


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a raw-read JSON body, described by its schema model."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


def path_name(name: str, description: str) -> dict[str, Any]:
    """The OpenAPI description of a source or account name in the path."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": NAME_PATTERN},
    }


class DocumentedRoute(Route):
    """A plain Starlette route with the OpenAPI operation that describes it.

    `operation` is what FastAPI would generate for a route (summary, parameters, requestBody,
    responses); `serve_first` puts it in the app's OpenAPI document under `path` and `method`.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        method: str,
        operation: dict[str, Any],
    ) -> None:
        super().__init__(path, endpoint, methods=[method], include_in_schema=False)
        self.method = method.lower()
        self.operation = operation


def serve_first(app: FastAPI, routes: Sequence[DocumentedRoute]) -> None:
    """Serve `routes` before the app's FastAPI routes, and describe them in its OpenAPI.

    First, so a webhook request is matched at once instead of after every other route. A path
    may also have FastAPI routes for other methods (Weibo's GET binding check): those still
    answer their method, since a route whose method does not match is only a partial match.
    """
    app.router.routes[0:0] = routes
    generate = app.openapi  # FastAPI's own: builds the document once and keeps it

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for route in routes:
                document["paths"].setdefault(route.path, {})[route.method] = route.operation
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend it


def is_name(value: str) -> bool:
    """Whether a path segment can be a source or account name (NAME_PATTERN): anything else is
    answered like an unknown name, 404."""
    return _NAME.match(value) is not None


async def read_body(
    request: Request, *, limit: int, content_types: Collection[str] = ("application/json",)
) -> bytes:
    """The raw body, refused with 415 for another content type and with 413 past `limit` bytes
    (by Content-Length before reading, and while reading: a chunked body has none)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in content_types:
        raise Refused(
            415, "content_type", f"Content-Type must be one of: {', '.join(content_types)}"
        )
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise Refused(413, "too_large", f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, "too_large", f"body larger than {limit} bytes")
    return bytes(body)


def generic_webhook_route(
    settings: IntakeSettings,
    sink: PostSink,
    clock: Clock,
    registry: CollectorRegistry,
    producer: str,
) -> DocumentedRoute:
    """`POST /webhooks/generic/{source}`: a post from another platform, HMAC-SHA256 signed."""
    webhook = _GenericWebhook(settings, sink, clock, registry, producer)
    operation = {
        "tags": ["webhooks"],
        "summary": "Receive a post from another platform (HMAC-SHA256 signed JSON)",
        "operationId": "generic_webhook",
        "parameters": [path_name("source", "Key of generic_secrets.")],
        **json_body(GenericPost),
        "responses": {
            "202": {
                "description": "Stored in posts.raw (acknowledged by Kafka)",
                "content": {"application/json": {"schema": ACCEPTED_SCHEMA}},
            },
            **refusals(
                unknown="Unknown source",
                content_type="Not application/json",
                forbidden="The post names a platform or account the source is not bound to "
                "(generic_sources)",
            ),
        },
    }
    return DocumentedRoute(
        "/webhooks/generic/{source}", webhook.receive, method="POST", operation=operation
    )


class _GenericWebhook:
    """The generic webhook: check a signed post, store it, answer."""

    def __init__(
        self,
        settings: IntakeSettings,
        sink: PostSink,
        clock: Clock,
        registry: CollectorRegistry,
        producer: str,
    ) -> None:
        self.settings, self.sink, self.clock, self.producer = settings, sink, clock, producer
        accepted = Counter(
            "fengqiao_intake_posts_accepted_total",
            "Posts stored in posts.raw",
            ["channel"],
            registry=registry,
        )
        self.rejected = Counter(
            "fengqiao_intake_posts_rejected_total",
            "Posts refused",
            ["channel", "reason"],
            registry=registry,
        )
        self.accepted = accepted.labels("webhook")

    async def receive(self, request: Request) -> Response:
        try:
            raw = await self._raw_post(request)
            try:
                await self.sink.put(raw)
            except SinkUnavailable as exc:
                log.warning("posts.raw unavailable, answering 503: %s", exc)
                raise Refused(
                    503,
                    "kafka_unavailable",
                    "cannot store the post now; retry",
                    {"Retry-After": "5"},
                ) from exc
        except Refused as r:
            self.rejected.labels("webhook", r.reason).inc()
            return JSONResponse(
                {"error": r.reason, "detail": r.detail}, status_code=r.status, headers=r.headers
            )
        self.accepted.inc()
        return JSONResponse(
            {"status": "accepted", "delivery_id": raw.delivery_id, "source_id": raw.source_id},
            status_code=202,
        )

    async def _raw_post(self, request: Request) -> RawPostReceived:
        """The `posts.raw` message of a request, or the refusal of the first check it fails."""
        source: str = request.path_params["source"]
        secret = self.settings.generic_secrets.get(source) if is_name(source) else None
        if secret is None:
            raise Refused(404, "unknown_source", f"unknown source {source[:64]!r}")
        body = await read_body(request, limit=self.settings.max_body_bytes)
        try:
            signing.verify(
                secret.get_secret_value(),
                timestamp=request.headers.get(signing.TIMESTAMP_HEADER),
                signature=request.headers.get(signing.SIGNATURE_HEADER),
                body=body,
                now=self.clock.now(),
                window_seconds=self.settings.replay_window_seconds,
            )
        except signing.SignatureError as exc:
            raise Refused(401, "signature", str(exc)) from exc
        payload = parse_json(body)
        try:
            post = GenericPost.model_validate(payload)
        except ValidationError as exc:
            raise Refused(422, "schema", field_errors(exc)) from exc
        self._check_binding(source, post)
        return RawPostReceived(
            occurred_at=self.clock.now(),
            producer=self.producer,
            platform=post.platform,
            channel="webhook",
            account=post.account,
            source_id=f"{source}:{post.id}",
            delivery_id=new_event_id(),
            payload=payload,
        )

    def _check_binding(self, source: str, post: GenericPost) -> None:
        """403 unless `source` is bound to speak for the post's platform and account."""
        binding = self.settings.generic_sources.get(source)
        if binding is None or not binding.allows(post.platform, post.account):
            allowed = (
                f"platforms {binding.platforms} and accounts {binding.accounts}"
                if binding
                else "nothing (no binding in generic_sources)"
            )
            raise Refused(
                403,
                "not_bound",
                f"source {source!r} may not post for platform {post.platform!r} and account "
                f"{post.account!r}; it is bound to {allowed}",
            )


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or 400. pydantic's parser (faster than `json`, see
    docs/performance.md) takes UTF-8 only, stops nesting at 200 levels, and refuses a lone
    surrogate escape ("\\ud800": valid JSON, but no Kafka message could carry it)."""
    try:
        payload = from_json(body)
    except ValueError as exc:
        raise Refused(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise Refused(400, "malformed_json", "body must be a JSON object")
    return payload


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
        for e in exc.errors()
    ]


__all__ = ["DocumentedRoute", "generic_webhook_route", "serve_first"]
