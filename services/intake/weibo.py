"""Weibo's message push (粉丝服务平台, developer mode), one URL per matrix account:

    GET  /webhooks/weibo/{account}?signature=&timestamp=&nonce=&echostr=   binding check
    POST /webhooks/weibo/{account}?signature=&timestamp=&nonce=            a push (JSON body)

`signature` is the SHA-1 hex digest of the account's app secret, `timestamp` (milliseconds) and
`nonce`, sorted and concatenated. The binding check is answered with `echostr` as plain text.

Weibo waits 5 s for an answer and otherwise sends the push again, 3 times in all; an empty body
means "taken, no passive reply" and stops the re-sends (open.weibo.com/wiki/Send_Passive_Response_
Message). So a post stored in `posts.raw`, an event and a type we do not know are all answered
200 with an empty body; everything else is refused as the generic webhook refuses (404 unknown
account, 401 bad signature or stale timestamp, 415, 413, 400, 422 naming the field, 503 with
Retry-After when Kafka does not acknowledge).

A push carries no message id, so its source id is a digest of what a re-send repeats: sender,
created_at, type, data.key and, for a text message, the text. The appeal's event id and case id
are derived from it, so a re-send makes no second appeal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Query
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from fengqiao.contracts import RawPostReceived, new_event_id
from fengqiao.runtime.clock import Clock
from fengqiao.services.intake.adapters.nonces import NoncesUnavailable, PushNonces
from fengqiao.services.intake.adapters.sink import PostSink, SinkUnavailable
from fengqiao.services.intake.http import (
    NAME_PATTERN,
    REFUSAL_SCHEMA,
    DocumentedRoute,
    Refused,
    field_errors,
    is_name,
    json_body,
    parse_json,
    path_name,
    read_body,
    refusals,
)
from fengqiao.services.intake.readers import PRIVATE_MESSAGE_TYPES, parse_weibo_time, push_data
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.services.intake.signing import SignatureError

__all__ = ["POST_TYPES", "WeiboPush", "push_signature", "push_source_id", "weibo_webhooks"]

log = logging.getLogger("fengqiao.intake.weibo")

POST_TYPES = PRIVATE_MESSAGE_TYPES | {"mention"}
"""Push types that carry a citizen's words; they go to `posts.raw`."""
MENTION_SUBTYPES = frozenset({"status", "comment"})
SOURCE_ID_HEADER = "X-Fengqiao-Source-Id"
DELIVERY_ID_HEADER = "X-Fengqiao-Delivery-Id"
_LABEL = re.compile(r"^[a-z_]{1,32}$")


class WeiboPush(BaseModel):
    """The JSON body of a push; fields Weibo may add later are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(min_length=1, max_length=32, description="text, position, image, ...")
    receiver_id: str = Field(pattern=r"^\d{1,20}$", description="The matrix account's uid.")
    sender_id: str = Field(pattern=r"^\d{1,20}$", description="The citizen's uid.")
    created_at: str = Field(description='When it was sent: "Mon Nov 27 21:00:00 +0800 2026".')
    text: str = Field(default="", max_length=5000, description="The message, or a default text.")
    data: dict[str, Any] = Field(default_factory=dict, description="Per-type details.")

    @field_validator("receiver_id", "sender_id", mode="before")
    @classmethod
    def _uid_as_text(cls, value: Any) -> Any:
        # int64 in the JSON; kept as text so no reader of it rounds it through a double.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("created_at")
    @classmethod
    def _weibo_time(cls, value: str) -> str:
        parse_weibo_time(value)
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _data_object(cls, value: Any) -> Any:
        return push_data({"data": value}) if value is None or isinstance(value, str) else value


def push_signature(app_secret: str, timestamp: str, nonce: str) -> str:
    """The `signature` Weibo sends with a push or a binding check."""
    return hashlib.sha1("".join(sorted([app_secret, timestamp, nonce])).encode()).hexdigest()


def check_signature(
    app_secret: str,
    *,
    signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    now: datetime,
    window_seconds: int,
) -> None:
    """Raise SignatureError unless the request is signed with `app_secret` and recent."""
    if not (signature and timestamp and nonce):
        raise SignatureError("signature, timestamp and nonce are required")
    if len(nonce) > 64:
        raise SignatureError("nonce must be at most 64 characters")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        raise SignatureError("timestamp must be Unix milliseconds")
    skew = abs(now.timestamp() - int(timestamp) / 1000)
    if skew > window_seconds:
        raise SignatureError(
            f"stale timestamp: {int(skew)} s from now, window is {window_seconds} s"
        )
    expected = push_signature(app_secret, timestamp, nonce).encode()
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace")):
        raise SignatureError("signature does not match")


def push_source_id(push: WeiboPush) -> str:
    """The same for every re-send of one message, different for another message."""
    fields = [
        push.sender_id,
        push.created_at,
        push.type,
        str(push.data.get("key", "")),
        push.text if push.type == "text" else "",
    ]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
    return f"push:{digest[:40]}"


def to_raw_post(
    push: WeiboPush, payload: dict[str, Any], account: WeiboAccount, *, now: datetime, producer: str
) -> RawPostReceived:
    """The `posts.raw` message for a push that carries a post; `payload` as received."""
    return RawPostReceived(
        occurred_at=now,
        producer=producer,
        platform="weibo",
        channel="push",
        account=account.handle,
        source_id=push_source_id(push),
        delivery_id=new_event_id(),
        payload=payload,
    )


def _type_errors(push: WeiboPush) -> list[dict[str, str]]:
    """What a known type lacks; named by field like the generic webhook's 422."""
    errors: list[dict[str, str]] = []
    if push.type == "position":
        for name, bound in (("latitude", 90), ("longitude", 180)):
            try:
                ok = -bound <= float(push.data[name]) <= bound
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                errors.append({"field": f"data.{name}", "error": f"a number within ±{bound}"})
    elif push.type == "mention":
        if push.data.get("subtype") not in MENTION_SUBTYPES:
            errors.append({"field": "data.subtype", "error": "status or comment"})
        if not str(push.data.get("key", "")).strip():
            errors.append({"field": "data.key", "error": "the post's or comment's id"})
    elif push.type == "text" and not push.text.strip():
        errors.append({"field": "text", "error": "a text message needs text"})
    return errors


