"""HTTP endpoints every service has: liveness, readiness and Prometheus metrics.

A readiness check answers True (or any value but False) when ready, False when not, or a
string: "ok", or what is not ready yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

Check = Callable[[], Awaitable[object]]
Refresh = Callable[[], Awaitable[None]]


class Readiness(BaseModel):
    status: str = Field(description="ready, or not ready")
    service: str
    checks: dict[str, str] = Field(description="Each check: ok, or what is not ready yet.")


_READINESS: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness, "description": "Every check answered ok"},
    503: {"model": Readiness, "description": "Some check is not ok: which, and why"},
}
# Prometheus' text exposition format, as Prometheus reads it (not JSON).
_METRICS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The metrics in Prometheus' text format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


def ops_router(
    *,
    service: str,
    registry: CollectorRegistry,
    checks: Mapping[str, Check],
    timeout: float = 2.0,
    before_scrape: Sequence[Refresh] = (),
) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (every dependency answers) and `/metrics`
    (after `before_scrape` updated the gauges that are computed on demand)."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get(
        "/readyz",
        summary="Kafka and the store answer; every consumer has joined",
        responses=_READINESS,
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                ok = await asyncio.wait_for(check(), timeout)
                if isinstance(ok, str):
                    results[name] = ok
                else:
                    results[name] = "ok" if ok is not False else "not ready"
            except Exception as exc:
                results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "service": service, "checks": results},
            status_code=200 if ready else 503,
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses=_METRICS,
    )
    async def metrics() -> Response:
        for refresh in before_scrape:
            with contextlib.suppress(Exception):  # a scrape still answers with what is known
                await asyncio.wait_for(refresh(), timeout)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
