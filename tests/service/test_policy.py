"""Every route of every service, walked from its OpenAPI against the one policy
(fengqiao/auth/policy.py): without credentials → 401; with every role but the ones the route
asks → 403; another unit's case → 404, as if it did not exist. Only the routes meant to be
public are; and a route added without a policy fails (the app refuses it, a request to it is
refused, and this walk names it)."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker

from fengqiao.auth import Identity, Role, policy
from fengqiao.auth.guard import FixedTokens, Guard, Unpoliced, routes_of
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS
from fengqiao.runtime.clock import utcnow
from fengqiao.runtime.service import Runtime, http_app
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.factories import appeal_message, dispatch_to_bole, final_hop_message

SERVICES = ("intake", "router", "tracker", "notifier", "workbench")
EVERY_ROLE = frozenset(Role)
# What may be public at all (issue 19): signed webhooks, Open311, health and metrics, and
# the public page of aggregates, and the workbench's login form.
MAY_BE_PUBLIC = re.compile(
    r"^/(webhooks/|open311/|healthz$|readyz$|metrics$|public$|public/|login$|login/sso$|login/sso/callback$)"
)


def person(token: str, unit: str, roles: frozenset[Role]) -> tuple[str, Identity]:
    return token, Identity(f"local:{token}", token, unit, roles, "token")


def build(service: str, guard: Guard) -> FastAPI:
    module = importlib.import_module(f"fengqiao.services.{service}.app")
    if service == "intake":
        return module.create_app()  # type: ignore[no-any-return]
    return module.build(guard=guard)[1]  # type: ignore[no-any-return]


def wrong_roles(service: str, method: str, path: str) -> frozenset[Role]:
    rule = policy.rule_for(service, method, path)
    assert rule is not None
    return EVERY_ROLE - rule.roles


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "c-0123456789abcdef", path)


def walk(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(routes_of(app))


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_is_refused_without_credentials_or_the_role(service: str) -> None:
    people = dict(person(f"t-{service}-{m}", "xj", frozenset()) for m in ("none",))
    guard = Guard(service, [FixedTokens(people)])
    app = build(service, guard)
    checked = 0
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        for method, path in walk(app):
            rule = policy.rule_for(service, method, path)
            assert rule is not None, f"{service}: {method} {path} has no policy"
            if rule.public is not None:
                assert MAY_BE_PUBLIC.match(path), f"{service}: {method} {path} is public"
                continue
            url = filled(path)
            anonymous = await http.request(method, url, json={})
            assert anonymous.status_code == 401, (service, method, path, anonymous.text)
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            wrong = wrong_roles(service, method, path)
            # (Intake's only non-public routes are the AsyncAPI pages; its guard has no way in.)
            if wrong != EVERY_ROLE and service != "intake":  # the route asks for some roles
                token, who = person(f"wrong-{service}-{checked}", "xj", wrong)
                guard.authenticators.append(FixedTokens({token: who}))
                refused = await http.request(
                    method, url, json={}, headers={"Authorization": f"Bearer {token}"}
                )
                assert refused.status_code == 403, (service, method, path, refused.text)
            checked += 1
    assert service == "intake" or checked > 0


def test_a_route_added_without_a_policy_fails() -> None:
    guard = Guard("tracker")
    app = build("tracker", guard)

    @app.post("/ops/cases/{case_id}/purge")
    async def purge(case_id: str) -> None:
        return None

    assert policy.unpoliced("tracker", walk(app)) == ["POST /ops/cases/{case_id}/purge"]
    with pytest.raises(Unpoliced, match="purge"):
        guard.audit(app)


async def test_a_route_without_a_policy_is_refused_even_if_it_slipped_in() -> None:
    guard = Guard("tracker", [FixedTokens(dict([person("all", "xj", EVERY_ROLE)]))])
    app = build("tracker", guard)

    @app.post("/ops/cases/{case_id}/purge", dependencies=[guard.dependency])
    async def purge(case_id: str) -> dict[str, str]:
        return {"purged": case_id}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://s"
    ) as http:
        response = await http.post("/ops/cases/c-1/purge", headers={"Authorization": "Bearer all"})
    assert response.status_code == 403 and "no policy" in response.text


# ------------------------------------------------------------------ another unit's case → 404

CASE = "c-0123456789abcdef"
# A sibling of the case's unit (博乐市 652701): 精河县 652702, with every role there is.
SIBLING = dict([person("sibling", "652702", EVERY_ROLE)])
HOLDER = dict([person("holder", "652701", EVERY_ROLE)])


@pytest.fixture
async def tracker_world() -> AsyncIterator[httpx.AsyncClient]:
    from fengqiao.services.tracker import domain, handlers
    from fengqiao.services.tracker.adapters.cases import InMemoryCaseRepository
    from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
    from fengqiao.services.tracker.adapters.timers import InMemoryTimers
    from fengqiao.services.tracker.api import unit_router
    from fengqiao.services.tracker.app import ops_router

    runtime = Runtime.create("tracker", StackSettings(), with_mongo=False)
    repo, indexes = InMemoryCaseRepository(), InMemoryIndexes()
    handlers.register(
        runtime.broker, repo, indexes=indexes, timers=InMemoryTimers(),
        rules=domain.Rules.default(), group_id="tracker", registry=runtime.registry,
    )  # fmt: skip
    guard = Guard("tracker", [FixedTokens(SIBLING | HOLDER)])
    routers = [
        unit_router(runtime.broker, repo, indexes, guard.caller, producer="tracker"),
        ops_router(repo, runtime.broker, guard.caller),
    ]
    app = http_app(runtime, description="t", routers=routers, guard=guard)
    async with TestKafkaBroker(runtime.broker) as broker:
        await opened_at_652701(broker)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def opened_at_652701(broker: Any) -> None:
    now = utcnow()
    appeal = appeal_message("博乐市拖欠工资", case_id=CASE, occurred_at=now)
    await broker.publish(appeal, APPEALS.name, key=CASE.encode())
    for order in dispatch_to_bole(CASE, now):
        await broker.publish(order, DISPATCH_ORDERS.name, key=CASE.encode())


BODIES: dict[str, dict[str, Any]] = {  # a valid body for each action that needs one
    "merge": {"into": CASE},
    "progress": {"note": "已联系"},
    "resolve": {"outcome": "已解决"},
    "return": {"reason_code": "not_our_jurisdiction"},
    "extension": {"requested_deadline": "2030-01-01T00:00:00+08:00"},
    "ask-citizen": {"note": "请提供合同"},
    "notes": {"note": "备注"},
}


def case_routes(service: str) -> list[tuple[str, str]]:
    app = build(service, Guard(service))
    return [(m, p) for m, p in walk(app) if "{case_id}" in p]


async def test_another_units_case_is_404_on_every_tracker_case_route(
    tracker_world: httpx.AsyncClient,
) -> None:
    http = tracker_world
    holder = {"Authorization": "Bearer holder"}
    assert (await http.get(f"/units/me/cases/{CASE}", headers=holder)).status_code == 200
    routes = case_routes("tracker")
    assert len(routes) >= 10
    for method, path in routes:
        url = path.replace("{case_id}", CASE)
        body = BODIES.get(path.rsplit("/", 1)[-1], {})
        response = await http.request(
            method, url, json=body, headers={"Authorization": "Bearer sibling"}
        )
        assert response.status_code == 404, (method, path, response.text)
        assert "no case" in response.text


async def test_another_units_case_is_404_on_every_router_case_route() -> None:
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.http import ops_router
    from fengqiao.services.router.returns import record_dispatch

    store = InMemoryRecordStore()
    final = final_hop_message(case_id=CASE)
    await store.save(record_dispatch([final], "order-2"), [final])
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    guard = Guard("router", [FixedTokens(SIBLING | HOLDER)])
    router = ops_router(
        runtime.broker, store, load_directory(), producer="router", caller=guard.caller
    )
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    routes = case_routes("router")
    assert routes == [("POST", "/ops/cases/{case_id}/reassign")]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as http:
        for method, path in routes:
            url = path.replace("{case_id}", CASE)
            response = await http.request(
                method, url, json={"to_unit": "652702"}, headers={"Authorization": "Bearer sibling"}
            )
            assert response.status_code == 404, (method, path, response.text)


async def test_returns_per_unit_are_those_of_the_callers_subtree() -> None:
    from fengqiao.services.router.adapters.records import InMemoryRecordStore
    from fengqiao.services.router.directory import load_directory
    from fengqiao.services.router.http import ops_router

    store = InMemoryRecordStore()
    for n, unit in enumerate(("652701", "652702", "650109")):  # 博乐, 精河 (博州); 米东 (乌鲁木齐)
        await store.count_return(f"a-{n}", f"c-{n}", unit, "not_our_jurisdiction")
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    people = dict([person("bozhou", "652700", EVERY_ROLE), person("region", "xj", EVERY_ROLE)])
    guard = Guard("router", [FixedTokens(people)])
    router = ops_router(
        runtime.broker, store, load_directory(), producer="router", caller=guard.caller
    )
    app = http_app(runtime, description="t", routers=[router], guard=guard)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r"
    ) as http:
        bozhou = await http.get("/ops/returns", headers={"Authorization": "Bearer bozhou"})
        region = await http.get("/ops/returns", headers={"Authorization": "Bearer region"})
    assert bozhou.json() == {"652701": 1, "652702": 1}
    assert region.json() == {"652701": 1, "652702": 1, "650109": 1}


@pytest.mark.parametrize("service", SERVICES)
def test_every_reference_in_the_openapi_document_resolves(service: str) -> None:
    """A `$ref` nothing can follow breaks every client generated from the document (intake's
    pointed at `#/$defs/GenericAuthor`, which is not in it) (issue 20, deliver 7, part)."""
    document = build(service, Guard(service)).openapi()

    def follow(ref: str) -> object:
        node: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"{service}: {ref} does not resolve"
            node = node[part]
        return node

    def walk(node: object) -> int:
        if isinstance(node, dict):
            ref = node.get("$ref")
            found = 1 if isinstance(ref, str) and follow(ref) is not None else 0
            return found + sum(walk(v) for v in node.values())
        if isinstance(node, list):
            return sum(walk(v) for v in node)
        return 0

    walk(document)