def _label(value: Any) -> str:
    # Metric labels from the body: bounded, so a stray value cannot grow the series without end.
    return value if isinstance(value, str) and _LABEL.match(value) else "other"


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "fengqiao_intake_weibo_push_accepted_total",
            "Weibo pushes stored in posts.raw",
            ["type"],
            registry=registry,
        )
        self.rejected = Counter(
            "fengqiao_intake_weibo_push_rejected_total",
            "Weibo pushes and binding checks refused",
            ["reason"],
            registry=registry,
        )
        self.ignored = Counter(
            "fengqiao_intake_weibo_push_ignored_total",
            "Weibo pushes of a type intake does not take (answered 200, not stored)",
            ["type"],
            registry=registry,
        )
        self.events = Counter(
            "fengqiao_intake_weibo_push_events_total",
            "Weibo event pushes (follow, unfollow, ...): counted, not stored",
            ["subtype"],
            registry=registry,
        )


def weibo_webhooks(
    settings: IntakeSettings,
    sink: PostSink,
    nonces: PushNonces,
    clock: Clock,
    registry: CollectorRegistry,
    producer: str,
) -> tuple[APIRouter, DocumentedRoute]:
    """The push URL of every account in `settings.weibo_accounts` that has an app secret: the
    binding check (GET, a FastAPI route: asked once per binding) and the pushes (POST, a plain
    route served first: every message; see `services.intake.http`)."""
    router = APIRouter(tags=["webhooks"])
    pushes = _Pushes(settings, sink, nonces, clock, producer, _Metrics(registry))
    _add_verify(router, pushes)
    push = DocumentedRoute(
        "/webhooks/weibo/{account}", pushes.receive, method="POST", operation=_push_operation()
    )
    return router, push


