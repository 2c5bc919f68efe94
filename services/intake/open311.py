"""Open311 GeoReport v2 on intake: a second, standard way for the public to file an appeal.

- `GET /open311/v2/services.json`: the services (appeal categories), from
  `data/open311_services.yaml`.
- `POST /open311/v2/requests.json`: form-encoded as the spec says (JSON is taken too). Answered
  only after the request is in `posts.raw` (as `RawPostReceived(platform="open311",
  channel="open311")`), with a fresh `service_request_id`.
- `GET /open311/v2/requests/{id}.json`: the request's status from the read model
  (`read_model.py`); private data (phone, e-mail, names, ID numbers) is never echoed.

Errors use the spec's format, `[{"code": 400, "description": "..."}]`: 400 for anything wrong in
the request (unknown service_code, no location, too long...), 403 for a missing or wrong
api_key (the spec's code; clients of Open311 servers expect it), 404 for an unknown request,
413/415 for oversized or non-form bodies, 503 with Retry-After when Kafka or the store does not
acknowledge.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any, Literal
from urllib.parse import parse_qsl

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pymongo.errors import PyMongoError

from fengqiao.contracts import RawPostReceived, new_event_id
from fengqiao.runtime.clock import Clock
from fengqiao.services.intake.adapters.requests import RequestRecord, RequestsStore
from fengqiao.services.intake.adapters.sink import PostSink, SinkUnavailable
from fengqiao.services.intake.domain import case_id_for
from fengqiao.services.intake.http import inline_schema
from fengqiao.services.intake.read_model import RequestView, masked, view
from fengqiao.services.intake.settings import IntakeSettings

log = logging.getLogger("fengqiao.intake.open311")

PLATFORM = CHANNEL = "open311"
PREFIX = "/open311/v2"
FORM = "application/x-www-form-urlencoded"
NOTICE = "Received. Keep the service_request_id to follow your request."


class Service(BaseModel):
    """One GeoReport v2 service: an appeal category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code: str = Field(pattern=r"^[a-z_]{1,32}$")
    service_name: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=500)
    metadata: Literal[False] = False
    type: Literal["realtime", "batch", "blackbox"] = "realtime"
    keywords: list[str] = Field(default_factory=list)
    group: str = Field(min_length=1, max_length=64)


def load_services() -> list[Service]:
    """The services of `data/open311_services.yaml`, validated."""
    text = (
        resources.files("fengqiao.services.intake")
        .joinpath("data/open311_services.yaml")
        .read_text()
    )
    services = [Service.model_validate(s) for s in yaml.safe_load(text)["services"]]
    codes = [s.service_code for s in services]
    if len(set(codes)) != len(codes):
        raise ValueError("open311_services.yaml: duplicate service_code")
    return services


