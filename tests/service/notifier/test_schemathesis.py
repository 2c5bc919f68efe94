"""Schemathesis against the notifier's OpenAPI document (issue 20, deliver 7): the service's own
app (`build`, with a fake platform and the in-memory outbox), its subscribers on the in-memory
broker, replies held for approval in it (tests/service/inprocess.py); a caller with every role
(tests/service/conformance.py). Approvals and rejections reach the sender and its rules."""

from __future__ import annotations

import schemathesis

from fengqiao.auth.guard import Guard
from tests.service import inprocess
from tests.service.conformance import BOUNDED, EVERYONE, conforms, openapi_of

BUILT = inprocess.notifier(Guard("notifier", [EVERYONE]))
schema = openapi_of(BUILT.app, BUILT.seams)


@schema.parametrize()
@BOUNDED
def test_the_notifier_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    inprocess.pick_known(case, BUILT.known)
    conforms(case)
