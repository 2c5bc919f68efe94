"""The workbench's client of the services' authorized APIs (tracker, router, notifier), as the
person logged in: their session cookie goes with each call, so the service's guard and policy
decide, not the workbench."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import httpx

from fengqiao.auth.guard import CLIENT_HEADER, SESSION_COOKIE
from fengqiao.runtime import tracing

log = logging.getLogger("fengqiao.workbench")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def detail(self) -> str:
        """The API's reason (FastAPI's `detail`: a text, or the validation errors' messages)."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        if isinstance(detail, list):
            return "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict))
        return str(detail or self.body or "")


class Api:
    """One service's API; `call` takes the path from the service's root (`/units/me/cases`)."""

    def __init__(
        self, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.http = tracing.instrument_client(  # with tracing on: `traceparent` to the service
            httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self, session: str, method: str, path: str, *, json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:  # fmt: skip
        """The service's answer (httpx.HTTPError when it cannot be reached)."""
        response = await self.http.request(
            method, path, json=json, params=params,
            headers={"cookie": f"{SESSION_COOKIE}={session}", CLIENT_HEADER: "workbench"},
        )  # fmt: skip
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        return Answer(response.status_code, body)

    async def healthy(self) -> bool:
        return (await self.http.get("/healthz")).status_code == 200


class UnitNames:
    """The matrix's units by name (the router's `/directory`), fetched with the first person's
    session and kept `ttl` seconds; while the router cannot say, units show as their ids."""

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl
        self.names: dict[str, str] = {}
        self.fetched = -math.inf

    def due(self) -> bool:
        return time.monotonic() - self.fetched >= self.ttl

    async def refresh(self, router: Api, session: str) -> None:
        self.fetched = time.monotonic()
        try:
            answer = await router.call(session, "GET", "/directory")
        except httpx.HTTPError as exc:
            log.warning("unit names: the router cannot be reached (%s); ids shown", exc)
            self.fetched -= self.ttl - 30  # try again in half a minute
            return
        if answer.ok and isinstance(answer.body, list):
            self.names = {u["id"]: u["name"] for u in answer.body if isinstance(u, dict)}
        else:
            self.fetched -= self.ttl - 30

    def __call__(self, unit_id: str | None) -> str:
        """`博乐市人民检察院` for `652701`; the id itself for a unit not (yet) named."""
        if not unit_id:
            return "—"
        return self.names.get(unit_id, unit_id)
