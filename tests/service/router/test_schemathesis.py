"""Schemathesis against the router's OpenAPI document (issue 20, deliver 7): every operation of
the app (the same routes as the service's, checked below) — reassignments, returns, the triage
queue, the dead letters, the directory — with its subscribers on the in-memory broker and
in-memory stores holding a dispatched case, a triage item and a dead letter
(tests/service/inprocess.py); a caller with every role (tests/service/conformance.py)."""

from __future__ import annotations

import schemathesis

from fengqiao.auth.guard import Guard, routes_of
from fengqiao.services.router.app import build
from tests.service import inprocess
from tests.service.conformance import BOUNDED, EVERYONE, conforms, openapi_of

BUILT = inprocess.router(Guard("router", [EVERYONE]))
schema = openapi_of(BUILT.app, BUILT.seams)


def test_the_app_under_test_has_the_services_routes() -> None:
    assert sorted(routes_of(BUILT.app)) == sorted(routes_of(build(guard=Guard("router"))[1]))


@schema.parametrize()
@BOUNDED
def test_the_router_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    inprocess.pick_known(case, BUILT.known)
    conforms(case)