class ServiceRequestIn(BaseModel):
    """The fields of `POST requests` (GeoReport v2), after api_key is checked and removed."""

    model_config = ConfigDict(extra="ignore")

    service_code: str = Field(min_length=1, max_length=64)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    long: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    address_string: str | None = Field(default=None, max_length=500, pattern=r"\S")
    address_id: str | None = Field(default=None, max_length=128, pattern=r"\S")
    description: str | None = Field(default=None, max_length=4000)
    media_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=64)
    first_name: str | None = Field(default=None, max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    device_id: str | None = Field(default=None, max_length=128)
    account_id: str | None = Field(default=None, max_length=128)
    jurisdiction_id: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _located(self) -> ServiceRequestIn:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long go together")
        if self.lat is None and not self.address_string and not self.address_id:
            raise ValueError("a location is required: lat and long, address_string or address_id")
        return self


class Problem(Exception):
    """An Open311 error answer."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status, self.description, self.headers = status, description, headers

    def response(self) -> JSONResponse:
        body = [{"code": self.status, "description": self.description}]
        return JSONResponse(body, status_code=self.status, headers=self.headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {"application/json": {"example": [{"code": code, "description": text}]}},
    }
    for code, text in {
        400: "Bad request: unknown service_code, no location, a field too long or malformed",
        403: "api_key missing or invalid",
        413: "Body over the size limit",
        415: "Neither form-encoded nor JSON",
        503: "Not stored now (Kafka or the store unavailable); retry after Retry-After",
    }.items()
}


def open311_router(
    settings: IntakeSettings,
    sink: PostSink,
    store: RequestsStore,
    clock: Clock,
    registry: CollectorRegistry,
    producer: str,
) -> APIRouter:
    """The GeoReport v2 endpoints."""
    router = APIRouter(prefix=PREFIX, tags=["open311"])
    services = load_services()
    intake = _Intake(settings, sink, store, clock, producer, registry)
    _add_list_services(router, services)
    _add_create_request(router, intake, sorted({s.service_code for s in services}))
    _add_get_request(router, store)
    return router


class _Intake:
    """What filing a request needs: where it is kept and stored, and its counters."""

    def __init__(
        self,
        settings: IntakeSettings,
        sink: PostSink,
        store: RequestsStore,
        clock: Clock,
        producer: str,
        registry: CollectorRegistry,
    ) -> None:
        self.settings, self.sink, self.store = settings, sink, store
        self.clock, self.producer = clock, producer
        self.accepted = Counter(
            "fengqiao_intake_open311_requests_accepted_total",
            "Open311 requests stored in posts.raw",
            registry=registry,
        )
        self.rejected = Counter(
            "fengqiao_intake_open311_requests_rejected_total",
            "Open311 requests refused",
            ["code"],
            registry=registry,
        )

    async def accept(self, wanted: ServiceRequestIn, fields: dict[str, str], client: str) -> str:
        """Keep the request and store its post; the new request's id."""
        now = self.clock.now()
        request_id = uuid.uuid4().hex
        raw = RawPostReceived(
            occurred_at=now,
            producer=self.producer,
            platform=PLATFORM,
            channel=CHANNEL,
            account=self.settings.open311_account,
            source_id=request_id,
            delivery_id=new_event_id(),
            payload={**fields, "client": client},
        )
        record = RequestRecord(
            request_id=request_id,
            case_id=case_id_for(raw),
            service_code=wanted.service_code,
            description=masked(wanted.description or ""),
            requested_at=now,
        )
        # The request is kept before its post reaches Kafka, so the read model knows the case
        # before any of its events; a request kept but not stored is never answered 2xx.
        try:
            await self.store.add_request(record)
            await self.sink.put(raw)
        except (SinkUnavailable, PyMongoError) as exc:
            log.warning("open311 request not stored, answering 503: %s", exc)
            raise Problem(503, "cannot store the request now; retry", {"Retry-After": "5"}) from exc
        return request_id


def _add_list_services(router: APIRouter, services: list[Service]) -> None:
    @router.get("/services.json", summary="The services (appeal categories) one may request")
    async def list_services() -> list[Service]:
        return services


def _add_create_request(router: APIRouter, intake: _Intake, codes: list[str]) -> None:
    known = set(codes)

    @router.post(
        "/requests.json",
        summary="File a service request (GeoReport v2; form-encoded or JSON)",
        status_code=201,
        responses={
            201: {"description": "Stored; the answer names the request"},
            **_ERRORS,
        },
        openapi_extra={"requestBody": _request_body(codes)},
    )
    async def create_request(request: Request) -> JSONResponse:
        try:
            fields = await _read_fields(request, intake.settings.max_body_bytes)
            client = _client_of(fields.pop("api_key", None), intake.settings)
            wanted = _validate(fields, known)
            request_id = await intake.accept(wanted, fields, client)
        except Problem as p:
            intake.rejected.labels(str(p.status)).inc()
            return p.response()
        intake.accepted.inc()
        return JSONResponse(
            [{"service_request_id": request_id, "service_notice": NOTICE}], status_code=201
        )


def _add_get_request(router: APIRouter, store: RequestsStore) -> None:
    @router.get(
        "/requests/{request_id}.json",
        summary="One service request's status",
        responses={404: {"description": "No such request"}, 503: _ERRORS[503]},
    )
    async def get_request(request_id: str) -> JSONResponse:
        try:
            found = await _find(store, request_id)
        except Problem as p:
            return p.response()
        return JSONResponse([_as_json(found)])


async def _find(store: RequestsStore, request_id: str) -> RequestView:
    if len(request_id) != 32 or not all(c in "0123456789abcdef" for c in request_id):
        raise Problem(404, f"no request {request_id[:64]!r}")
    try:
        record = await store.get_request(request_id)
        case_id = (await store.case_of(request_id) or record.case_id) if record else None
        events = await store.events_of(case_id) if case_id else []
    except PyMongoError as exc:
        log.warning("open311 read model unavailable: %s", exc)
        raise Problem(503, "cannot read the request now; retry", {"Retry-After": "5"}) from exc
    if record is None:
        raise Problem(404, f"no request {request_id!r}")
    return view(record, events)


async def _read_fields(request: Request, limit: int) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (FORM, "application/json"):
        raise Problem(415, f"Content-Type must be {FORM} or application/json")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise Problem(413, f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Problem(413, f"body larger than {limit} bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "body is not UTF-8") from exc
    return _json_fields(text) if content_type == "application/json" else _form_fields(text)


def _form_fields(text: str) -> dict[str, str]:
    known = ServiceRequestIn.model_fields.keys() | {"api_key"}
    fields: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=False):
        if name in fields and name in known:
            raise Problem(400, f"field {name[:64]!r} given twice")
        fields.setdefault(name, value)  # an extra attribute may repeat; the first is kept
    return fields


def _json_fields(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise Problem(400, "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise Problem(400, "body must be a JSON object")
    known = ServiceRequestIn.model_fields.keys() | {"api_key"}
    fields = {}
    for name, value in data.items():
        if value is None or (name not in known and not isinstance(value, str | int | float)):
            continue  # extra attributes the spec allows, but not as structures
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Problem(400, f"field {name[:64]!r} must be a string or a number")
        fields[name] = str(value)
    try:  # "\ud800" escapes a lone surrogate: valid JSON, but no store or topic can keep it
        "".join(fields).encode("utf-8") + "".join(fields.values()).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Problem(400, "body holds a lone surrogate escape") from exc
    return fields


def _client_of(api_key: str | None, settings: IntakeSettings) -> str:
    """The client whose key `api_key` is; every key is compared, in constant time."""
    given = (api_key or "").encode()
    found = None
    for client, key in settings.open311_api_keys.items():
        if hmac.compare_digest(given, key.get_secret_value().encode()):
            found = client
    if found is None or not api_key:
        raise Problem(403, "api_key missing or invalid")
    return found


def _validate(fields: Mapping[str, str], codes: set[str]) -> ServiceRequestIn:
    try:
        wanted = ServiceRequestIn.model_validate(fields)
    except ValidationError as exc:
        raise Problem(400, _describe(exc)) from exc
    if wanted.service_code not in codes:
        raise Problem(400, f"service_code {wanted.service_code[:64]!r} not found")
    return wanted


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _as_json(v: RequestView) -> dict[str, Any]:
    return {
        "service_request_id": v.request_id,
        "status": v.status,
        "status_notes": v.status_notes,
        "agency_responsible": v.agency_responsible,
        "service_code": v.service_code,
        "description": v.description,
        "requested_datetime": _iso(v.requested_at),
        "updated_datetime": _iso(v.updated_at),
        "expected_datetime": _iso(v.expected_at),
    }


def _request_body(codes: list[str]) -> dict[str, Any]:
    schema = inline_schema(ServiceRequestIn)
    properties = schema["properties"]
    properties["api_key"] = {"type": "string", "description": "The client's key."}
    properties["service_code"] = {"type": "string", "enum": codes}
    for name in ("lat", "long"):
        properties[name] = dict(properties[name]["anyOf"][0])
    schema["required"] = ["api_key", "service_code"]
    schema["dependentRequired"] = {"lat": ["long"], "long": ["lat"]}
    # One location is required: lat and long, address_string or address_id.
    schema["anyOf"] = [
        {"required": ["lat", "long"]},
        {"required": ["address_string"]},
        {"required": ["address_id"]},
    ]
    return {
        "required": True,
        "content": {FORM: {"schema": schema}, "application/json": {"schema": schema}},
    }


__all__ = ["Service", "ServiceRequestIn", "load_services", "open311_router"]