class _Pushes:
    """The accounts' push URLs: who may push, and what a push becomes."""

    def __init__(
        self,
        settings: IntakeSettings,
        sink: PostSink,
        nonces: PushNonces,
        clock: Clock,
        producer: str,
        metrics: _Metrics,
    ) -> None:
        self.settings, self.sink, self.nonces, self.clock = settings, sink, nonces, clock
        self.producer, self.metrics = producer, metrics

    def authenticate(
        self, account: str, signature: str | None, timestamp: str | None, nonce: str | None
    ) -> WeiboAccount:
        """The account the request is signed for, or 404 / 401."""
        known = self.settings.weibo_accounts.get(account) if is_name(account) else None
        if known is None or known.app_secret is None:
            raise Refused(404, "unknown_account", f"unknown account {account[:64]!r}")
        try:
            check_signature(
                known.app_secret.get_secret_value(),
                signature=signature,
                timestamp=timestamp,
                nonce=nonce,
                now=self.clock.now(),
                window_seconds=self.settings.replay_window_seconds,
            )
        except SignatureError as exc:
            raise Refused(401, "signature", str(exc)) from exc
        return known

    def refusal(self, r: Refused) -> JSONResponse:
        self.metrics.rejected.labels(r.reason).inc()
        return JSONResponse(
            {"error": r.reason, "detail": r.detail}, status_code=r.status, headers=r.headers
        )

    async def receive(self, request: Request) -> Response:
        """`POST /webhooks/weibo/{account}`: store a push that carries a post, take the rest."""
        query = request.query_params
        try:
            known = self.authenticate(
                request.path_params["account"],
                query.get("signature"),
                query.get("timestamp"),
                query.get("nonce"),
            )
            body = await read_body(
                request,
                limit=self.settings.max_body_bytes,
                content_types=self.settings.weibo_push_content_types,
            )
            payload = parse_json(body)
            try:
                push = WeiboPush.model_validate(payload)
            except ValidationError as exc:
                raise Refused(422, "schema", field_errors(exc)) from exc
            if push.type in POST_TYPES and (errors := _type_errors(push)):
                raise Refused(422, "schema", errors)
            nonce = await self._claim_nonce(request)
            if push.type not in POST_TYPES:
                return self._take_without_storing(push, known)
            raw = to_raw_post(push, payload, known, now=self.clock.now(), producer=self.producer)
            try:
                await _store(self.sink, raw)
            except Refused:
                await self.nonces.release(nonce)  # not stored: Weibo's re-send must be taken
                raise
        except Refused as r:
            return self.refusal(r)
        self.metrics.accepted.labels(push.type).inc()
        headers = {SOURCE_ID_HEADER: raw.source_id, DELIVERY_ID_HEADER: raw.delivery_id}
        return Response(status_code=200, headers=headers)

    async def _claim_nonce(self, request: Request) -> str:
        """Claim the signed request's nonce (its timestamp and nonce checked already): 409 for a
        replay, 503 when the store cannot tell. The key, to release if the push is not stored."""
        account, query = request.path_params["account"], request.query_params
        timestamp = query["timestamp"]
        key = f"{account}:{timestamp}:{query['nonce']}"
        stale_at = int(timestamp) / 1000 + self.settings.replay_window_seconds
        try:
            first = await self.nonces.claim(key, datetime.fromtimestamp(stale_at, UTC))
        except NoncesUnavailable as exc:
            log.warning("push nonces unavailable, answering a Weibo push 503: %s", exc)
            raise Refused(
                503, "nonce_store_unavailable", "cannot check the nonce now; retry", _RETRY
            ) from exc
        if not first:
            raise Refused(
                409,
                "replayed",
                "this timestamp and nonce were already used: a push URL is taken once",
            )
        return key

    def _take_without_storing(self, push: WeiboPush, known: WeiboAccount) -> Response:
        """An event or a type that carries no post: counted and answered 200 (no re-send)."""
        if push.type == "event":
            self.metrics.events.labels(_label(push.data.get("subtype"))).inc()
        else:
            self.metrics.ignored.labels(_label(push.type)).inc()
            log.info("ignored a Weibo push of type %r for %s", push.type[:32], known.handle)
        return Response(status_code=200)


def _add_verify(router: APIRouter, pushes: _Pushes) -> None:
    account_path = Path(pattern=NAME_PATTERN, description="Key of weibo_accounts.")

    @router.get(
        "/webhooks/weibo/{account}",
        response_class=PlainTextResponse,
        summary="Weibo's binding check of an account's push URL: answers echostr",
        responses={401: {"description": "Bad signature"}, 404: {"description": "Unknown account"}},
    )
    async def verify(
        account: str = account_path,
        signature: str | None = Query(None),
        timestamp: str | None = Query(None),
        nonce: str | None = Query(None),
        echostr: str | None = Query(None, max_length=256),
    ) -> Response:
        try:
            pushes.authenticate(account, signature, timestamp, nonce)
            if not echostr:
                raise Refused(400, "echostr", "echostr is required")
        except Refused as r:
            return pushes.refusal(r)
        return PlainTextResponse(echostr)


def _push_operation() -> dict[str, Any]:
    """The OpenAPI operation of the push route (a plain route, see `DocumentedRoute`)."""
    signed_query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("signature", "timestamp", "nonce")
    ]
    return {
        "tags": ["webhooks"],
        "summary": "Receive a Weibo push: answered 200 with an empty body once stored",
        "operationId": "weibo_push",
        "parameters": [path_name("account", "Key of weibo_accounts."), *signed_query],
        **json_body(WeiboPush),
        "responses": {
            "200": {"description": "Stored, or an event or unknown type taken and ignored"},
            **refusals(unknown="Unknown account", content_type="Not JSON"),
            "409": {
                "description": "Replayed: this timestamp and nonce were taken already",
                "content": {"application/json": {"schema": REFUSAL_SCHEMA}},
            },
        },
    }


async def _store(sink: PostSink, raw: RawPostReceived) -> None:
    try:
        await sink.put(raw)
    except SinkUnavailable as exc:
        log.warning("posts.raw unavailable, answering a Weibo push 503: %s", exc)
        raise Refused(503, "kafka_unavailable", "cannot store the push now; retry", _RETRY) from exc


_RETRY = {"Retry-After": "5"}
