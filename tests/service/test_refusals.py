"""Refusals have the bodies their documents declare (issue 20, deliver 7): a 422 an endpoint
finds itself is FastAPI's `{"detail": [{"loc", "msg", "type"}]}` like one FastAPI finds (it was
`{"detail": "..."}`, where every document says an array); the guard's 401 and 403 are declared
on every route that is not public, with the one error body; `/metrics` is text."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import pytest
from fastapi.openapi.models import OpenAPI

from fengqiao.auth import Identity, Role, policy
from fengqiao.auth.guard import FixedTokens, Guard
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings

EVERY_ROLE = frozenset(Role)
PEOPLE = {"all": Identity("local:all", "all", "xj", EVERY_ROLE, "token")}
AS_ALL = {"Authorization": "Bearer all"}
SERVICES = ("intake", "router", "tracker", "notifier", "workbench")


def validation_errors(body: Any) -> list[dict[str, Any]]:
    """The body, if it is FastAPI's HTTPValidationError; else the test fails."""
    assert isinstance(body, dict) and isinstance(body.get("detail"), list), body
    for error in body["detail"]:
        assert isinstance(error["loc"], list) and error["loc"], error
        assert isinstance(error["msg"], str) and isinstance(error["type"], str), error
    return list(body["detail"])


async def test_a_period_the_tracker_refuses_is_a_validation_error() -> None:
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.app import ops_router

    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    guard = Guard("tracker", [FixedTokens(PEOPLE)])
    router = ops_router(InMemoryCaseRepository(), runtime.broker, guard.caller)
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        backwards = await h.get(
            "/ops/stats",
            params={"since": "2026-11-02T00:00:00+08:00", "until": "2026-11-01T00:00:00+08:00"},
            headers=AS_ALL,
        )
    assert backwards.status_code == 422
    [error] = validation_errors(backwards.json())
    assert "is not before" in error["msg"] and error["loc"] == ["query"]


async def test_an_unknown_unit_the_router_refuses_is_a_validation_error() -> None:
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.http import ops_router

    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    guard = Guard("router", [FixedTokens(PEOPLE)])
    router = ops_router(
        runtime.broker, InMemoryRecordStore(), load_directory(), producer="r", caller=guard.caller
    )
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as h:
        nowhere = await h.post(
            "/ops/cases/c-1/reassign", json={"to_unit": "nowhere"}, headers=AS_ALL
        )
    assert nowhere.status_code == 422
    [error] = validation_errors(nowhere.json())
    assert error["loc"] == ["body", "to_unit"] and "unknown unit" in error["msg"]


def document(service: str) -> dict[str, Any]:
    module = importlib.import_module(f"fengqiao.services.{service}.app")
    app = module.create_app() if service == "intake" else module.build(guard=Guard(service))[1]
    found: dict[str, Any] = app.openapi()
    OpenAPI.model_validate(found)  # a valid OpenAPI document still
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_guarded_route_declares_the_guards_refusals(service: str) -> None:
    paths = document(service)["paths"]
    checked = 0
    for path, operations in paths.items():
        for method, operation in operations.items():
            rule = policy.rule_for(service, method, path)
            assert rule is not None, (service, method, path)
            if rule.public is not None:
                continue
            for code in ("401", "403"):
                declared = operation["responses"].get(code)
                assert declared is not None, f"{service}: {method} {path} does not declare {code}"
                schema = declared["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_are_documented_as_text(service: str) -> None:
    metrics = document(service)["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(metrics["content"]) == ["text/plain"]
