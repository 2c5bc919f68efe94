"""A service's guard takes the OIDC provider's JWTs once FENGQIAO_OIDC_ISSUER is set, beside the
local accounts' tokens: the person of the token reaches the route, the policy still decides, and
a forged or misdirected token is a 401 (issue 19, deliver 1 and 2; a real provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fengqiao.auth.guard import OidcBearer, service_guard
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.oidc import AUDIENCE, OidcProvider
from tests.service.test_guard import app_with


@pytest.fixture
async def http(
    oidc_provider: OidcProvider, stack: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("FENGQIAO_OIDC_ISSUER", oidc_provider.issuer)
    monkeypatch.setenv("FENGQIAO_OIDC_ISSUER_ALIAS", "sso")
    monkeypatch.setenv("FENGQIAO_OIDC_AUDIENCE", AUDIENCE)
    runtime = Runtime.create("tracker", stack, with_mongo=False)
    guard = service_guard(runtime)
    assert any(isinstance(a, OidcBearer) for a in guard.authenticators)
    transport = httpx.ASGITransport(app=app_with(guard))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client
    for stop in runtime.on_stop:
        await stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_provider_token_is_its_person_and_the_policy_still_decides(
    oidc_provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    handler = oidc_provider.token(
        person="zhao.min", audience=AUDIENCE, display="赵敏", unit="652701", group="handler"
    )
    me = await http.get("/units/me", headers=bearer(handler))
    assert me.status_code == 200, me.text
    assert me.json() == {"person": "oidc:sso:zhao.min", "unit_id": "652701", "via": "oidc"}
    assert (await http.get("/ops/stats", headers=bearer(handler))).status_code == 403
    lead = oidc_provider.token(
        person="sun.li", audience=AUDIENCE, display="孙丽", unit="652700", group="unit_lead"
    )
    assert (await http.get("/ops/stats", headers=bearer(lead))).status_code == 200


async def test_a_token_for_another_audience_or_forged_is_401(
    oidc_provider: OidcProvider, http: httpx.AsyncClient
) -> None:
    other = oidc_provider.token(person="x", audience="another-app", unit="652701", group="ops")
    refused = await http.get("/units/me", headers=bearer(other))
    assert refused.status_code == 401 and "(aud)" in refused.text, refused.text
    head, body, _ = other.split(".")
    forged = await http.get("/units/me", headers=bearer(f"{head}.{body}.c2lnbmF0dXJl"))
    assert forged.status_code == 401
    assert (await http.get("/units/me", headers=bearer("fq_nobody_x"))).status_code == 401
