"""Intake's webhook endpoints: check, keep, acknowledge — in that order.

A request is answered 2xx only after its post is stored in Kafka. Everything else gets a
precise refusal and never reaches Kafka: 404 unknown source, 415 wrong content type, 413 too
large, 401 bad signature or stale timestamp, 400 malformed JSON, 422 schema violation (naming the
field), 503 when Kafka does not acknowledge (with Retry-After, so the platform tries again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError

from contracts import RawPostReceived, new_event_id
from fengqiao.clock import Clock
from services.intake import signing
from services.intake.adapters.sink import PostSink, SinkUnavailable
from services.intake.schemas import GenericPost
from services.intake.settings import IntakeSettings

log = logging.getLogger("fengqiao.intake.http")


class Refused(Exception):
    def __init__(
        self, status: int, reason: str, detail: Any, headers: dict[str, str] | None = None
    ):
        self.status, self.reason, self.detail, self.headers = status, reason, detail, headers


def refusals(*, unknown: str, content_type: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a signed webhook's refusals."""
    return {
        401: {"description": "Missing or bad signature, or stale timestamp"},
        404: {"description": unknown},
        413: {"description": "Body over the size limit"},
        415: {"description": content_type},
        422: {"description": "Body does not match the schema"},
        503: {"description": "Kafka did not acknowledge; retry after Retry-After seconds"},
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a raw-read JSON body by its schema model."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


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


def webhook_router(
    settings: IntakeSettings,
    sink: PostSink,
    clock: Clock,
    registry: CollectorRegistry,
    producer: str,
) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    accepted = Counter(
        "fengqiao_intake_posts_accepted_total",
        "Posts stored in posts.raw",
        ["channel"],
        registry=registry,
    )
    rejected = Counter(
        "fengqiao_intake_posts_rejected_total",
        "Posts refused",
        ["channel", "reason"],
        registry=registry,
    )

    @router.post(
        "/webhooks/generic/{source}",
        status_code=202,
        summary="Receive a post from another platform (HMAC-SHA256 signed JSON)",
        responses=refusals(unknown="Unknown source", content_type="Not application/json"),
        openapi_extra=json_body(GenericPost),
    )
    async def generic_webhook(
        request: Request,
        source: str = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
    ) -> JSONResponse:
        try:
            secret = settings.generic_secrets.get(source)
            if secret is None:
                raise Refused(404, "unknown_source", f"unknown source {source!r}")
            body = await read_body(request, limit=settings.max_body_bytes)
            try:
                signing.verify(
                    secret.get_secret_value(),
                    timestamp=request.headers.get(signing.TIMESTAMP_HEADER),
                    signature=request.headers.get(signing.SIGNATURE_HEADER),
                    body=body,
                    now=clock.now(),
                    window_seconds=settings.replay_window_seconds,
                )
            except signing.SignatureError as exc:
                raise Refused(401, "signature", str(exc)) from exc
            payload = _parse_json(body)
            try:
                post = GenericPost.model_validate(payload)
            except ValidationError as exc:
                raise Refused(422, "schema", _field_errors(exc)) from exc
            raw = RawPostReceived(
                occurred_at=clock.now(),
                producer=producer,
                platform=post.platform,
                channel="webhook",
                account=post.account,
                source_id=f"{source}:{post.id}",
                delivery_id=new_event_id(),
                payload=payload,
            )
            try:
                await sink.put(raw)
            except SinkUnavailable as exc:
                log.warning("posts.raw unavailable, answering 503: %s", exc)
                raise Refused(
                    503,
                    "kafka_unavailable",
                    "cannot store the post now; retry",
                    {"Retry-After": "5"},
                ) from exc
        except Refused as r:
            rejected.labels("webhook", r.reason).inc()
            return JSONResponse(
                {"error": r.reason, "detail": r.detail}, status_code=r.status, headers=r.headers
            )
        accepted.labels("webhook").inc()
        return JSONResponse(
            {"status": "accepted", "delivery_id": raw.delivery_id, "source_id": raw.source_id},
            status_code=202,
        )

    return router


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." within the size limit
        raise Refused(400, "malformed_json", "body is not valid JSON: nested too deep") from exc
    if not isinstance(payload, dict):
        raise Refused(400, "malformed_json", "body must be a JSON object")
    try:  # "\ud800" escapes a lone surrogate: valid JSON, but no Kafka message can carry it
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Refused(400, "malformed_json", "body holds a lone surrogate escape") from exc
    return payload


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
        for e in exc.errors()
    ]


__all__ = ["webhook_router"]
