"""Schemathesis against the tracker's OpenAPI document (issue 20, deliver 7): every operation of
the app (the same routes as the service's, checked below), its subscribers on the in-memory
broker and the in-memory case repository, one case opened at 博乐市 (tests/service/inprocess.py);
a caller with every role at the case's unit (tests/service/conformance.py)."""

from __future__ import annotations

import schemathesis

from fengqiao.auth.guard import Guard, routes_of
from fengqiao.services.tracker.app import build
from tests.service import inprocess
from tests.service.conformance import BOUNDED, EVERYONE, HOLDER, conforms, openapi_of

BUILT = inprocess.tracker(Guard("tracker", [EVERYONE]))
schema = openapi_of(BUILT.app, BUILT.seams)


def test_the_app_under_test_has_the_services_routes() -> None:
    assert sorted(routes_of(BUILT.app)) == sorted(routes_of(build(guard=Guard("tracker"))[1]))


@schema.parametrize()
@BOUNDED
def test_the_tracker_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    inprocess.pick_known(case, BUILT.known)
    conforms(case, headers=HOLDER)  # the case's unit, so its actions reach the case
